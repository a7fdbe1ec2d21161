"""Weights files: our checkpoint format (`format`), public layouts mapped onto our models
(`layouts`), and safe reading and strict loading of any weights file (`weights`)."""
