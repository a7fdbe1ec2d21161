"""S-CNN window scoring (S-CNN §3.1, §3.3), in memory: propose and localize --method scnn
score windows with it (api/propose.py, api/localize_scnn.py)."""

from __future__ import annotations

import numpy as np
import torch

from vidseg_cli.datasets.scnn_data import ClipReader
from vidseg_cli.runtime import autocast


def score_windows(model, frames, windows: np.ndarray, batch_size: int, device, amp: bool = False,
                  ) -> np.ndarray:
    """Softmax of an S-CNN network over windows of one video: (N, classes) float64.

    `frames` is a sliceable (T, H, W, 3) uint8 array or h5py dataset; clips are prepared
    with the network's own WindowSpec and scored in batches, in start order.
    """
    out = np.zeros((len(windows), model.num_classes), np.float64)
    if len(windows) == 0:
        return out
    reader = ClipReader(frames, model.spec)
    order = ClipReader.ordered(windows)
    with torch.no_grad():
        for i in range(0, len(order), batch_size):
            sel = order[i:i + batch_size]
            clips = torch.from_numpy(reader.clips(windows[sel])).to(device)  # B x 3 x 16 x h x w
            with autocast(device, amp):
                logits = model(clips)
            out[sel] = torch.softmax(logits.float(), 1).cpu().numpy()
    return out
