"""Input-pipeline throughput: training images per second per core, ldlpose against a per-file loader.

Times, side by side in one run (settings interleaved, ROUNDS times, medians reported; ratios are
the median of per-round ratios, each round timing the loaders back to back), at each
image size and DataLoader worker count, batch 64, after one warm-up batch (worker start excluded):

* ``per-file``: a HopeNet-style loader (``bench/hopenet_loader.py``): one JPEG and one ``.mat``
  per sample, Pillow + ``scipy.io.loadmat`` + torchvision's PIL transforms, the same augmentation;
* ``ldlpose``: ``ldlpose.data.pipeline.train_loader`` on a CPU: float batches, fully augmented;
* ``ldlpose u8``: the CPU's share when a GPU finishes the batches (decode, crop, flip; uint8 out);
* ``ldlpose bytes``: the CPU's share when the GPU also decodes (encoded bytes and draws out);
* ``ray data`` (``--ray``): the same ``Preprocess`` per item through Ray Data (read_parquet +
  map_batches + iter_torch_batches), for comparison.

Per core: with 0 workers the main process does everything on one torch thread; with W workers,
images/s divided by W. Without ``--data`` it prepares synthhead data in a temporary folder, stored
the way real data is: 64-px images for the 64-px (CPU) setting and 256-px images (``prepare``'s
cap for 300W-LP crops) for 224 px, and writes the same images as files for the per-file loader.

    python bench/input_pipeline.py --json input_pipeline.json   # 64 and 224 px, 0 and 2 workers
    python bench/input_pipeline.py --smoke-test                  # seconds; checks that it runs
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

LOADERS = ("per-file", "ldlpose", "ldlpose u8", "ldlpose bytes", "ray data")
GPU_IMAGES_PER_S = 3000  # ResNet-50, bf16, 224 px, one current GPU (issue 12's figure)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, help="a prepared folder to read at every size (default: synthhead)")
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 224], help="network input sizes")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader worker counts")
    p.add_argument("--loaders", nargs="+", default=list(LOADERS[:4]), choices=LOADERS[:4])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--batches", type=int, default=12, help="timed batches per setting and round")
    p.add_argument("--rounds", type=int, default=3, help="interleaved repetitions (medians are reported)")
    p.add_argument("--workdir", type=Path, help="keep the generated data here (default: a temp folder)")
    p.add_argument("--ray", action="store_true", help="also time Ray Data doing the same work")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--smoke-test", action="store_true", help="tiny run to check the script works")
    return p.parse_args(argv)


def stored_size(size: int) -> int:
    return 64 if size <= 64 else 256


def prepare_synth(root: Path, stored: int, count: int) -> Path:
    from ldlpose.cli import main

    out = root / f"synth{stored}-{count}"
    if not (out / "train" / "_manifest.json").exists():
        code = main(["prepare", "synthhead", "--out", str(out), "--train", str(count), "--val", "0",
                     "--test", "0", "--size", str(stored), "--overwrite"])
        assert code == 0, "synthhead preparation failed"
    return out / "train"


def build(loader: str, folder: Path, files: Path, size: int, workers: int, batch_size: int):
    """A fresh loader of kind ``loader`` (see the module docstring)."""
    from hopenet_loader import perfile_loader
    from torch.utils.data import DataLoader, DistributedSampler

    from ldlpose.data.batches import Collate, EpochTagged, TrainItems
    from ldlpose.data.pipeline import Augment, HeadPoseDataset, Preprocess, train_loader

    if loader == "per-file":
        return perfile_loader(files, size=size, batch_size=batch_size, num_workers=workers)
    dataset = HeadPoseDataset(folder, transform=Preprocess(size, Augment()))
    if loader == "ldlpose":
        return train_loader(dataset, batch_size=batch_size, num_workers=workers)
    # The CPU side of the GPU paths: the same items and collate that train_loader(device="cuda") uses.
    items = TrainItems(dataset, seed=0, decode=loader == "ldlpose u8")
    return DataLoader(items, sampler=EpochTagged(DistributedSampler(items, num_replicas=1, rank=0, seed=0)),
                      batch_size=batch_size, drop_last=True, collate_fn=Collate(dataset.transform, finish=False),
                      num_workers=workers, persistent_workers=workers > 0)


def images_per_s(loader, batches: int, batch_size: int) -> float:
    done, epoch, start = -1, 0, None
    while done < batches:
        for sampler in (loader.sampler, loader.batch_sampler):
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)
        for _ in loader:
            if done == -1:  # warm-up batch: workers start, caches fill
                start = time.perf_counter()
            done += 1
            if done == batches:
                break
        epoch += 1
    return batches * batch_size / (time.perf_counter() - start)


def time_ray(folder: Path, size: int, batch_size: int, batches: int) -> float:
    import logging

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

    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
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


def measure(args, data: dict[int, tuple[Path, Path]]) -> list[dict]:
    """Every (size, workers, loader) setting, interleaved round by round so drift hits all alike."""
    rates: dict[tuple, list[float]] = {}
    for r in range(args.rounds):
        for size in args.sizes:
            for workers in args.workers:
                for name in args.loaders:
                    loader = build(name, *data[size], size, workers, args.batch_size)
                    rate = images_per_s(loader, args.batches, args.batch_size)
                    del loader
                    rates.setdefault((size, workers, name), []).append(rate)
                    print(f"  round {r + 1}: {size:>3} px  w={workers}  {name:<13} {rate:7.0f} images/s", flush=True)
            if args.ray:  # Ray Data uses every CPU; reported per core over all of them
                rate = time_ray(data[size][0], size, args.batch_size, args.batches)
                rates.setdefault((size, os.cpu_count(), "ray data"), []).append(rate)
    return [{"size": size, "stored": stored_size(size) if not args.data else None, "workers": workers,
             "loader": name, "images_per_s": statistics.median(v), "rounds": v,
             "per_core": statistics.median(v) / max(workers, 1)}
            for (size, workers, name), v in rates.items()]


def ratios(results: list[dict]) -> list[dict]:
    """ldlpose's loaders per core over the per-file loader's, per size and worker count: the median
    of the per-round ratios (each round times the two back to back) and their range."""
    base = {(r["size"], r["workers"]): r for r in results if r["loader"] == "per-file"}
    out = []
    for r in results:
        other = base.get((r["size"], r["workers"]))
        if other is None:
            continue
        per_round = [a / b for a, b in zip(r["rounds"], other["rounds"])]
        out.append({"size": r["size"], "workers": r["workers"], "loader": r["loader"],
                    "over_per_file": statistics.median(per_round), "per_round": per_round,
                    "cores_for_3000_per_s": GPU_IMAGES_PER_S / r["per_core"]})
    return out


def print_table(results: list[dict], machine: dict) -> None:
    rel = {(r["size"], r["workers"], r["loader"]): r for r in ratios(results)}
    print(f"\n{'size':>5} {'stored':>7} {'w':>2} {'loader':<14} {'images/s':>9} {'per core':>9} "
          f"{'x per-file':>10} {'(range)':>11} {'cores/3000':>10}   ({machine['cpus']} CPUs, load "
          f"{machine['load_before']:.1f} -> {machine['load_after']:.1f}; medians over rounds)")
    for r in sorted(results, key=lambda r: (r["size"], r["workers"], LOADERS.index(r["loader"]))):
        x = rel.get((r["size"], r["workers"], r["loader"]))
        stored = f"{r['stored']} px" if r["stored"] else "given"
        spread = f"{min(x['per_round']):.1f}-{max(x['per_round']):.1f}" if x else ""
        print(f"{r['size']:>5} {stored:>7} {r['workers']:>2} {r['loader']:<14} {r['images_per_s']:>9.0f} "
              f"{r['per_core']:>9.0f} {x['over_per_file'] if x else float('nan'):>10.2f} {spread:>11} "
              f"{x['cores_for_3000_per_s'] if x else float('nan'):>10.1f}")


def machine_info() -> dict:
    import torch

    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown") if Path("/proc/cpuinfo").exists() else "unknown"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=False, capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    return {"cpus": os.cpu_count(), "cpu_model": model, "torch": torch.__version__, "git_commit": commit,
            "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"), "load_before": os.getloadavg()[0]}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.smoke_test:
        args.batches, args.batch_size, args.rounds = 2, 8, 1
    count = 48 if args.smoke_test else 768
    import torch

    torch.set_num_threads(1)  # per core: the main process on one thread, like each loader worker
    machine = machine_info()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.workdir or Path(tmp)
        data = {}
        for size in args.sizes:
            folder = args.data or prepare_synth(root, stored_size(size), count if size <= 64 else count // 2)
            files = root / f"files-{folder.parent.name}"
            if not (files / "filename_list.txt").exists():
                from hopenet_loader import write_files

                write_files(folder, files)
            data[size] = (folder, files)
        results = measure(args, data)
    machine["load_after"] = os.getloadavg()[0]
    print_table(results, machine)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "settings": {k: str(v) if isinstance(v, Path) else v
                                                                          for k, v in vars(args).items()},
                                         "results": results, "ratios": ratios(results)}, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
