"""Tests of vidseg_cli/core/."""
