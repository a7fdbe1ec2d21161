"""One colour per class name, the same in every file and every run.

A colour comes from a hash of the name alone (BLAKE2b), never from the class's index or
the order in which classes were met, so "jump" is drawn alike in a J-HMDB labels file, a
THUMOS14 detections file and next month's report. The hash picks a hue over the whole
circle and a saturation and value in a band that stays readable on dark frames and on a
white page; background has no colour (it is left undrawn)."""

from __future__ import annotations

import colorsys
import hashlib

BACKGROUND = "background"
GREY = (128, 128, 128)  # where a colour is needed for background (a timeline's gaps)


def class_color(name: str) -> tuple[int, int, int] | None:
    """(r, g, b) in 0..255 for a class name; None for background."""
    if name == BACKGROUND:
        return None
    h = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    hue = int.from_bytes(h[:2], "big") / 65536.0
    sat = 0.60 + 0.35 * h[2] / 255.0
    val = 0.80 + 0.18 * h[3] / 255.0
    r, g, b = colorsys.hsv_to_rgb(hue, sat, val)
    return (round(r * 255), round(g * 255), round(b * 255))


def hex_color(name: str) -> str:
    """'#rrggbb' of `class_color` (grey for background), for SVG, matplotlib and HTML."""
    r, g, b = class_color(name) or GREY
    return f"#{r:02x}{g:02x}{b:02x}"


def palette(class_names: list[str]) -> list[tuple[int, int, int] | None]:
    """The colour of each class of a file, in the file's index order."""
    return [class_color(str(n)) for n in class_names]
