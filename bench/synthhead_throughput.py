"""Throughput of ``ldlpose.data.synthhead.generate`` in one process, and a picture grid to look at.

    python bench/synthhead_throughput.py                 # images/s at 64 and 224 px
    python bench/synthhead_throughput.py --smoke-test    # a few images, for CI
    python bench/synthhead_throughput.py --grid bench/out/synthhead_grid.png
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ldlpose.data import synthhead
from ldlpose.report import drawing as viz


def images_per_second(size: int, count: int, seed: int = 0) -> tuple[float, float]:
    """Rate of generating ``count`` training images of ``size`` px, per wall and per CPU second.

    The CPU-time rate is what one process achieves on an otherwise idle core; the wall rate also
    counts time lost to other work on a busy machine.
    """
    next(synthhead.generate("train", 1, size=size, seed=seed))  # imports and caches out of the timing
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in synthhead.generate("train", count, size=size, seed=seed):
        pass
    return count / (time.perf_counter() - wall), count / (time.process_time() - cpu)


def preview_grid(count: int = 24, *, size: int = 128, ncols: int = 6, seed: int = 0) -> np.ndarray:
    """Validation samples with their pose axes drawn at the head box centre, captioned by pose."""
    tiles, captions = [], []
    for sample in synthhead.generate("val", count, size=size, seed=seed, images_per_identity=1):
        x0, y0, x1, y1 = sample.box
        tiles.append(viz.draw_pose(sample.image, sample.angles_deg, center=((x0 + x1) / 2, (y0 + y1) / 2),
                                   size=0.35 * size))
        captions.append(viz.pose_caption(sample.angles_deg))
    return viz.image_grid(tiles, ncols, captions=captions)


def sweep_grid(size: int = 128) -> np.ndarray:
    """One identity in the canonical scene, sweeping yaw, pitch and roll one at a time."""
    steps = np.array([-1.0, -2 / 3, -1 / 3, 1 / 3, 2 / 3, 1.0])
    angles = np.zeros((18, 3))
    for axis, limit in enumerate((90.0, 60.0, 45.0)):
        angles[6 * axis:6 * axis + 6, axis] = steps * limit
    images = synthhead.render(angles, size=size, identity=synthhead.make_identity("val", 3))
    tiles = [viz.draw_pose(im, a, size=0.35 * size) for im, a in zip(images, angles)]
    return viz.image_grid(tiles, 6, captions=[viz.pose_caption(a) for a in angles])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke-test", action="store_true", help="a few images only")
    parser.add_argument("--count", type=int, default=400, help="images per size (default 400)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 224])
    parser.add_argument("--grid", type=Path, help="also write a 4x6 grid of posed samples (PNG)")
    parser.add_argument("--sweep", type=Path, help="also write a yaw/pitch/roll sweep grid (PNG)")
    args = parser.parse_args(argv)
    count = 4 if args.smoke_test else args.count
    for size in args.sizes:
        n = count if size <= 128 else max(1, count // 4)  # large images are slow; fewer suffice
        wall, cpu = images_per_second(size, n)
        print(f"synthhead {size:>4d} px: {wall:7.1f} images/s wall, {cpu:7.1f} per CPU second "
              f"({n} images, 1 process)")
    from PIL import Image

    for path, make in ((args.grid, preview_grid), (args.sweep, sweep_grid)):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(make()).save(path)
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
