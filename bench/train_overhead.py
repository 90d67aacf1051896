"""Epoch time of `ldlpose train` (Ray Train, 1 worker) against a bare PyTorch loop.

Same model, data, batch size and thread count; the two are run alternately, ROUNDS times, in one
go, so that drifting machine load affects both alike. Reported: the median time of one training
epoch (the loop over the training set) and its ratio, ldlpose / bare (target <= 1.10).

    python bench/train_overhead.py [--rounds 3] [--train 1024] [--smoke-test]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")


def prepare(root: Path, count: int) -> None:
    from ldlpose.cli import main

    if not (root / "synthhead" / "train" / "manifest.json").is_file():
        main(["prepare", "synthhead", "--out", str(root / "synthhead"), "--train", str(count),
              "--val", "64", "--test", "64", "--size", "64"])


def run_config(root: Path, batch: int, epochs: int, threads: int):
    from ldlpose.config import run_config_from_dict

    return run_config_from_dict({
        "name": "bench",
        "method": {"name": "gldl"},
        "model": {"backbone": "resnet18", "weights": "none"},
        "data": {"root": str(root), "benchmarks": ["synth"], "image_size": 64, "max_eval_samples": 64},
        "train": {"epochs": epochs, "batch_size": batch, "schedule": {"name": "none"}, "max_failures": 0},
        "resources": {"workers": 1, "cpus_per_worker": threads},
    })


def bare_epochs(run, epochs: int, threads: int) -> list[float]:
    """A plain PyTorch loop: model, Adam, the method's loss; nothing else."""
    import torch

    from ldlpose import methods
    from ldlpose.models import build_model
    from ldlpose.train.data import build_loaders

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    method = methods.create(run.method.name)
    model = build_model(method, run.model.backbone, run.model.weights)
    optimizer = torch.optim.Adam(model.parameters(), lr=run.train.optimizer.lr)
    loaders = build_loaders(run, method)
    times = []
    for epoch in range(epochs):
        loaders.set_epoch(epoch)
        model.train()
        start = time.perf_counter()
        for batch in loaders.train:
            loss, _ = method.loss(model(batch["image"]), batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        times.append(time.perf_counter() - start)
    return times


def ldlpose_epochs(run, storage: str, name: str) -> list[float]:
    from ldlpose.train.run import fit

    outcome = fit(run, storage_path=storage, name=name)
    return [h["train_time_s"] for h in outcome.history]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2, help="epochs per run; the first is warm-up")
    parser.add_argument("--train", type=int, default=1024, help="training images")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--data", help="data root (default: a temporary folder)")
    parser.add_argument("--smoke-test", action="store_true", help="one round on 128 images")
    args = parser.parse_args(argv)
    if args.smoke_test:
        args.rounds, args.train, args.epochs = 1, 128, 2

    import ray

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.data or tmp) / "data"
        prepare(root, args.train)
        run = run_config(root, args.batch, args.epochs, args.threads)
        ray.init(address="local", num_cpus=args.threads, log_to_driver=False)
        bare, ours = [], []
        for r in range(args.rounds):
            ours += ldlpose_epochs(run, tmp, f"bench-{r}")[1:]  # drop the warm-up epoch
            bare += bare_epochs(run, args.epochs, args.threads)[1:]
            print(f"round {r + 1}: ldlpose {ours[-1]:.2f} s/epoch, bare {bare[-1]:.2f} s/epoch", flush=True)
        ray.shutdown()
    med_ours, med_bare = statistics.median(ours), statistics.median(bare)
    print(f"\n{args.train} images, batch {args.batch}, {args.threads} threads, resnet18 at 64 px, gldl")
    print(f"median training epoch: ldlpose train {med_ours:.2f} s, bare PyTorch {med_bare:.2f} s, "
          f"ratio {med_ours / med_bare:.3f} (target <= 1.10)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
