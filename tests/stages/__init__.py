"""Tests of vidseg_cli/stages/."""
