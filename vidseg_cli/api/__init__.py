"""Typed, file-in/file-out functions behind each stage's command (nnU-Net style): the CLI
parses and reports, these read the HDF5 inputs, call models/ and stages/, and write the
outputs, so every stage is usable from Python too."""
