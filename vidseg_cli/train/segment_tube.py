"""Training Segment-tube's temporal networks (Segment-tube §2.1; docs/segment_tube.md
"Training").

Both networks read fc7 of a C3D trunk taken from `--init` (an S-CNN checkpoint of ours,
whose input preparation the clips follow, or the C3D Sports-1M port) on saliency-aware
clips: every window of both lengths (16 and 32 frames, 75% overlap), its frames blended
toward the trunk's pixel mean outside the initial saliency mask B_o (§2.3). Windows are
labelled by coverage (datasets/segment_tube_data.py). A training sample is a chunk of at
most `seq_len` consecutive windows of one length of one video, cut at a random offset
every epoch; the loss is the sum of the two networks' cross-entropies, each class
weighted by ~ 1 / its frequency, ignored windows left out. With `unmasked_share` P > 0
(mask shift, docs/segment_tube.md) each window's clip is left unmasked with probability
P, drawn per epoch from (seed, epoch) like the chunks, so a resume repeats it.

Recipes:
- synthetic (CPU): one frozen trunk; fc7 of every window computed once and cached in
  RUN/features (float16); the heads train on the cached sequences, Adam lr 1e-3, 40 epochs.
- paper (GPU): the trunk is fine-tuned with the heads, end to end from the clips; the paper
  gives no schedule, so S-CNN's (SGD lr 1e-4, momentum 0.9, weight decay 5e-4).

The checkpoint is model "segment_tube": the heads' weights, with the trunk's state_dict
under the prefix "trunk." and its model and config under the config's "trunk" key.

Under torchrun (train/distributed.py) rank 0 decodes the frame cache first and the others
then read it; the saliency masks and fc7 features of the videos are computed once, each
rank writing those of its share of the videos (`fill_sharded`), and every rank then
reads them all from the cache. Every rank cuts the epoch's chunks from (seed, epoch) and
trains on its share `chunks[i:i+B][rank::world]` of each batch; each weighted
cross-entropy is normalised by the weights of the whole global batch
(`distributed.share`); the validation sequences are split over the ranks and their
predictions gathered; rank 0 alone writes the run and summary.json.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vidseg_cli.core.fs import write_text, write_with
from vidseg_cli.datasets import segment_tube_data as td
from vidseg_cli.datasets.scnn_data import ClipReader, FrameCache, dataset_paths, source_blocks
from vidseg_cli.errors import InputError
from vidseg_cli.models.registry import MODELS
from vidseg_cli.models.scnn import SCNNNet
from vidseg_cli.stages.superpixels import SuperpixelParams
from vidseg_cli.train import distributed

RECIPES: dict[str, dict[str, Any]] = {
    "synthetic": dict(epochs=40, lr=1e-3, optimizer="adam", batch_size=16, seq_len=32),
    "paper": dict(epochs=20, lr=1e-4, optimizer="sgd", batch_size=2, seq_len=32),
}


@dataclass
class SegmentTubeTrainOptions:
    data: str  # a `vidseg synth` set or a THUMOS14-style folder
    out: str  # run folder
    init: str  # the trunk: an S-CNN checkpoint or the C3D Sports-1M port
    gt: str | None = None  # ground truth, if not found in `data`
    videos: str | None = None  # videos folder (default data/videos)
    subset: str | None = "training"
    recipe: str = "synthetic"
    epochs: int | None = None
    lr: float | None = None
    batch_size: int | None = None  # chunks per step
    seq_len: int | None = None  # windows per chunk
    optimizer: str | None = None  # adam | sgd
    momentum: float = 0.9
    weight_decay: float = 5e-4  # sgd only
    hidden: int = 256  # LSTM hidden states per layer (§2.1)
    dropout: float = 0.5  # on fc7 [U]
    clip_mask: str = "soft"  # soft | hard | none
    mask_keep: float = td.MASK_KEEP  # κ of the soft mask
    unmasked_share: float = 0.0  # share of training windows whose clips are left unmasked
    saliency: str = "static"  # static | motion
    superpixels: int = 400
    val_fraction: float = 0.1
    max_steps: int | None = None
    seed: int = 0
    device: str = "auto"
    amp: bool = False
    resume: bool = False
    cache: str | None = None  # frame cache (default RUN/frames_cache)
    features: str | None = None  # mask and fc7 cache (default RUN/features)
    threads: int | None = None
    quiet: bool = False

    def setting(self, name: str) -> Any:
        v = getattr(self, name, None)
        return RECIPES[self.recipe][name] if v is None else v


def load_trunk(path: str) -> tuple[SCNNNet, str]:
    """The C3D trunk of an S-CNN checkpoint (any stage), or of the C3D Sports-1M port in a
    full-size S-CNN network; InputError for a checkpoint of another model."""
    from vidseg_cli.models.checkpoint.format import build_from_checkpoint
    from vidseg_cli.models.checkpoint.layouts import load_public_weights
    from vidseg_cli.models.checkpoint.weights import is_checkpoint, read_weights

    if is_checkpoint(read_weights(path)):
        model, ckpt = build_from_checkpoint(path, expect_model="scnn")
        return model, f"S-CNN {ckpt['config'].get('stage')} network"
    model = MODELS.build("scnn", stage="proposal", num_classes=2)
    return model, load_public_weights(path, model).summary()


def fc7(trunk: SCNNNet, clips: torch.Tensor) -> torch.Tensor:
    """fc7 of (B, 3, 16, h, w) 0..255 clips, with the trunk's own pixel normalization."""
    return trunk.features((clips.float() - trunk.pixel_mean) * trunk.pixel_scale)


class _Clips:
    """Saliency-aware clips of the training videos, the masks computed once and cached."""

    def __init__(self, trunk: SCNNNet, opts: SegmentTubeTrainOptions, folder: Path, settings: dict):
        self.spec, self.opts, self.folder = trunk.spec, opts, folder
        self.fill = trunk.pixel_mean if trunk.pixel_mean > 0 else td.MASK_FILL
        self.keep = {"soft": opts.mask_keep, "hard": 0.0, "none": 1.0}[opts.clip_mask]
        self.params = SuperpixelParams(count=opts.superpixels)  # the command's working size
        self.key = td.FeatureCache(folder, {**settings, "what": "mask"})

    def masks(self, video: td.TubeVideo) -> np.ndarray | None:
        if self.opts.clip_mask == "none":
            return None
        p = self.key.path(video).with_suffix(".npy")
        if not p.is_file():
            m = td.saliency_masks(source_blocks(Path(video.frames.source)), video.frames.frames.shape[1:3],
                                  self.opts.saliency, self.params)
            self.folder.mkdir(parents=True, exist_ok=True)
            write_with(p, lambda tmp: np.save(tmp, m), suffix=".npy")
        return np.load(p, mmap_mode="r")

    def reader(self, video: td.TubeVideo, masked: bool = True) -> ClipReader:
        """Clips of `video`; `masked=False` leaves them as they are (the mask-shift windows)."""
        masks = self.masks(video) if masked else None
        frames = td.MaskedFrames(video.frames.frames, masks, self.fill, self.keep)
        return ClipReader(frames, self.spec)


def _ce(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted cross-entropy over the windows with a target (>= 0); 0 when none has.
    Under torchrun: this rank's weighted sum over the weights of the global batch."""
    logits, target = logits.reshape(-1, logits.shape[-1]).float(), target.reshape(-1)
    keep = target >= 0
    if distributed.current().active:  # every rank calls the all-reduce, labelled or not
        w = weight.to(logits.device)
        total = (nn.functional.cross_entropy(logits[keep], target[keep], weight=w, reduction="sum")
                 if bool(keep.any()) else logits.sum() * 0.0)
        return distributed.share(total + logits.sum() * 0.0, w[target[keep]].sum())
    if not bool(keep.any()):
        return logits.sum() * 0.0
    return nn.functional.cross_entropy(logits[keep], target[keep], weight=weight.to(logits.device))


def _pad(rows: list[np.ndarray], fill: float) -> np.ndarray:
    n = max(len(r) for r in rows)
    out = np.full((len(rows), n, *rows[0].shape[1:]), fill, rows[0].dtype)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out


def _accuracy(pred: list[np.ndarray], labels: list[np.ndarray]) -> dict[str, float]:
    p, y = np.concatenate(pred), np.concatenate(labels)
    keep = y >= 0
    p, y = p[keep], y[keep]
    per = [float((p[y == k] == k).mean()) for k in np.unique(y)]
    return {"accuracy": float((p == y).mean()) if len(y) else 0.0,
            "mean_class_accuracy": float(np.mean(per)) if per else 0.0}


def train_segment_tube(opts: SegmentTubeTrainOptions, log=print) -> dict[str, Any]:
    """Build the data, the trunk and the heads, and run the Trainer (module docstring)."""
    from vidseg_cli.runtime import seed_everything
    from vidseg_cli.train.engine import Trainer, TrainSettings

    if opts.recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {', '.join(RECIPES)}")
    distributed.check_batch_size(opts.setting("batch_size"))
    if opts.threads:
        torch.set_num_threads(opts.threads)
    device = distributed.device(opts.device)
    seed_everything(opts.seed)
    t0 = time.perf_counter()
    run = Path(opts.out)

    # 1. the trunk and the videos, every window of both lengths labelled by coverage.
    trunk, init_note = load_trunk(opts.init)
    gt, videos_dir = dataset_paths(opts.data, opts.gt, opts.videos)
    lengths = td.CLIP_LENGTHS
    frames = FrameCache(opts.cache or run / "frames_cache", trunk.spec.frame_size)
    classes, videos = distributed.main_first(  # rank 0 fills the frame cache
        lambda: td.load_tube_videos(gt, videos_dir, frames, opts.subset, lengths, td.CLIP_OVERLAP))
    init_p = Path(opts.init).resolve()
    made = {"trunk": str(init_p), "trunk_size": init_p.stat().st_size, "trunk_mtime": init_p.stat().st_mtime_ns,
            "clip_mask": opts.clip_mask, "mask_keep": opts.mask_keep, "saliency": opts.saliency,
            "superpixels": opts.superpixels, "work_size": SuperpixelParams().work_size,
            "lengths": list(lengths), "overlap": td.CLIP_OVERLAP}
    feat_dir = Path(opts.features) if opts.features else run / "features"
    clips = _Clips(trunk, opts, feat_dir, made)

    # 2. sequences: one per (video, length); a seeded share of the videos held out.
    seqs = [(v, n) for v in range(len(videos)) for n in lengths if len(videos[v].windows[n])]
    n_val = int(round(len(videos) * opts.val_fraction))
    held = set()
    if opts.val_fraction > 0 and 0 < n_val < len(videos):
        held = set(np.random.default_rng([opts.seed, 7]).choice(len(videos), n_val, replace=False).tolist())
    train_seqs = [s for s in seqs if s[0] not in held]
    val_seqs = [s for s in seqs if s[0] in held]
    if not train_seqs:
        raise InputError(gt, "no training video is 16 frames or longer")
    labels = {s: videos[s[0]].labels[s[1]] for s in seqs}
    w_cla = torch.tensor(td.class_weights([labels[s] for s in train_seqs], len(classes)), dtype=torch.float32)
    w_pro = torch.tensor(td.class_weights([td.proposal_targets(labels[s]) for s in train_seqs], 2),
                         dtype=torch.float32)

    # 3. the synthetic recipe caches fc7 of every window once (the trunk is frozen).
    end_to_end = opts.recipe == "paper"
    mix = opts.unmasked_share if opts.clip_mask != "none" else 0.0
    feats: dict[tuple[int, int], np.ndarray] = {}
    plain: dict[tuple[int, int], np.ndarray] = {}  # fc7 of unmasked clips, when mixing
    computed = 0
    if not end_to_end:
        cache = td.FeatureCache(feat_dir, {**made, "what": "fc7"})
        plain_cache = td.FeatureCache(feat_dir, {**made, "clip_mask": "none", "what": "fc7"})
        trunk.to(device).eval()

        @torch.no_grad()
        def compute(video: td.TubeVideo, masked: bool = True) -> dict[int, np.ndarray]:
            reader, out = clips.reader(video, masked), {}
            win = np.concatenate([video.windows[n] for n in lengths])
            order = ClipReader.ordered(win)
            f = np.zeros((len(win), trunk.feature_dim), np.float32)
            for i in range(0, len(order), 32):
                x = torch.from_numpy(reader.clips(win[order[i:i + 32]])).to(device)
                f[order[i:i + 32]] = fc7(trunk, x).float().cpu().numpy()
            lo = 0
            for n in lengths:
                out[n], lo = f[lo:lo + len(video.windows[n])], lo + len(video.windows[n])
            return out

        # each rank computes and writes its share of the videos, then reads all of them
        computed = sum(distributed.fill_sharded(lambda video: cache.get(video, compute)[1], videos))
        if mix > 0:
            def unmasked(video: td.TubeVideo) -> dict[int, np.ndarray]:
                return compute(video, masked=False)

            distributed.fill_sharded(lambda video: plain_cache.get(video, unmasked)[1], videos)
        for v, video in enumerate(videos):
            got, _ = cache.get(video, compute)
            for n in lengths:
                feats[(v, n)] = got[n]
            if mix > 0:
                got, _ = plain_cache.get(video, unmasked)
                for n in lengths:
                    plain[(v, n)] = got[n]
        trunk.cpu()
    elif opts.clip_mask != "none":  # the masks, each written once, before any rank reads them
        distributed.fill_sharded(lambda video: clips.masks(video) is None, videos)

    # 4. the heads (and the trunk, carried in the checkpoint), optimizer.
    net = MODELS.build("segment_tube", num_classes=len(classes), in_features=trunk.feature_dim,
                       hidden=opts.hidden, dropout=opts.dropout, window_lengths=list(lengths),
                       window_overlap=td.CLIP_OVERLAP)
    net.trunk = trunk
    net.model_config = {**net.model_config, "trunk": {
        "model": trunk.model_name, "config": trunk.model_config, "source": str(opts.init),
        "weights": init_note, "clip_mask": opts.clip_mask, "mask_keep": opts.mask_keep,
        "saliency": opts.saliency, "superpixels": opts.superpixels, "unmasked_share": mix,
        "labels": "coverage", "fine_tuned": end_to_end}}
    for p in trunk.parameters():
        p.requires_grad_(end_to_end)
    params = [p for p in net.parameters() if p.requires_grad]
    lr = opts.setting("lr")
    if opts.setting("optimizer") == "adam":
        optimizer = torch.optim.Adam(params, lr=lr)
    else:
        optimizer = torch.optim.SGD(params, lr=lr, momentum=opts.momentum, weight_decay=opts.weight_decay)

    # 5. batches: chunks of consecutive windows, fc7 from the cache or clips from the video.
    bs, seq_len = opts.setting("batch_size"), opts.setting("seq_len")

    def targets(chunk_list):
        lab = _pad([labels[train_seqs[i]][a:b] for i, a, b in chunk_list], -1)
        return {"label": torch.from_numpy(lab), "proposal": torch.from_numpy(td.proposal_targets(lab))}

    def clips_of(j: int, a: int, b: int, bare: np.ndarray) -> np.ndarray:
        """The clips of windows a..b of training sequence j, those flagged in `bare` unmasked."""
        v, n = train_seqs[j]
        w = videos[v].windows[n][a:b]
        if not bare.any():
            return clips.reader(videos[v]).clips(w)
        parts = [(sel, clips.reader(videos[v], masked).clips(w[sel]))
                 for masked, sel in ((True, ~bare), (False, bare)) if sel.any()]
        out = np.empty((len(w), *parts[0][1].shape[1:]), parts[0][1].dtype)
        for sel, x in parts:
            out[sel] = x
        return out

    def batches(epoch: int):
        rng = np.random.default_rng([opts.seed, epoch])
        chunks = td.random_chunks([len(labels[s]) for s in train_seqs], seq_len, rng)
        # mask shift: which windows take unmasked clips, drawn for the global batch
        bare = [rng.random(b - a) < mix if mix > 0 else np.zeros(b - a, bool) for _, a, b in chunks]
        for i in range(0, len(chunks), bs):
            part = distributed.shard(list(zip(chunks[i:i + bs], bare[i:i + bs])))
            if part is None:  # a ragged last batch smaller than the ranks
                continue
            chunk_part = [c for c, _ in part]
            if end_to_end:
                x = [clips_of(j, a, b, u) for (j, a, b), u in part]
                yield {"clips": torch.from_numpy(_pad(x, 0)), **targets(chunk_part)}
            else:
                x = [np.where(u[:, None], plain[train_seqs[j]][a:b], feats[train_seqs[j]][a:b])
                     if u.any() else feats[train_seqs[j]][a:b] for (j, a, b), u in part]
                yield {"fc7": torch.from_numpy(_pad(x, 0).astype(np.float32)), **targets(chunk_part)}

    def sequence_fc7(model, b) -> torch.Tensor:
        if "fc7" in b:
            return b["fc7"]
        c = b["clips"]  # B x L x 3 x 16 x h x w
        return fc7(model.trunk, c.flatten(0, 1)).reshape(*c.shape[:2], -1)

    def loss_step(model, b) -> torch.Tensor:
        x = sequence_fc7(model, b)
        return (_ce(model.proposal(x)[0], b["proposal"], w_pro)
                + _ce(model.classification(x)[0], b["label"], w_cla))

    def validate(model) -> dict[str, float]:
        def predict(seq: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
            v, n = seq
            if end_to_end:
                reader, w = clips.reader(videos[v]), videos[v].windows[n]
                x = torch.cat([fc7(model.trunk, torch.from_numpy(reader.clips(w[i:i + 32])).to(device))
                               for i in range(0, len(w), 32)])[None]
            else:
                x = torch.from_numpy(feats[(v, n)].astype(np.float32))[None].to(device)
            pro, cla = model(x)
            return pro[0].argmax(-1).cpu().numpy(), cla[0].argmax(-1).cpu().numpy()

        # each rank predicts its share of the sequences; all of them, in order, on every rank
        pro_p, cla_p = zip(*distributed.map_sharded(predict, val_seqs))
        pro_y = [td.proposal_targets(labels[s]) for s in val_seqs]
        cla_y = [labels[s] for s in val_seqs]
        cla = _accuracy(cla_p, cla_y)
        return {**cla, "proposal_accuracy": _accuracy(pro_p, pro_y)["accuracy"]}

    n_windows = {str(n): int(sum(len(labels[s]) for s in train_seqs if s[1] == n)) for n in lengths}
    data_stats = {"classes": classes, "train_videos": len(videos) - len(held), "val_videos": len(held),
                  "held_out": sorted(videos[v].video_id for v in held),
                  "train_windows": n_windows, "class_weights": [round(float(w), 6) for w in w_cla],
                  "proposal_weights": [round(float(w), 6) for w in w_pro],
                  "features_computed": computed, "features_cached": len(videos) - computed
                  if not end_to_end else 0}
    settings = TrainSettings(
        epochs=opts.setting("epochs"), max_steps=opts.max_steps, seed=opts.seed, amp=opts.amp,
        monitor="mean_class_accuracy" if val_seqs else None, quiet=opts.quiet,
        extra={"segment_tube": asdict(opts), "recipe_settings": {k: opts.setting(k) for k in RECIPES[opts.recipe]},
               "init": init_note, "features": str(feat_dir), "data": data_stats})
    trainer = Trainer(net, classes, optimizer, run, settings, device, sharded=True)
    last = run / "last.ckpt"
    if opts.resume:
        if not last.is_file():
            raise InputError(last, "nothing to resume (no last.ckpt in the run folder)")
        trainer.resume(last)
    if not opts.quiet:
        log(f"Segment-tube ({opts.recipe}): {len(train_seqs)} training sequences, {len(val_seqs)} "
            f"validation; trunk: {init_note}; fc7 computed for {computed} of {len(videos)} videos"
            if not end_to_end else f"Segment-tube (paper, end to end): {len(train_seqs)} training "
            f"sequences, {len(val_seqs)} validation; trunk: {init_note}", file=sys.stderr)
    per_epoch = -(-sum(len(labels[s]) // seq_len + 1 for s in train_seqs) // bs)
    history = trainer.fit(batches, loss_step, validate if val_seqs else None, steps_per_epoch=per_epoch)
    summary = {"recipe": opts.recipe, "run_dir": str(run), "steps": trainer.step, "epochs": trainer.epoch,
               "seconds": round(time.perf_counter() - t0, 1), "best": trainer.best,
               "final": history[-1] if history else None, "data": data_stats, "init": init_note}
    if distributed.current().main:
        write_text(run / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    return summary
