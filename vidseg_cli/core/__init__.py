"""Plumbing every layer may use and that uses no other vidseg_cli layer: file writing
(fs.py) and name registries (registry.py)."""
