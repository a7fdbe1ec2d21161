"""Plumbing every layer may use and that uses no other vidseg_cli layer: file writing."""
