"""The legend under an overlay frame: a colour swatch and the name of each class, laid
out in as many columns as the width holds, and a line saying how to read the picture."""

from __future__ import annotations

import numpy as np

from vidseg_cli.viz.overlay import ColorTable

ROW = 16  # px per legend row: Hershey simplex at scale 0.4 is ~10 px tall
SWATCH = 10
PAD = 4


def _ascii(text: str) -> str:
    # OpenCV's Hershey fonts draw ASCII only: other characters become '?'.
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in text)


def legend_panel(width: int, lut: ColorTable, note: str = "") -> np.ndarray:
    """(h, width, 3) uint8, dark grey: `note` on the first row, then the classes that
    have a colour, in columns."""
    import cv2

    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.4
    entries = [(n, tuple(int(v) for v in lut.rgb[i])) for i, n in enumerate(lut.names)
               if lut.drawn[i]]
    widths = [cv2.getTextSize(_ascii(n), font, scale, 1)[0][0] for n, _ in entries]
    col_w = SWATCH + 2 * PAD + (max(widths) if widths else 0) + PAD
    cols = max(1, (width - PAD) // col_w)
    rows = -(-len(entries) // cols)
    h = PAD + ROW * (rows + (1 if note else 0)) + PAD
    panel = np.full((h, width, 3), 32, np.uint8)
    y = PAD
    if note:
        cv2.putText(panel, _ascii(note), (PAD, y + ROW - 5), font, scale, (230, 230, 230), 1,
                    cv2.LINE_AA)
        y += ROW
    for k, (name, rgb) in enumerate(entries):
        r, c = divmod(k, cols)
        x0, y0 = PAD + c * col_w, y + r * ROW
        cv2.rectangle(panel, (x0, y0 + 3), (x0 + SWATCH, y0 + 3 + SWATCH), rgb, -1)
        cv2.putText(panel, _ascii(name), (x0 + SWATCH + PAD, y0 + ROW - 5), font, scale,
                    (230, 230, 230), 1, cv2.LINE_AA)
    return panel


def with_legend(img: np.ndarray, panel: np.ndarray) -> np.ndarray:
    """The frame above its legend; both padded to even sizes (VP9's 4:2:0 sampling)."""
    out = np.concatenate([img, panel[:, : img.shape[1]]], axis=0)
    h, w = out.shape[:2]
    return np.pad(out, ((0, h % 2), (0, w % 2), (0, 0)))
