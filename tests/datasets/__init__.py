"""Tests of vidseg_cli/datasets/."""
