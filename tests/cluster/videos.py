"""Small synthetic mp4s and a broken one, for the submission tests and the benchmark."""

from __future__ import annotations

from pathlib import Path


def make_videos(folder: Path, n: int, broken: bool = True, frames: int = 8) -> list[Path]:
    """`n` tiny mp4s (vid0..), plus `broken.mp4` (not a video) sorted first when asked."""
    import numpy as np

    from vidseg_cli.video.write import write_mp4

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    if broken:
        (folder / "broken.mp4").write_bytes(b"not a video at all")
        paths.append(folder / "broken.mp4")
    for i in range(n):
        rgb = np.random.default_rng(i).integers(0, 255, (frames, 32, 48, 3)).astype(np.uint8)
        write_mp4(folder / f"vid{i}.mp4", iter(rgb), 48, 32, 10.0)
        paths.append(folder / f"vid{i}.mp4")
    return paths


def fix_broken(folder: Path) -> None:
    """Replace broken.mp4 with a real video."""
    (folder / "broken.mp4").write_bytes((folder / "vid0.mp4").read_bytes())
