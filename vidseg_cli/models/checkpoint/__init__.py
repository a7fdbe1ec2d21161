"""Weights files: our checkpoint format (`format`), public layouts mapped onto our models
(`layouts`), and safe reading and strict loading of any weights file (`weights`)."""

# api/segment3d.py, api/extract_features.py and models/scnn.py import these names from
# here; they move to the modules above when those files are rewired.
from vidseg_cli.models.checkpoint.format import (  # noqa: F401
    build_from_checkpoint,
    check_checkpoint_fits,
    read_checkpoint,
)
from vidseg_cli.models.checkpoint.weights import is_checkpoint, read_weights  # noqa: F401
