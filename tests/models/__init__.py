"""Tests of vidseg_cli/models/."""
