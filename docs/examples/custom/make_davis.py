"""Lay out the bundled carphone video and its hand-drawn mask in the DAVIS 2016 layout that
`vidseg check-dataset` and `vidseg train segment` read:

    python docs/examples/custom/make_davis.py OUT
    OUT/JPEGImages/480p/carphone_pristine/00000.jpg ...   the frames
    OUT/Annotations/480p/carphone_pristine/00000.png ...  the masks (0 background, 255 actor)
    OUT/ImageSets/480p/train.txt, val.txt                 the sequences of each split

Your own masks come from any annotation tool that exports a PNG per frame (or polygons, as
carphone_mask.json holds: one polygon, filled into every frame).
"""

import json
import sys
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
root = Path(sys.argv[1])
ann = json.loads((HERE / "carphone_mask.json").read_text())
seq = ann["video"]
frames, masks = root / "JPEGImages/480p" / seq, root / "Annotations/480p" / seq
frames.mkdir(parents=True, exist_ok=True)
masks.mkdir(parents=True, exist_ok=True)
mask = np.zeros((ann["size"][1], ann["size"][0]), np.uint8)
cv2.fillPoly(mask, [np.array(ann["polygon"], np.int32)], 255)
video = cv2.VideoCapture(str(HERE.parents[2] / "sample_data" / "videos" / f"{seq}.mp4"))
count = 0
while True:
    ok, frame = video.read()
    if not ok:
        break
    cv2.imwrite(str(frames / f"{count:05d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
    cv2.imwrite(str(masks / f"{count:05d}.png"), mask)
    count += 1
(root / "ImageSets/480p").mkdir(parents=True, exist_ok=True)
for split in ("train", "val"):  # one video: it trains and validates (a demonstration, not a benchmark)
    (root / "ImageSets/480p" / f"{split}.txt").write_text(seq + "\n")
print(f"{root}: {count} frames and masks of {seq}")
