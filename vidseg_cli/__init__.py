"""vidseg: composable stages for video action segmentation and temporal action localization."""

import os as _os

__version__ = "0.1.0"

# FFmpeg inside OpenCV prints its own complaints (e.g. "moov atom not found") to stderr;
# a bad input must give the user one line, ours, so keep FFmpeg quiet unless asked.
_os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
