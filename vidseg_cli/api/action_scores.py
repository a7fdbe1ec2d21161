"""The per-frame action scores a scores file may carry (Sep3D's head, store/kinds.py),
passed through by the post-processing stages (hmm-smooth, crf-refine): they change the
pixels, not the frames' action scores, which evaluate's frame-mAP needs."""

from __future__ import annotations

from typing import Any

import numpy as np


def carried_action_scores(rec: Any, attrs: dict[str, Any]) -> dict[str, Any]:
    """The optional `action_scores` of a scores record as datasets for the post-processed
    scores, their `action_names` added to `attrs`."""
    if "action_scores" not in rec:
        return {}
    attrs["action_names"] = list(rec.attrs["action_names"])
    return {"action_scores": np.asarray(rec["action_scores"][()])}
