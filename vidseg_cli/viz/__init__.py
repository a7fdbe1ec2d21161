"""Pictures of what the stages found: class colours, mask overlays, WebM encoding,
timelines of temporal predictions, plots of evaluate's metrics, training curves, and the
self-contained HTML report over an output folder (`vidseg visualize`, `vidseg report`)."""
