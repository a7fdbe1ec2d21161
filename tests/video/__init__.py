"""Tests of vidseg_cli/video/."""
