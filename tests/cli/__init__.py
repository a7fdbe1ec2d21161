"""Tests of vidseg_cli/cli/."""
