"""Tests of vidseg_cli/api/."""
