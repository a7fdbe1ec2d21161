"""Tests of vidseg_cli/metrics/."""
