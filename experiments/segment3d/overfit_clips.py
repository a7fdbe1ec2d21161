"""Diagnostic for the learning check: can a CPU-sized segmenter fit a few
fixed training clips of the synthetic recipe? It separates capacity (what the network and
its class map can draw at all) from learning speed (what it learns of the whole set in
the budget): the synthetic recipe's clips, action-centred, without jitter or flips, one
fixed batch, Adam at the recipe's rate, and the foreground IoU over the batch's labelled
pixels every 25 steps.

    python -m experiments.segment3d.overfit_clips OUT/synth [--model 3dfcn-8s] [--clips 2]
        [--steps 100]

Recorded at commit d3508c8 on the default seed-0 set: 3DFCN-8s fits its two clips to a foreground IoU of 0.57 after
25 steps and 0.91 after 100 (docs/segment3d.md, learning check).
"""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    import torch

    from vidseg_cli.datasets.segment_data import (
        IGNORE,
        ClipSpec,
        SegmentClips,
        collate,
        open_segment_dataset,
    )
    from vidseg_cli.train.segment import (
        build_model,
        class_weight_vector,
        get_recipe,
        weighted_cross_entropy,
    )

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("synth", help="a `vidseg synth` folder")
    ap.add_argument("--model", default="3dfcn-8s", choices=("3dfcn-8s", "3dfcn-32s", "sep3d"))
    ap.add_argument("--clips", type=int, default=2, help="clips in the one fixed batch")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    torch.manual_seed(args.seed)
    r = get_recipe(args.model, "synthetic")
    ds = open_segment_dataset(args.synth, target=r.target)
    model = build_model(args.model, ds.classes, r)
    spec = ClipSpec(clip_len=r.clip_len, crop=r.crop, preprocess=r.preprocess(args.model),
                    scale_jitter=(1.0, 1.0), flip=False, min_input=tuple(model.min_input), action_bias=1.0)
    clips = SegmentClips(ds.train, spec, seed=args.seed, clips_per_video=1)
    # clips of different videos (the set's clip k comes from video k)
    batch = collate([clips[k * max(1, len(ds.train) // args.clips)] for k in range(args.clips)])
    x, y = batch["x"], batch["y"]
    labelled, truth = y != IGNORE, (y > 0) & (y != IGNORE)
    print(f"{args.clips} clips {tuple(x.shape)}: {int(labelled.sum())} labelled pixels, "
          f"{int(truth.sum())} of them action")
    weight = class_weight_vector(len(ds.classes), r.class_weights)
    opt = torch.optim.Adam(model.parameters(), lr=r.lr)
    for step in range(args.steps + 1):
        if step % 25 == 0:
            model.eval()
            with torch.no_grad():
                pred = (model(x).argmax(dim=1) > 0) & labelled
            iou = float((pred & truth).sum()) / max(1, int((pred | truth).sum()))
            print(f"step {step}: foreground IoU {iou:.3f}", flush=True)
        if step == args.steps:
            break
        model.train()
        opt.zero_grad()
        loss = weighted_cross_entropy(model(x), y, weight)
        loss.backward()
        if r.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), r.grad_clip)
        opt.step()


if __name__ == "__main__":
    main()
