"""Small synthetic mp4s and a broken one, for the submission tests and the benchmark."""

from __future__ import annotations

from pathlib import Path


def make_videos(folder: Path, n: int, broken: bool = True, frames: int = 8,
                size: tuple[int, int] = (48, 32), fps: float = 10.0) -> list[Path]:
    """`n` mp4s of seeded noise (vid0..), tiny by default, plus `broken.mp4` (not a video)
    sorted first when asked."""
    import numpy as np

    from vidseg_cli.video.write import write_mp4

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    if broken:
        (folder / "broken.mp4").write_bytes(b"not a video at all")
        paths.append(folder / "broken.mp4")
    for i in range(n):
        w, h = size
        rng = np.random.default_rng(i)
        rgb = (rng.integers(0, 255, (h, w, 3)) for _ in range(frames))
        write_mp4(folder / f"vid{i}.mp4", (f.astype(np.uint8) for f in rgb), w, h, fps)
        paths.append(folder / f"vid{i}.mp4")
    return paths


def fix_broken(folder: Path) -> None:
    """Replace broken.mp4 with a real video."""
    (folder / "broken.mp4").write_bytes((folder / "vid0.mp4").read_bytes())
