"""Deterministic synthetic untrimmed action videos with pixel, frame and segment labels.

A video is a static textured background seen through a shaky camera, with pixel noise, on
which actors appear, sometimes stand still for a moment, perform one action, sometimes stand
still again, and vanish. An actor's *motion pattern* is its class; its shape, size, colour,
texture and orientation are drawn independently of the class, so no single frame tells the
classes apart, while a few frames of motion do. Static distractor objects (drawn behind the
actors) make "something is there" no evidence of an action either. With
`appearance="class"` an actor's look carries its class as well (its shape, hue band and
texture, like a golf club or a pool in real footage), for checking appearance-only models
such as an RGB frame classifier; the motion is still the class, and the timelines, sizes
and placements are those of the default set.

Pixel labels: an actor's silhouette carries its class on the frames of its action, the
half-open interval [start, end); everything else is background (0), still actors and
distractors included. Frame `start` shows the rest pose the motion leaves from and frame
`end - 1` the pose it stops in, so every labelled frame borders a moving step. Actors
performing at the same time never overlap (placement rejects overlapping paths), so every
frame of a class-c segment holds class-c pixels and no other.

Everything is drawn from one `numpy.random.Generator` per video, seeded by (seed, subset,
index): a video does not depend on how many others are made, in what order, or by how many
workers. The library is arrays in, arrays out (`config`: the set's options; `sample`: the
scene, actors and timeline; `render`: frames and pixel labels), except for `write`, which
writes a set's files and which the CLI calls.

    cfg = SynthConfig(num_classes=4)                             # config.py
    spec = sample_video(cfg, seed=0, subset="train", index=3)     # sample.py -> VideoSpec
    rgb, labels = render_frame(spec, t)                          # render.py: (H,W,3) uint8, (H,W) uint8
"""
