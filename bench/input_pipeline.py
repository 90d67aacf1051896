"""Input-pipeline throughput: training images per second of ldlpose.data.pipeline on this machine.

Times the training loader (random crop, flip, colour jitter, blur, ImageNet normalisation; batch 64)
at each image size and DataLoader worker count, after one warm-up batch (worker start-up excluded).

Without ``--data`` it prepares synthhead data in a temporary folder, stored the way real data is:
64-px images for the 64-px (CPU) setting, and 256-px images (the ``prepare`` default cap for real
300W-LP/AFLW2000 crops) for the 224-px (GPU) setting. ``--ray`` adds the same decode and
augmentation run through Ray Data (read_parquet + map_batches + iter_torch_batches) for comparison.

    python bench/input_pipeline.py                 # 64 and 224 px, 0 and 2 workers
    python bench/input_pipeline.py --smoke-test    # seconds; checks that it runs
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, help="a prepared folder to read (default: temporary synthhead data)")
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 224], help="network input sizes")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader worker counts")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--batches", type=int, default=30, help="timed batches per setting")
    p.add_argument("--ray", action="store_true", help="also time Ray Data doing the same work")
    p.add_argument("--workdir", type=Path, help="keep the generated synthhead data here (default: a temp folder)")
    p.add_argument("--threads", type=int, help="torch.set_num_threads in the main process (default: torch's)")
    p.add_argument("--smoke-test", action="store_true", help="tiny run to check the script works")
    return p.parse_args(argv)


def stored_size(size: int) -> int:
    return 64 if size <= 64 else 256


def prepare_synth(root: Path, stored: int, count: int) -> Path:
    from ldlpose.cli import main

    out = root / f"synth{stored}"
    if not (out / "train" / "manifest.json").exists():
        code = main(["prepare", "synthhead", "--out", str(out), "--train", str(count), "--val", "0",
                     "--test", "0", "--size", str(stored)])
        assert code == 0, "synthhead preparation failed"
    return out / "train"


def time_torch(folder: Path, size: int, workers: int, batch_size: int, batches: int) -> float:
    from ldlpose.data.pipeline import Augment, HeadPoseDataset, Preprocess, set_epoch, train_loader

    ds = HeadPoseDataset(folder, transform=Preprocess(size, Augment()))
    loader = train_loader(ds, batch_size=batch_size, num_workers=workers, seed=0)
    done, epoch, start = -1, 0, None
    while done < batches:
        set_epoch(loader, epoch)
        for batch in loader:
            if done == -1:  # warm-up batch: workers start, caches fill
                start = time.perf_counter()
            done += 1
            if done == batches:
                break
        epoch += 1
    elapsed = time.perf_counter() - start
    del loader
    return batches * batch_size / elapsed


def time_ray(folder: Path, size: int, batch_size: int, batches: int) -> float:
    import numpy as np
    import ray
    import torch

    from ldlpose.data.augment import Augment, Preprocess
    from ldlpose.data.shards import shard_paths

    preprocess = Preprocess(size, Augment())

    def transform(batch: dict) -> dict:
        out = [preprocess(data, np.stack([y, p, r])) for data, y, p, r in
               zip(batch["image"], batch["yaw"], batch["pitch"], batch["roll"])]
        return {"image": torch.stack([o[0] for o in out]).numpy(),
                "angles_deg": torch.stack([o[1] for o in out]).numpy()}

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
             ignore_reinit_error=True, logging_level="ERROR")
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    ray.data.DataContext.get_current().enable_progress_bars = False
    ds = ray.data.read_parquet([str(p) for p in shard_paths(folder)], columns=["image", "yaw", "pitch", "roll"])
    ds = ds.map_batches(transform, batch_size=batch_size)
    done, start = -1, None
    while done < batches:
        for _ in ds.iter_torch_batches(batch_size=batch_size, local_shuffle_buffer_size=4 * batch_size):
            if done == -1:
                start = time.perf_counter()
            done += 1
            if done == batches:
                break
    return batches * batch_size / (time.perf_counter() - start)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.smoke_test:
        args.batches, args.batch_size, args.workers = 2, 8, [0, 2]
    count = 64 if args.smoke_test else 1024
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'size':>5} {'stored':>7} {'loader':>10} {'images/s':>9}   ({os.cpu_count()} CPUs, load "
              f"{os.getloadavg()[0]:.1f}, batch {args.batch_size}, {args.batches} batches)")
        for size in args.sizes:
            folder = args.data or prepare_synth(args.workdir or Path(tmp), stored_size(size),
                                                count if size <= 64 else count // 2)
            stored = "as given" if args.data else f"{stored_size(size)} px"
            for workers in args.workers:
                rate = time_torch(folder, size, workers, args.batch_size, args.batches)
                print(f"{size:>5} {stored:>7} {'torch w=' + str(workers):>10} {rate:>9.0f}", flush=True)
            if args.ray:
                rate = time_ray(folder, size, args.batch_size, args.batches)
                print(f"{size:>5} {stored:>7} {'ray data':>10} {rate:>9.0f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
