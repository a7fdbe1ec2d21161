"""Sep3D: a 3D encoder-decoder with separable convolutions (Sep3D §3) and its J-HMDB head.

Encoder (§3.2, Table 4): R(2+1)D-18 (models/r2plus1d.py) whose last two groups, layer3 and
layer4, lose their temporal stride and are dilated in time instead (temporal dilation 2 in
layer3 and 4 in layer4, DeepLab's rule), so an 8-frame clip gives a 4 x H/16 x W/16 map:
Table 4's best row (4 x 20 x 20 for 320x320 crops). §3.2's wording ("the last three groups
... temporal stride as 4") differs; Table 4 is what was measured, so we follow it. Spatially
nothing changes: R(2+1)D-18 already reduces H and W by 16.

3D pyramid pooling (§3.2), on layer4's map, five branches of `pyramid_channels` each:
- three 3x3x3 separable convs (§3.1: depthwise 3D + pointwise 1x1x1) at spatial dilation
  6, 12, 18 (temporal dilation 1). Those rates are for the paper's 384-pixel crops (a 24x24
  map); a smaller map would see mostly padding (§4, Table 4 discussion), so the rates are
  scaled by crop_size / 384 and rounded, at least 1: crop 320 -> 5, 10, 15; crop 112 ->
  2, 4, 5; crop 64 -> 1, 2, 3. `crop_size` is the spatial size the model is trained and
  run at (a constructor argument, so the rates are fixed and recorded in the checkpoint);
- a 1x1x1 branch (a separable conv with a 1x1x1 kernel is a pointwise conv);
- frame-level features: average over H x W (kernel H x W x 1), a 1x1x1 conv to the branch
  width, ReLU, then repeated over H x W (Figure 2's "reduced average pooling and duplication");
concatenated and fused by a 1x1x1 conv.

Decoder (§3.2): two groups of [trilinear upsampling to the next encoder map's T x H x W,
a 3x3x3 separable conv to `decoder_channels`, concatenation with that encoder map]
(layer3 at T/2 x H/8, then layer2 at T/2 x H/4), a last 3x3x3 separable conv, a 1x1x1
classifier, and trilinear upsampling of the logits to the input's T x H x W. Two groups,
like DeepLabv3+'s decoder (Sep3D's ref. [6]); the paper gives no widths, so ours are
256 (pyramid) and 128 (decoder) at width 1.0, scaled by `width`.

Every conv is followed by BatchNorm and ReLU (in a separable conv after the depthwise and
after the pointwise part, as in DeepLabv3+), except the classifier. `conv_type` swaps the
separable convs of pyramid and decoder for standard 3x3x3 or R(2+1)D convs (mid channels
as many weights as 3x3x3, Table 5) to count their cost (`head_op_counts`, Table 5).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vidseg_cli.models.common import check_video_input, scaled
from vidseg_cli.models.r2plus1d import R2Plus1D18, midplanes
from vidseg_cli.models.registry import MODELS

CONV_TYPES = ("separable", "standard", "r2plus1d")
PAPER_CROP = 384  # §4: spatial crop of training and testing, for which 6, 12, 18 were chosen
PAPER_DILATIONS = (6, 12, 18)


def scaled_dilations(dilations: Sequence[int], crop_size: int) -> tuple[int, ...]:
    """Pyramid rates for `crop_size`: rate * crop_size / 384, rounded half up, at least 1."""
    return tuple(max(1, int(d * crop_size / PAPER_CROP + 0.5)) for d in dilations)


def _bn_relu(c: int) -> list[nn.Module]:
    return [nn.BatchNorm3d(c), nn.ReLU(inplace=True)]


def conv3x3x3(
    in_ch: int,  # input channels
    out_ch: int,  # output channels
    conv_type: str = "separable",  # "separable" (§3.1), "standard" or "r2plus1d" (Table 5)
    dilation: tuple[int, int] = (1, 1),  # (temporal, spatial)
) -> nn.Sequential:
    """A 3x3x3 conv of the chosen kind, each conv followed by BN and ReLU. Same size out."""
    dt, ds = dilation
    if conv_type == "separable":  # §3.1, Eq. 2 and 3
        return nn.Sequential(
            nn.Conv3d(in_ch, in_ch, 3, padding=(dt, ds, ds), dilation=(dt, ds, ds),
                      groups=in_ch, bias=False),  # depthwise 3D
            *_bn_relu(in_ch),
            nn.Conv3d(in_ch, out_ch, 1, bias=False),  # pointwise 1x1x1
            *_bn_relu(out_ch),
        )
    if conv_type == "standard":  # Eq. 1
        return nn.Sequential(
            nn.Conv3d(in_ch, out_ch, 3, padding=(dt, ds, ds), dilation=(dt, ds, ds), bias=False),
            *_bn_relu(out_ch),
        )
    if conv_type == "r2plus1d":  # Eq. 5, mid channels as in R(2+1)D (Table 5 note)
        mid = midplanes(in_ch, out_ch)
        return nn.Sequential(
            nn.Conv3d(in_ch, mid, (1, 3, 3), padding=(0, ds, ds), dilation=(1, ds, ds), bias=False),
            *_bn_relu(mid),
            nn.Conv3d(mid, out_ch, (3, 1, 1), padding=(dt, 0, 0), dilation=(dt, 1, 1), bias=False),
            *_bn_relu(out_ch),
        )
    raise ValueError(f"conv_type must be one of {CONV_TYPES}, got {conv_type!r}")


class PyramidPooling3D(nn.Module):
    """§3.2's 3D pyramid pooling: dilated 3x3x3 branches, a 1x1x1 branch, frame features."""

    def __init__(
        self,
        in_ch: int,  # channels of the encoder's last map
        out_ch: int,  # channels of every branch and of the fused output
        dilations: Sequence[int] = PAPER_DILATIONS,  # spatial rates of the 3x3x3 branches
        conv_type: str = "separable",  # kind of the 3x3x3 branches
        frame_features: bool = True,  # the fifth, frame-level branch (Table 4 "+ FF")
    ):
        super().__init__()
        self.dilations = tuple(int(d) for d in dilations)
        self.branches = nn.ModuleList(
            [nn.Sequential(nn.Conv3d(in_ch, out_ch, 1, bias=False), *_bn_relu(out_ch))]
            + [conv3x3x3(in_ch, out_ch, conv_type, (1, d)) for d in self.dilations]
        )
        self.frame = (
            nn.Sequential(nn.Conv3d(in_ch, out_ch, 1), nn.ReLU(inplace=True)) if frame_features else None
        )
        n = len(self.branches) + (1 if frame_features else 0)
        self.fuse = nn.Sequential(nn.Conv3d(n * out_ch, out_ch, 1, bias=False), *_bn_relu(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [b(x) for b in self.branches]  # each B x P x T x H x W
        if self.frame is not None:
            f = self.frame(x.mean(dim=(3, 4), keepdim=True))  # B x P x T x 1 x 1
            outs.append(f.expand(-1, -1, -1, x.shape[3], x.shape[4]))
        return self.fuse(torch.cat(outs, dim=1))  # B x P x T x H x W


class Sep3DDecoder(nn.Module):
    """Upsample - conv - concat with the encoder map, twice; a last conv; the classifier."""

    def __init__(
        self,
        in_ch: int,  # pyramid output channels
        skip_channels: Sequence[int],  # channels of the encoder maps joined, coarse to fine
        channels: int,  # output channels of each decoder conv
        num_classes: int,  # logits per pixel
        conv_type: str = "separable",  # kind of the 3x3x3 convs
    ):
        super().__init__()
        self.ups = nn.ModuleList()
        c = in_ch
        for skip in skip_channels:
            self.ups.append(conv3x3x3(c, channels, conv_type))
            c = channels + skip
        self.last = conv3x3x3(c, channels, conv_type)
        self.classifier = nn.Conv3d(channels, num_classes, 1)

    def forward(self, x: torch.Tensor, skips: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (logits, features), both at the finest skip's size."""
        for conv, skip in zip(self.ups, skips):
            x = F.interpolate(x, size=skip.shape[2:], mode="trilinear", align_corners=False)
            x = torch.cat([conv(x), skip], dim=1)  # B x (D + C_skip) x T' x H' x W'
        feats = self.last(x)  # B x D x T/2 x H/4 x W/4
        return self.classifier(feats), feats


class Sep3D(nn.Module):
    """Sep3D segmentation network: per-pixel logits at the input's T x H x W."""

    def __init__(
        self,
        num_classes: int = 2,  # per-pixel classes (background + foreground/actions)
        width: float = 1.0,  # channel multiplier of encoder, pyramid and decoder
        crop_size: int = PAPER_CROP,  # spatial crop the model runs at; scales the rates
        pyramid_dilations: Sequence[int] = PAPER_DILATIONS,  # rates at a 384 crop (§3.2)
        pyramid_channels: int = 256,  # branch width at width 1.0 (ours, DeepLabv3+)
        decoder_channels: int = 128,  # decoder conv width at width 1.0 (ours)
        conv_type: str = "separable",  # "separable" (§3.1); "standard"/"r2plus1d" for Table 5
        frame_features: bool = True,  # the frame-level pyramid branch (Table 4, + FF)
        in_channels: int = 3,  # RGB
        # Encoder maps the decoder joins, coarse to fine: 2 = layer3, layer2 (stride 4 out);
        # 3 adds layer1 (stride 2, every frame), for objects a few stride-4 cells wide.
        decoder_levels: int = 2,
    ):
        super().__init__()
        if conv_type not in CONV_TYPES:
            raise ValueError(f"conv_type must be one of {CONV_TYPES}, got {conv_type!r}")
        if decoder_levels not in (2, 3):
            raise ValueError(f"decoder_levels must be 2 or 3, got {decoder_levels!r}")
        self.decoder_levels = decoder_levels
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.crop_size = crop_size
        # Table 4's best row: layer3 and layer4 keep T (stride 1, dilated in time instead).
        self.encoder = R2Plus1D18(
            num_classes=0, width=width, temporal_strides=(1, 2, 1, 1), in_channels=in_channels
        )
        c1, c2, c3, c4 = self.encoder.channels
        p, d = scaled(pyramid_channels, width), scaled(decoder_channels, width)
        self.dilations = scaled_dilations(pyramid_dilations, crop_size)
        self.pyramid = PyramidPooling3D(c4, p, self.dilations, conv_type, frame_features)
        self.decoder = Sep3DDecoder(p, (c3, c2, c1)[:decoder_levels], d, num_classes, conv_type)
        self.feature_dim = d

    min_input = (1, 16, 16)  # one encoder cell; smaller frames are all padding

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits B x K x T x H x W, decoder features B x D x T/2 x H/4 x W/4; with
        decoder_levels 3, B x D x T x H/2 x W/2)."""
        check_video_input(x, "sep3d", self.in_channels, self.min_input)
        l1, l2, l3, l4 = self.encoder.stages(x)  # l4: B x 512w x T/2 x H/16 x W/16
        y = self.pyramid(l4)  # B x P x T/2 x H/16 x W/16
        logits, feats = self.decoder(y, (l3, l2, l1)[: self.decoder_levels])
        logits = F.interpolate(logits, size=x.shape[2:], mode="trilinear", align_corners=False)
        return logits, feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_features(x)[0]  # B x K x T x H x W


MODELS.register("sep3d", Sep3D)


# -- Table 5: operations of pyramid + decoder -----------------------------------------------
def head_op_counts(
    conv_type: str,  # "separable", "standard" or "r2plus1d"
    clip: Sequence[int] = (8, 320, 320),  # T x H x W of the input clip (Table 5: 8 x 320 x 320)
    **config,  # other Sep3D arguments (width, crop_size, pyramid_channels, ...)
) -> dict[str, int]:
    """FLOPs (multiplications + additions, torch.utils.flop_counter) and parameters of the
    pyramid pooling and the decoder of a Sep3D for one clip, counted on the built modules
    on the meta device (no memory, no compute), as Table 5 counts "pyramid pooling and
    decoder part". Returns {"flops", "pyramid_flops", "decoder_flops", "params",
    "pyramid_params", "decoder_params"}. Convolutions are counted; BN, ReLU, pooling and
    interpolation are not (flop_counter does not count them)."""
    from torch.utils.flop_counter import FlopCounterMode

    config.setdefault("crop_size", int(clip[1]))
    with torch.device("meta"):
        model = Sep3D(conv_type=conv_type, **config).eval()
        x = torch.empty(1, model.in_channels, *clip)
    _, l2, l3, l4 = model.encoder.stages(x)
    with FlopCounterMode(display=False) as fc_pyr:
        y = model.pyramid(l4)
    with FlopCounterMode(display=False) as fc_dec:
        model.decoder(y, (l3, l2))

    def n_params(m: nn.Module) -> int:
        return sum(p.numel() for p in m.parameters())

    pf, df = fc_pyr.get_total_flops(), fc_dec.get_total_flops()
    pp, dp = n_params(model.pyramid), n_params(model.decoder)
    return {
        "flops": pf + df, "pyramid_flops": pf, "decoder_flops": df,
        "params": pp + dp, "pyramid_params": pp, "decoder_params": dp,
    }


# -- J-HMDB action classification (Sep3D §4, J-HMDB) ---------------------------------------
def largest_component_boxes(masks: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, the tight box around the largest 8-connected foreground region
    (stages/components.py: ties go to the first region in raster order).

    masks: ... x H x W, nonzero = foreground. Returns (boxes ... x 4 as float
    [x0, y0, x1, y1) in pixels, valid ... bool); a frame without foreground gets the whole
    frame as its box and valid False.
    """
    from vidseg_cli.stages.components import largest_component

    m = masks.detach().cpu().numpy() if isinstance(masks, torch.Tensor) else np.asarray(masks)
    keep, valid = largest_component(m)
    return region_boxes(keep), valid


def region_boxes(keep: np.ndarray) -> np.ndarray:
    """Per frame of ... x H x W region masks, the tight box [x0, y0, x1, y1) in pixels
    (float); the whole frame where the mask is empty."""
    from vidseg_cli.geometry import boxes_from_masks

    k = np.asarray(keep)
    lead, (h, w) = k.shape[:-2], k.shape[-2:]
    boxes = boxes_from_masks(k.reshape(-1, h, w))  # inclusive corners, NaN rows when empty
    boxes[:, 2:] += 1
    boxes[np.isnan(boxes[:, 0])] = (0, 0, w, h)
    return boxes.reshape(*lead, 4)


def crop_and_resize(
    features: torch.Tensor,  # B x C x h x w feature maps
    boxes: torch.Tensor,  # B x 4 boxes [x0, y0, x1, y1) in input pixels
    image_size: tuple[int, int],  # H, W of the input the boxes refer to
    out_size: int,  # side of the square output
) -> torch.Tensor:
    """Bilinear crop of each box from its feature map, resized to out_size x out_size
    (RoIAlign-like with one sample per bin; differentiable in the features). B x C x s x s."""
    b = features.shape[0]
    hh, ww = image_size
    # Sample centres of an s x s grid over each box, in input pixels, then in [-1, 1]
    # (align_corners=False: -1 and 1 are the outer edges of the feature map = of the image).
    steps = (torch.arange(out_size, dtype=features.dtype, device=features.device) + 0.5) / out_size
    x0, y0, x1, y1 = (boxes[:, i : i + 1].to(features.dtype) for i in range(4))
    xs = x0 + (x1 - x0) * steps  # B x s
    ys = y0 + (y1 - y0) * steps
    gx = (2 * xs / ww - 1)[:, None, :].expand(b, out_size, out_size)
    gy = (2 * ys / hh - 1)[:, :, None].expand(b, out_size, out_size)
    grid = torch.stack([gx, gy], dim=-1)  # B x s x s x 2 (x, y)
    return F.grid_sample(features, grid, mode="bilinear", padding_mode="border", align_corners=False)


def feature_frame_index(num_frames: int, feature_frames: int) -> torch.Tensor:
    """Input frame f of a clip reads the feature frame whose span covers it: f * T' // T
    (the encoder halves T once, so feature frame j covers input frames 2j and 2j + 1)."""
    return torch.div(torch.arange(num_frames) * feature_frames, num_frames, rounding_mode="floor")


class MaskActionClassifier(nn.Module):
    """Sep3D's J-HMDB head: the largest connected component of the predicted mask, a box
    tight around it on the final feature map of each frame, resized to a fixed size, then
    a classifier (a 3x3 conv and a linear layer): per-frame action logits."""

    def __init__(
        self,
        in_channels: int,  # channels of the feature map (Sep3D.feature_dim)
        num_actions: int,  # action classes (21 for J-HMDB)
        crop: int = 7,  # side of the resized box
        hidden: int = 128,  # channels of the classifier's conv
    ):
        super().__init__()
        self.crop = crop
        self.conv = nn.Sequential(nn.Conv2d(in_channels, hidden, 3, padding=1), nn.ReLU(inplace=True))
        self.fc = nn.Linear(hidden * crop * crop, num_actions)

    def classify(
        self,
        frame_features: torch.Tensor,  # N x C x h x w: the feature map of each frame
        boxes: torch.Tensor,  # N x 4 boxes [x0, y0, x1, y1) in pixels of the image
        image_size: tuple[int, int],  # H, W of the image the boxes refer to
    ) -> torch.Tensor:
        """Action logits N x A of one box per frame (crop, resize, conv, linear)."""
        crops = crop_and_resize(frame_features, boxes, image_size, self.crop)  # N x C x s x s
        return self.fc(self.conv(crops).flatten(1))

    def forward(
        self,
        features: torch.Tensor,  # B x C x T' x h x w (Sep3D decoder features)
        masks: torch.Tensor,  # B x T x H x W predicted foreground (bool or 0/1)
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (logits B x T x A, boxes B x T x 4 in pixels, valid B x T)."""
        b, t, hh, ww = masks.shape
        boxes_np, valid_np = largest_component_boxes(masks)
        boxes = torch.as_tensor(boxes_np, dtype=features.dtype, device=features.device)
        valid = torch.as_tensor(valid_np, device=features.device)
        logits = self.classify(frames_of(features, t), boxes.reshape(b * t, 4), (hh, ww))
        return logits.reshape(b, t, -1), boxes, valid


def frames_of(features: torch.Tensor, num_frames: int) -> torch.Tensor:
    """B x C x T' x h x w clip features -> (B*T) x C x h x w, one map per input frame."""
    b, c, tf = features.shape[:3]
    idx = feature_frame_index(num_frames, tf).to(features.device)
    return features[:, :, idx].permute(0, 2, 1, 3, 4).reshape(b * num_frames, c, *features.shape[3:])


class Sep3DWithHead(nn.Module):
    """A trained Sep3D segmenter and its action head in one checkpoint ("sep3d+head"), so
    `segment-3d --weights` needs one file. `forward` is the segmenter's (per-pixel logits).
    By default the segmenter stays frozen in eval mode (its BatchNorm statistics included)
    whatever `train()` is asked, since only the head is trained; `set_segmenter_trainable`
    lets it train too (the joint fine-tune of train/segment_head.py)."""

    def __init__(
        self,
        segmenter: dict,  # the Sep3D's constructor arguments (its checkpoint's config)
        action_names: Sequence[str],  # the head's classes, no background (J-HMDB: 21)
        crop: int = 7,  # side of the box resized on the feature map
        hidden: int = 128,  # channels of the head's conv
        segmenter_checkpoint: dict | None = None,  # {"path", "sha256"} it was trained on
    ):
        super().__init__()
        if not action_names:
            raise ValueError("a head needs at least one action class")
        self.segmenter = Sep3D(**segmenter)
        self.action_names = [str(a) for a in action_names]
        self.head = MaskActionClassifier(self.segmenter.feature_dim, len(self.action_names), crop, hidden)
        self.segmenter_checkpoint = segmenter_checkpoint
        self.min_input = self.segmenter.min_input
        self.set_segmenter_trainable(False)

    def set_segmenter_trainable(self, trainable: bool = True, bn_stats: bool = True) -> Sep3DWithHead:
        """Frozen (False, the default: no gradients, always eval mode) or trained with the
        head (True: gradients, and train()/eval() reach it, so BatchNorm updates its
        statistics in training unless `bn_stats` is False: then its BatchNorm layers stay in
        eval mode, normalising with the statistics the segmenter was trained with, while
        their scales and shifts still learn). A switch, not a constructor argument: the
        checkpoint's config, and so inference, is the same either way."""
        self.segmenter_trainable = bool(trainable)
        self.segmenter_bn_stats = bool(bn_stats)
        for p in self.segmenter.parameters():
            p.requires_grad_(self.segmenter_trainable)
        self.train(self.training)
        return self

    def train(self, mode: bool = True) -> Sep3DWithHead:
        super().train(mode)
        if not self.segmenter_trainable:
            self.segmenter.eval()  # frozen: BN keeps its running statistics
        elif mode and not self.segmenter_bn_stats:
            for m in self.segmenter.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.segmenter(x)  # B x K x T x H x W


MODELS.register("sep3d+head", Sep3DWithHead)
