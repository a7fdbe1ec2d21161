"""Benchmarks of `vidseg evaluate`'s metrics."""
