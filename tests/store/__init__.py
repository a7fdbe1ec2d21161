"""Tests of vidseg_cli/store/."""
