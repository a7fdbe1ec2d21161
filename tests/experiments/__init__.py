"""Tests of experiments/ (the learning checks and their records)."""
