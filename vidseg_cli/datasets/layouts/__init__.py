"""Dataset layouts: `detect.py` tells which layout a path holds, `parts.py` resolves its
files, `verify.py` checks it before any work (`vidseg check-dataset`)."""
