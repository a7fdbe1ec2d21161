"""Benchmarks of the 3DFCN post-processing stages: hmm-smooth and crf-refine."""
