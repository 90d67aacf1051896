"""Record a replay table (bench/replay_table.py): train every configuration of a small grid on synthhead.

Each configuration trains once per training seed, one after another in this process, through the
package's own training path (``ldlpose.train.run.fit_in_process``, one CPU thread, as a quickstart
trial trains); every epoch's validation MAE, test MAE (the synth benchmark scored every epoch) and
seconds (training plus evaluation) become one row. The data is synthhead, generated here at the
given size. The default grid is the development table's: two methods, two values of each one's key
hyperparameter, four learning rates (16 configurations).

    python bench/record_table.py --out bench/results/replay-dev.json [--train 1000 --val 200 --test 200]
        [--epochs 5] [--seeds 0] [--workdir DIR]
    python bench/record_table.py --smoke-test --out /tmp/t.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import replay_table  # a sibling bench module

REPO = Path(__file__).resolve().parent.parent

DEV_PARAMETERS = {
    "train.optimizer.lr": {"values": [3.0e-4, 1.0e-3, 3.0e-3, 1.0e-2]},
    "method": {"values": {"gldl": {"sigma": {"values": [1.0, 3.0]}},
                          "hopenet": {"alpha": {"values": [0.1, 1.0]}}}},
}


def base_run(epochs: int, image_size: int) -> dict:
    """The run every row shares: the quickstart's backbone and augmentation, at a tiny size."""
    return {
        "name": "replay-record",
        "method": {"name": "gldl"},
        "model": {"backbone": "shufflenet_v2_x0_5", "weights": "none"},
        "data": {"train": "synthhead/train", "val": "synthhead/val", "benchmarks": ["synth"],
                 "benchmarks_every_epoch": True, "image_size": image_size,
                 "augment": {"flip": 0.5, "scale_min": 1.0, "shift": 0.0, "color": 0.0, "blur": 0.0}},
        # batch 32, not the quickstart's 64: a few hundred images still give tens of steps per epoch
        "train": {"epochs": epochs, "batch_size": 32, "optimizer": {"name": "adam", "lr": 0.003},
                  "schedule": {"name": "cosine"}, "seed": 0, "max_failures": 0},
        "resources": {"workers": 1, "cpus_per_worker": 1},
    }


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="the table to write (JSON)")
    p.add_argument("--train", type=int, default=1000, help="synthhead training images")
    p.add_argument("--val", type=int, default=200)
    p.add_argument("--test", type=int, default=200)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds of every configuration")
    p.add_argument("--workdir", type=Path, help="keep the data and runs here (default: a temp folder)")
    p.add_argument("--smoke-test", action="store_true", help="2 configurations, 2 epochs, 64 images")
    args = p.parse_args(argv)
    if args.smoke_test:
        args.train, args.val, args.test, args.epochs = 64, 32, 32, 2
    return args


def prepare(root: Path, args: argparse.Namespace) -> None:
    from ldlpose.cli import main

    if all((root / "synthhead" / split / "_manifest.json").is_file() for split in ("train", "val", "test")):
        return
    code = main(["prepare", "synthhead", "--out", str(root / "synthhead"), "--train", str(args.train),
                 "--val", str(args.val), "--test", str(args.test), "--size", str(args.image_size), "--workers", "1"])
    if code != 0:
        raise SystemExit(f"preparing synthhead under {root} failed ({code})")


def record_run(space, config: dict, seed: int, root: Path, index: int) -> dict:
    """Train one configuration with one seed; its row of the table."""
    from ldlpose.train.run import fit_in_process

    run = space.run_config(config)
    run = run.model_copy(update={"data": run.data.model_copy(update={"root": str(root)}),
                                 "train": run.train.model_copy(update={"seed": seed})})
    epochs: list[dict] = []
    fit_in_process(run, storage_path=str(root / "runs"), name=f"row-{index:03d}-seed{seed}",
                   publish=lambda metrics, *_, **__: epochs.append(dict(metrics)))
    test_key = f"{run.data.benchmarks[0]}_mae"
    return {"config": replay_table.run_keys(config), "seed": seed,
            "val_mae": [round(m["val_mae"], 4) for m in epochs],
            "test_mae": [round(m[test_key], 4) for m in epochs],
            "epoch_s": [round(m["train_time_s"] + m["eval_time_s"], 3) for m in epochs]}


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.machine()) if Path("/proc/cpuinfo").exists() else ""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs ({model}), shared; load average at the start {load}"


def commit() -> str:
    def git(*args):
        return subprocess.run(["git", *args], check=False, cwd=REPO, capture_output=True, text=True).stdout.strip()
    return git("rev-parse", "--short", "HEAD") + ("-dirty" if git("status", "--porcelain", "--", "platform") else "")


def _without_workdir(argv: list[str]) -> list[str]:
    """The command as recorded: the work folder (a local path) changes nothing in the table."""
    out, skip = [], False
    for arg in argv:
        if skip or arg.startswith("--workdir="):
            skip = False
            continue
        skip = arg == "--workdir"
        if not skip:
            out.append(arg)
    return out


def record(args: argparse.Namespace, root: Path, argv: list[str]) -> dict:
    prepare(root, args)
    parameters = DEV_PARAMETERS
    if args.smoke_test:
        parameters = {"train.optimizer.lr": {"values": [1.0e-3, 3.0e-3]}}
    metadata = {"commit": commit(), "machine": machine(),
                "command": "python bench/record_table.py " + shlex.join(_without_workdir(argv)),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "metric": "val_mae", "test": "synth_mae",
                "base": base_run(args.epochs, args.image_size), "parameters": parameters,
                "data": {"train": args.train, "val": args.val, "test": args.test}}
    table = replay_table.Table(str(args.out), metadata, ())
    space = replay_table.space(table, {"sampler": {"name": "grid"}})
    rows = []
    started = time.time()
    for index, point in enumerate(space.grid()):
        for seed in args.seeds:
            rows.append(record_run(space, point, seed, root, index))
            print(f"[record] {len(rows)}: {rows[-1]['config']} seed {seed}: val {rows[-1]['val_mae'][-1]:.2f} "
                  f"({time.time() - started:.0f} s so far)", flush=True)
    metadata["record_s"] = round(time.time() - started, 1)
    return {"schema": replay_table.SCHEMA, "metadata": metadata, "rows": rows}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ldlpose-record-") as tmp:
        root = args.workdir or Path(tmp)
        data = record(args, root, argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    table = replay_table.load(args.out)  # what was written must pass its own schema
    print(f"[record] {len(table.rows)} rows, best val MAE {table.best_val:.2f} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
