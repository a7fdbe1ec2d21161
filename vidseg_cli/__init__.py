"""vidseg: composable stages for video action segmentation and temporal action localization."""

__version__ = "0.1.0"
