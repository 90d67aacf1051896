"""Where a training epoch's time goes on one core: the loader against the network's step.

A run config's own loaders (``train/data.build_loaders``, the loop's training loader) deliver
``--batches`` batches, timed alone after the first (which also opens the shards); then the same
batches go through the loop's step (forward, the method's loss, backward, optimizer step), timed
alone, and through a step on random tensors of the same shape with a trivial loss, which is what a
bare model benchmark measures. One process, one thread (``--threads``), side by side, so that the
ratios hold on a shared machine.

``--backbones A B ...`` also sends the same batches through the loop's step of each of those
backbones, ``--rounds`` times in turn (A, B, A, B, ...), and reports each one's median: which
backbone trains fastest on this machine, with the run's own data, loss and optimizer. Beside each
rate it records what that step ran (the backbone's class, the network's parameter count).

    python bench/epoch_parts.py configs/synth-mobilenet.yaml [--set KEY=VALUE ...] [--json out.json]
    python bench/epoch_parts.py configs/synth-mobilenet.yaml --backbones mobilenet_v3_small shufflenet_v2_x0_5
    python bench/epoch_parts.py configs/synth-mobilenet.yaml --smoke-test    # seconds, 3 batches
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="run-config YAML (its data is generated on first use if it is synthhead)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--batches", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--backbones", nargs="+", default=[], help="also time the step of these backbones")
    p.add_argument("--rounds", type=int, default=3, help="turns of the --backbones comparison")
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--smoke-test", action="store_true", help="3 batches: checks the script runs")
    return p.parse_args(argv)


def _images_per_s(images: int, seconds: float) -> float:
    return images / seconds if seconds > 0 else float("inf")


def _steps(model, method, optimizer, batches, real_loss: bool) -> float:
    started = time.perf_counter()
    for batch in batches:
        outputs = model(batch["image"]).float()
        loss = method.loss(outputs, batch)[0] if real_loss else outputs.pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - started


def _fresh(run, method, backbone: str):
    """A network of ``backbone`` from the run's seed (random init) in training mode, and its optimizer."""
    import torch

    from ldlpose.models import build_model
    from ldlpose.train.optim import make_optimizer

    torch.manual_seed(run.train.seed)
    model = build_model(method, backbone, "none").train()
    return model, make_optimizer(model, run.train.optimizer)


def what_ran(model) -> dict:
    """The network a step ran, to read beside its rate: its backbone's class and its parameter count."""
    return {"backbone_class": type(model.backbone).__name__,
            "parameters": sum(p.numel() for p in model.parameters())}


def compare_backbones(run, batches: list[dict], backbones: list[str], rounds: int) -> tuple[dict, dict]:
    """Images/s of the loop's step per backbone on the same ``batches``: the median of ``rounds`` turns,
    the backbones taking turns so that a change in the machine's load reaches all of them alike; and
    per backbone, what its step ran (:func:`what_ran`), so that a table can be checked to compare
    the networks it names without reading anything into the rates."""
    import statistics

    from ldlpose import methods

    method = methods.create(run.method.name, **run.method.hparams)
    images = sum(len(b["image"]) for b in batches)
    rates: dict[str, list[float]] = {name: [] for name in backbones}
    ran: dict[str, dict] = {}
    for _ in range(rounds):
        for name in backbones:
            model, optimizer = _fresh(run, method, name)
            _steps(model, method, optimizer, batches[:1], True)  # first-call allocations, not timed
            rates[name].append(_images_per_s(images, _steps(model, method, optimizer, batches, True)))
            ran[name] = what_ran(model)
    return {name: statistics.median(values) for name, values in rates.items()}, ran


def measure(run, batches: int, backbones: list[str] = (), rounds: int = 3) -> dict:
    import torch

    from ldlpose import methods
    from ldlpose.train.data import build_loaders

    method = methods.create(run.method.name, **run.method.hparams)
    loader = build_loaders(run, method).train
    loader.set_epoch(0)
    batch_iter = iter(loader)
    taken = [next(batch_iter)]  # the first batch also opens the shards: not timed
    started = time.perf_counter()
    for batch in batch_iter:
        taken.append(batch)
        if len(taken) == batches + 1:
            break
    load_s = time.perf_counter() - started
    images = sum(len(b["image"]) for b in taken[1:])
    taken = taken[1:]
    random = [{"image": torch.rand_like(b["image"])} for b in taken]
    rates = {"loader": _images_per_s(images, load_s)}
    for label, data, real in (("step", taken, True), ("bare step, random input", random, False)):
        model, optimizer = _fresh(run, method, run.model.backbone)
        rates[label] = _images_per_s(images, _steps(model, method, optimizer, data, real))
    rates["loader + step, as the loop runs them"] = 1 / (1 / rates["loader"] + 1 / rates["step"])
    result = {"images": images, "batch_size": run.train.batch_size, "image_size": run.data.image_size,
              "backbone": run.model.backbone, "method": run.method.name, "images_per_s": rates}
    if backbones:
        rates_by_backbone, ran = compare_backbones(run, taken, list(backbones), rounds)
        result["step_images_per_s_by_backbone"] = rates_by_backbone
        result["step_model_by_backbone"] = ran
        result["rounds"] = rounds
    return result


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from ldlpose.config import load_run_config
    from ldlpose.data.ensure import ensure_training_data

    torch.set_num_threads(args.threads)
    run = load_run_config(args.config, args.overrides)
    ensure_training_data(run)
    result = measure(run, 3 if args.smoke_test else args.batches, args.backbones, 1 if args.smoke_test else args.rounds)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=False, capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    result.update(config=args.config, overrides=args.overrides, threads=args.threads, commit=commit,
                  date=datetime.date.today().isoformat(), cpus=os.cpu_count())
    print(f"{run.model.backbone} at {run.data.image_size} px, batch {run.train.batch_size}, "
          f"{args.threads} thread(s), {result['images']} images")
    print("| part | images/s |\n|---|---|")
    for part, rate in result["images_per_s"].items():
        print(f"| {part} | {rate:.0f} |")
    by_backbone = result.get("step_images_per_s_by_backbone", {})
    if by_backbone:
        slowest = min(by_backbone.values())
        ran = result["step_model_by_backbone"]
        print(f"\nthe loop's step per backbone, median of {result['rounds']} turns\n"
              "| backbone | network | parameters | images/s | against the slowest |\n|---|---|---|---|---|")
        for name, rate in sorted(by_backbone.items(), key=lambda kv: -kv[1]):
            print(f"| {name} | {ran[name]['backbone_class']} | {ran[name]['parameters'] / 1e6:.2f} M "
                  f"| {rate:.0f} | {rate / slowest:.2f}x |")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
