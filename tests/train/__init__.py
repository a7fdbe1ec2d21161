"""Tests of vidseg_cli/train/."""
