"""DAVIS 2017 multi-object J and F, as davis2017-evaluation (davis2017/evaluation.py)
computes them:

- Ground-truth objects: the indices 1..N, N the largest index in the sequence's first
  annotated frame; value 255 is void. Object k's mask is (value == k) in every frame.
- Predicted objects: 1..M, M the largest index in any result frame; fewer than N are
  padded with empty masks.
- Semi-supervised (first and last frames not scored): predicted object k is ground-truth
  object k; M > N is an error. Void pixels are not excluded (the scorer passes none).
- Unsupervised (every frame): up to 20 proposals (more is an error); J and F of every
  (proposal, object) pair over all frames, void pixels excluded from both masks; each
  ground-truth object takes one proposal by the assignment maximising the sum of
  (mean J + mean F) / 2 (the Hungarian method, scipy's linear_sum_assignment, as the
  scorer uses), unmatched proposals count for nothing.
- J, F per frame and their mean / recall / decay per object are metrics/davis.py's
  (jaccard and boundary_f of masks with void pixels cleared: the same counts as the
  scorer's void-aware formulas); the overall figures are means over all objects of all
  sequences, J&F the mean of J's and F's means.

The scorer names its per-object entries `SEQ_<i>` by the order of the assignment's rows
(the proposals), which can differ from the ground-truth object order; here `SEQ_<k>` is
ground-truth object k, and `matched` says which proposal it took. Means over objects are
the same either way.
"""

from __future__ import annotations

import numpy as np

from vidseg_cli.errors import InputError
from vidseg_cli.metrics import davis as dm

__all__ = ["MAX_PROPOSALS", "evaluate_objects", "objects_table", "summarize_objects"]

MAX_PROPOSALS = 20
VOID = 255


def _split(idx: np.ndarray, n: int) -> np.ndarray:
    """(n, T, H, W) bool: object k+1's mask in each frame."""
    return np.stack([idx == k for k in range(1, n + 1)]) if n else np.zeros((0, *idx.shape), bool)


def evaluate_objects(gt_idx: np.ndarray, pred_idx: np.ndarray, task: str, where: str,
                     first_frame: np.ndarray | None = None) -> list[dict]:
    """Per ground-truth object: {"object", "matched", "J": {mean, recall, decay}, "F": ...}
    of one sequence's scored frames. `gt_idx`, `pred_idx`: (T, H, W) index masks of those
    frames; `first_frame`: the sequence's first annotated frame (which fixes the object
    count; default gt_idx[0]); `where` names the result in errors."""
    gt_idx = np.asarray(gt_idx)
    first = gt_idx[0] if first_frame is None else np.asarray(first_frame)
    void = gt_idx == VOID
    n_gt = int(np.where(first == VOID, 0, first).max()) if first.size else 0
    n_pred = int(pred_idx.max()) if pred_idx.size else 0
    gts = _split(np.where(void, 0, gt_idx), n_gt)
    if task == "semi-supervised":
        if n_pred > n_gt:
            raise InputError(where, f"object index {n_pred} in the results, but the ground truth "
                                    f"has {n_gt} object(s)")
        preds = _split(pred_idx, n_gt)
        pairs = [(k, k) for k in range(n_gt)]
        j = [dm.jaccard(gts[k], preds[k]) for k in range(n_gt)]
        f = [dm.boundary_f(gts[k], preds[k]) for k in range(n_gt)]
    elif task == "unsupervised":
        if n_pred > MAX_PROPOSALS:
            raise InputError(where, f"proposal index {n_pred} in the results; DAVIS allows at most "
                                    f"{MAX_PROPOSALS} proposals")
        keep = ~void
        preds = _split(pred_idx, max(n_pred, n_gt)) & keep[None]
        gts = gts & keep[None]
        jj = [[dm.jaccard(g, p) for g in gts] for p in preds]  # proposal x object x frames
        ff = [[dm.boundary_f(g, p) for g in gts] for p in preds]
        score = np.array([[(np.mean(a) + np.mean(b)) / 2 for a, b in zip(ra, rb)]
                          for ra, rb in zip(jj, ff)]).reshape(len(preds), n_gt)
        from scipy.optimize import linear_sum_assignment

        rows, cols = linear_sum_assignment(-score)
        by_obj = dict(zip(cols.tolist(), rows.tolist()))
        pairs = [(k, by_obj[k]) for k in range(n_gt)]
        j = [jj[p][k] for k, p in pairs]
        f = [ff[p][k] for k, p in pairs]
    else:
        raise ValueError(f"unknown DAVIS task '{task}' (known: {', '.join(dm.TASKS)})")
    out = []
    for (k, p), jv, fv in zip(pairs, j, f):
        jm, jr, jd = dm.davis_statistics(jv)
        fm, fr, fd = dm.davis_statistics(fv)
        out.append({"object": k + 1, "matched": p + 1,
                    "J": {"mean": jm, "recall": jr, "decay": jd},
                    "F": {"mean": fm, "recall": fr, "decay": fd}, "frames": int(np.size(jv))})
    return out


def summarize_objects(per_object: dict[str, dict]) -> dict:
    """Overall J and F (mean, recall, decay): means over every object of every sequence."""
    import warnings

    out: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        for m in ("J", "F"):
            out[m] = {k: float(np.mean([o[m][k] for o in per_object.values()])) if per_object
                      else float("nan") for k in ("mean", "recall", "decay")}
    out["J&F"] = (out["J"]["mean"] + out["F"]["mean"]) / 2
    return out


def objects_table(result: dict):
    """A rich Table of a DAVIS 2017 result: one row per object, then the means (%)."""
    from rich.table import Table

    def pct(v):
        return "-" if v is None else f"{100 * v:.1f}"

    t = Table(title=f"DAVIS 2017 J and F per object ({result.get('task')}), %")
    for col in ("object", "proposal", "frames"):
        t.add_column(col, justify="left" if col == "object" else "right")
    for m in ("J", "F"):
        for s in ("mean", "recall", "decay"):
            t.add_column(f"{m} {s}", justify="right")
    per = result.get("per_object", {})
    for name, r in per.items():
        t.add_row(name, str(r["matched"]), str(r["frames"]),
                  *[pct(r[m][s]) for m in "JF" for s in ("mean", "recall", "decay")])
    t.add_section()
    t.add_row(f"[bold]mean[/bold] ({len(per)} objects)", "", "",
              *[pct(result[m][s]) for m in "JF" for s in ("mean", "recall", "decay")])
    t.caption = f"J&F mean {pct(result.get('J&F'))}; T (temporal stability) not provided"
    return t
