"""`vidseg extract-features`: frames files to per-snippet feature files (FSN §3.2)."""

from __future__ import annotations

import click

from vidseg_cli.cli.common import (
    device_option,
    expand_inputs,
    fail,
    finish,
    jobs_for,
    json_option,
    overwrite_option,
    quiet_option,
    resolve_outputs,
    run_batch,
)
from vidseg_cli.cmdline import command_line

STAGE = "extract-features"


@click.command(STAGE)
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", "out", required=True, type=click.Path(),
              help="Output .h5 (one input) or folder (<video_id>.features.h5 per input).")
@click.option("--weights", required=True, type=click.Path(),
              help="Our backbone checkpoint (`vidseg train backbone`), torchvision-layout "
                   "ImageNet ResNet-18/50 or VGG-16 weights, the C3D Sports-1M port, or the "
                   "pytorch-i3d port's rgb_imagenet.pt / flow_imagenet.pt.")
@click.option("--backbone", type=click.Choice(["resnet18", "resnet50", "vgg16", "c3d", "i3d"]), default=None,
              help="The network (default: the checkpoint's; required for public weights).")
@click.option("--stream", type=click.Choice(["rgb", "flow", "rgb+flow"]), default=None,
              help="rgb: the snippet's centre frame (i3d: all its frames); flow: 5 stacked optical "
                   "flow fields around it (10 channels, TSN; i3d: one 2-channel field per frame); "
                   "rgb+flow: i3d's two streams concatenated (2048-d, needs --flow-weights). "
                   "Default: the weights' (i3d: rgb+flow when --flow-weights is given), else rgb.")
@click.option("--flow-weights", type=click.Path(), default=None,
              help="i3d: the flow stream's weights (flow_imagenet.pt); --weights is then the RGB stream's.")
@click.option("--snippet", type=click.IntRange(1), default=None,
              help="Frames per snippet; its centre frame represents it (FSN 3.2, 3.5). "
                   "Default depends on the backbone: 16 for i3d, else 5.")
@click.option("--stride", type=click.IntRange(1), default=None,
              help="Frames between snippet starts. Default depends on the backbone: 4 for i3d "
                   "(the published THUMOS14 I3D features), else --snippet (consecutive snippets).")
@click.option("--crop-size", type=click.IntRange(1), default=224, show_default=True,
              help="i3d: frames are resized to 340x256 scaled by N/224 and their centre NxN "
                   "taken (the published THUMOS14 I3D features: 224). docs/features.md.")
@click.option("--flow", "flow_method", type=click.Choice(["tvl1", "farneback"]), default=None,
              help="Optical flow for the flow stream: TV-L1 (TSN's) or the faster Farneback. "
                   "Default: the one the backbone checkpoint was trained on, else tvl1.")
@click.option("--vgg-head", type=click.Choice(["fc7", "gap"]), default="fc7", show_default=True,
              help="vgg16 with public weights: fc7 (4096) or global average pool of conv5_3 (512).")
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True,
              help="Snippets per forward pass.")
@device_option
@click.option("--amp", is_flag=True, help="Mixed precision (float16 on CUDA, bfloat16 on CPU).")
@overwrite_option
@quiet_option
@json_option
def extract_features(inputs, out, weights, backbone, stream, flow_weights, snippet, stride, crop_size,
                     flow_method, vgg_head, batch_size, device, amp, overwrite, quiet, json_out):
    """One feature vector per snippet of each frames file in INPUTS (files, or folders of
    frames files): the globally pooled
    2D CNN output for the snippet's centre frame (rgb) or its 5 stacked flow fields (flow),
    C3D's fc7 for the 16-frame clip centred on it (FSN 3.2), or I3D's 1024-d pooled
    Mixed_5c for all the snippet's frames (RGB and/or 2-channel flow; 2048-d for both).
    Snippet and stride defaults depend on the backbone (docs/features.md).

    The features file stores each feature's centre frame (`centers`) and the attributes
    snippet, stride, backbone, stream and flow_method, so positions map to frames and
    seconds without any configuration. Existing outputs are skipped (reruns resume); a
    long video also resumes from its last saved progress. A video shorter than one snippet
    gives a warning and an empty, valid file.
    """
    from vidseg_cli.api.extract_features import Options, load
    from vidseg_cli.errors import InputError

    opts = Options(weights=weights, backbone=backbone, stream=stream, snippet=snippet,
                   stride=stride, flow_weights=flow_weights, crop_size=crop_size, flow=flow_method, vgg_head=vgg_head, batch_size=batch_size,
                   device=device, amp=amp, command=command_line())
    inputs = [str(p) for p in expand_inputs(STAGE, inputs, ["frames"], quiet)]
    outputs = resolve_outputs(STAGE, list(inputs), out, "features")
    try:
        extractor = load(opts)
    except (InputError, ValueError) as e:
        fail(STAGE, str(e))

    res = run_batch(STAGE, jobs_for(inputs, outputs, "frames", "features"),
                    lambda job: extractor.run(job.inputs, job.outputs),
                    overwrite=overwrite, jobs=1, quiet=quiet)
    finish(STAGE, res, len(inputs), json_out,
           {"backbone": extractor.name, "stream": extractor.stream, "results": res.results}, quiet=quiet)
