"""Sep3D Table 5: operations and parameters of the pyramid pooling and decoder with standard
3D, R(2+1)D and 3D separable convolutions, for one 8x320x320 clip, counted on the built
modules (`models.sep3d.head_op_counts`: torch.utils.flop_counter, multiplications plus
additions of the convolutions, on the meta device). Our widths (the paper gives none):
pyramid 256, decoder 128 channels at width 1.0 (docs/models.md). Paper: 136, 136 and 6
billion operations. Figure: standard / separable operations (paper 136 / 6 = 22.7x).
"""

from __future__ import annotations

PAPER = {"standard": 136e9, "r2plus1d": 136e9, "separable": 6e9}


def run(quick: bool) -> list[dict]:
    from vidseg_cli.models.sep3d import head_op_counts

    counts = {k: head_op_counts(k, clip=(8, 320, 320)) for k in PAPER}
    ratio = counts["standard"]["flops"] / counts["separable"]["flops"]
    detail = {k: {"ops_billion": round(v["flops"] / 1e9, 2), "params_million": round(v["params"] / 1e6, 2),
                  "paper_ops_billion": PAPER[k] / 1e9} for k, v in counts.items()}
    return [{"name": "Sep3D head ops, standard / separable 3x3x3 (Table 5, 8x320x320)",
             "ratio": ratio, "target": ">= 10 (paper 22.7)", "ok": ratio >= 10, "detail": detail},
            {"name": "Sep3D head ops, R(2+1)D / standard (Table 5: equal)",
             "ratio": counts["r2plus1d"]["flops"] / counts["standard"]["flops"],
             "target": "0.9 .. 1.1", "ok": 0.9 <= counts["r2plus1d"]["flops"] / counts["standard"]["flops"] <= 1.1,
             "detail": detail}]
