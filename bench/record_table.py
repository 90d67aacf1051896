"""Record a replay table (bench/replay_table.py): train every configuration of a grid, once per seed.

Each configuration trains through the package's own training path (``ldlpose.train.run.fit_in_process``,
one CPU thread, as a quickstart trial trains); every epoch's validation MAE, test MAE (the test
benchmark scored every epoch) and seconds (training plus evaluation) become one row. ``--jobs 2``
trains two at a time in separate processes, as the quickstart runs two trials at a time.

Two presets:

- ``dev`` (default): the development table, synthhead 1000/200/200 at 64 px, 5 epochs, batch 32;
  two methods, two values of each one's key hyperparameter, four learning rates (16 configurations).
- ``quickstart``: the LDL search space at the quickstart's size: facegen 8000/500/500 (what the
  quickstart generates on first use) and the run settings of search_spaces/quickstart.yaml (7 epochs,
  batch 64, ShuffleNetV2 x0.5, 64 px); GLDL sigma, DADL beta, HopeNet alpha, two values each, times
  four learning rates (24 configurations).

``--real DIR`` (real AFLW2000 pairs as ``ldlpose prepare aflw2000`` writes them, e.g. from
../shared/realdata/aflw2000-dev) adds every epoch's MAE on them as ``real_mae``: measured, never chosen.
``--extend`` keeps the rows of an existing ``--out`` and records only what it lacks (values the
preset has gained since are added to its parameters); with
``--subset-every K`` the ``--seeds`` apply to every K-th configuration only (more seeds for a subset,
so the table shows the training noise).

    python bench/record_table.py --out bench/results/replay-dev.json [--train 1000 --val 200 --test 200]
        [--epochs 5] [--seeds 0] [--workdir DIR]
    python bench/record_table.py --preset quickstart --jobs 2 --real DEV/aflw2000 --workdir W \
        --out bench/results/replay-facegen.json
    python bench/record_table.py --preset quickstart ... --extend --seeds 1 2 --subset-every 6
    python bench/record_table.py --smoke-test --out /tmp/t.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import replay_table  # a sibling bench module

REPO = Path(__file__).resolve().parent.parent
QUICKSTART = REPO / "search_spaces" / "quickstart.yaml"

DEV_PARAMETERS = {
    "train.optimizer.lr": {"values": [3.0e-4, 1.0e-3, 3.0e-3, 1.0e-2]},
    "method": {"values": {"gldl": {"sigma": {"values": [1.0, 3.0]}},
                          "hopenet": {"alpha": {"values": [0.1, 1.0]}}}},
}
SMOKE_PARAMETERS = {"train.optimizer.lr": {"values": [1.0e-3, 3.0e-3]}}
# The quickstart's three methods, each's key hyperparameter at the ends of the quickstart's range,
# and learning rates in steps of 2.5x from 3x below the quickstart's range (3e-3 to 8e-3) to 5x above
# it (4e-2 was added when the first 24 rows had their best at 1.6e-2, the top of the grid then).
QUICKSTART_PARAMETERS = {
    "train.optimizer.lr": {"values": [1.0e-3, 2.5e-3, 6.4e-3, 1.6e-2, 4.0e-2]},
    "method": {"values": {"gldl": {"sigma": {"values": [1.0, 4.0]}},
                          "dadl": {"beta": {"values": [0.5, 3.0]}},
                          "hopenet": {"alpha": {"values": [0.01, 1.0]}}}},
}


def dev_base(epochs: int, image_size: int) -> dict:
    """The dev table's run: the quickstart's backbone on synthhead, at a tiny size."""
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


def quickstart_base(epochs: int | None, real: bool) -> dict:
    """The quickstart's run settings (search_spaces/quickstart.yaml without its search section), with
    the test benchmark (and the real pairs) scored every epoch."""
    import yaml

    base = {k: v for k, v in yaml.safe_load(QUICKSTART.read_text()).items() if k != "search"}
    base["name"] = "replay-record"
    base["data"] = {**base["data"], "benchmarks": ["facegen", *(["aflw2000"] if real else [])],
                    "benchmarks_every_epoch": True}
    base["train"] = {**base["train"], "seed": 0, "max_failures": 0,
                     **({"epochs": epochs} if epochs else {})}
    return base


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="the table to write (JSON)")
    p.add_argument("--preset", choices=("dev", "quickstart"), default="dev")
    p.add_argument("--train", type=int, help="training images (dev: 1000 synthhead; quickstart: 8000 facegen)")
    p.add_argument("--val", type=int)
    p.add_argument("--test", type=int)
    p.add_argument("--image-size", type=int, default=64, help="dev preset only (the quickstart's is 64)")
    p.add_argument("--epochs", type=int, help="dev: 5; quickstart: the quickstart's")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds of every configuration")
    p.add_argument("--subset-every", type=int, default=1, metavar="K",
                   help="record --seeds for every K-th configuration only (default 1: all)")
    p.add_argument("--extend", action="store_true", help="keep --out's rows; record only the missing ones")
    p.add_argument("--jobs", type=int, default=1, help="trainings at once, one CPU thread each")
    p.add_argument("--real", type=Path, help="prepared real AFLW2000 pairs, scored every epoch as real_mae")
    p.add_argument("--workdir", type=Path, help="keep the data and runs here (default: a temp folder)")
    p.add_argument("--smoke-test", action="store_true", help="2 configurations, 2 epochs, 64 images")
    args = p.parse_args(argv)
    sizes = {"dev": (1000, 200, 200, 5), "quickstart": (8000, 500, 500, None)}[args.preset]
    if args.smoke_test:
        sizes = (64, 32, 32, 2)
    for name, default in zip(("train", "val", "test", "epochs"), sizes, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, default)
    if args.real is not None and not (args.real / "_manifest.json").is_file():
        p.error(f"--real {args.real}: no prepared pairs there (_manifest.json); make them with "
                f"ldlpose prepare aflw2000 --source ../shared/realdata/aflw2000-dev --out {args.real}")
    return args


def prepare(root: Path, args: argparse.Namespace) -> None:
    from ldlpose.cli import main

    generator = "facegen" if args.preset == "quickstart" else "synthhead"
    if args.real is not None and not (root / "aflw2000").exists():
        (root / "aflw2000").symlink_to(args.real.resolve())
    if all((root / generator / split / "_manifest.json").is_file() for split in ("train", "val", "test")):
        return
    code = main(["prepare", generator, "--out", str(root / generator), "--train", str(args.train),
                 "--val", str(args.val), "--test", str(args.test), "--size", str(args.image_size),
                 "--workers", str(args.jobs)])
    if code != 0:
        raise SystemExit(f"preparing {generator} under {root} failed ({code})")


def record_run(metadata: dict, config: dict, seed: int, root: str) -> dict:
    """Train one configuration with one seed; its row of the table (run in a worker process)."""
    from ldlpose.train.run import fit_in_process

    table = replay_table.Table("<recording>", metadata, ())
    run = replay_table.space(table).run_config(config)
    run = run.model_copy(update={"data": run.data.model_copy(update={"root": root}),
                                 "train": run.train.model_copy(update={"seed": seed})})
    # Named by the configuration, never by its place in the grid (which moves when --extend adds values),
    # and trained from scratch: a folder left by an interrupted recording would resume, and its first
    # epochs would be missing from the row.
    key = hashlib.sha256(repr(replay_table.config_key(replay_table.run_keys(config))).encode()).hexdigest()[:12]
    name = f"row-{key}-seed{seed}"
    shutil.rmtree(Path(root) / "runs" / name, ignore_errors=True)
    epochs: list[dict] = []
    fit_in_process(run, storage_path=str(Path(root) / "runs"), name=name,
                   publish=lambda metrics, *_, **__: epochs.append(dict(metrics)))
    if len(epochs) != run.train.epochs:
        raise RuntimeError(f"{name}: {len(epochs)} epochs reported, {run.train.epochs} expected")
    row = {"config": replay_table.run_keys(config), "seed": seed,
           "val_mae": [round(m["val_mae"], 4) for m in epochs],
           "test_mae": [round(m[f"{run.data.benchmarks[0]}_mae"], 4) for m in epochs],
           "epoch_s": [round(m["train_time_s"] + m["eval_time_s"], 3) for m in epochs]}
    if "aflw2000" in run.data.benchmarks:
        row["real_mae"] = [round(m["aflw2000_mae"], 4) for m in epochs]
    return row


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


def new_metadata(args: argparse.Namespace, argv: list[str]) -> dict:
    if args.smoke_test:
        parameters: dict = SMOKE_PARAMETERS
    else:
        parameters = QUICKSTART_PARAMETERS if args.preset == "quickstart" else DEV_PARAMETERS
    if args.preset == "quickstart":
        base, test = quickstart_base(args.epochs, args.real is not None), "facegen_mae"
    else:
        base, test = dev_base(args.epochs, args.image_size), "synth_mae"
    metadata = {"commit": commit(), "machine": machine(),
                "command": "python bench/record_table.py " + shlex.join(_without_workdir(argv)),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "metric": "val_mae", "test": test, "base": base, "parameters": parameters,
                "data": {"train": args.train, "val": args.val, "test": args.test},
                "epoch_s": "training plus scoring validation and every test set (the quickstart scores "
                           "only validation per epoch)" if args.jobs == 1 else
                           f"training plus scoring validation and every test set, {args.jobs} trainings at once"}
    if args.real is not None:
        metadata["real"] = f"aflw2000_mae: real AFLW2000-3D pairs ({args.real.name}), measured only"
    return metadata


def todo(metadata: dict, args: argparse.Namespace, have: set) -> list[tuple[int, dict, int]]:
    """(index, configuration, seed) for every row to record that the table lacks."""
    table = replay_table.Table(str(args.out), metadata, ())
    points = replay_table.space(table, {"sampler": {"name": "grid"}}).grid()
    return [(i, point, seed) for i, point in enumerate(points) for seed in args.seeds
            if i % args.subset_every == 0
            and (replay_table.config_key(replay_table.run_keys(point)), seed) not in have]


def record(args: argparse.Namespace, root: Path, argv: list[str]) -> dict:
    if args.extend and args.out.is_file():
        old = json.loads(args.out.read_text())
        metadata, rows = old["metadata"], old["rows"]
        metadata["parameters"] = new_metadata(args, argv)["parameters"]  # the preset's values now
        metadata.setdefault("extended", []).append(
            {"commit": commit(), "machine": machine(), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
             "command": "python bench/record_table.py " + shlex.join(_without_workdir(argv))})
    else:
        metadata, rows = new_metadata(args, argv), []
    prepare(root, args)
    have = {(replay_table.config_key(r["config"]), r["seed"]) for r in rows}
    work = todo(metadata, args, have)
    started = time.time()
    print(f"[record] {len(work)} runs to record, {args.jobs} at a time", flush=True)
    with _pool(args.jobs) as pool:
        futures = [pool.submit(record_run, metadata, point, seed, str(root)) for _, point, seed in work]
        for future in futures:
            rows.append(future.result())
            print(f"[record] {len(rows)}: {rows[-1]['config']} seed {rows[-1]['seed']}: "
                  f"val {rows[-1]['val_mae'][-1]:.2f} ({time.time() - started:.0f} s so far)", flush=True)
            _write(args.out, metadata, rows)  # a partial table survives an interruption (--extend resumes)
    metadata["record_s"] = round(metadata.get("record_s", 0.0) + time.time() - started, 1)
    return {"schema": replay_table.SCHEMA, "metadata": metadata, "rows": rows}


def _pool(jobs: int):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"))


def _write(out: Path, metadata: dict, rows: list) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".partial")
    tmp.write_text(json.dumps({"schema": replay_table.SCHEMA, "metadata": metadata, "rows": rows}, indent=1) + "\n")
    tmp.replace(out)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ldlpose-record-") as tmp:
        root = args.workdir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        data = record(args, root, argv)
    _write(args.out, data["metadata"], data["rows"])
    table = replay_table.load(args.out)  # what was written must pass its own schema
    print(f"[record] {len(table.rows)} rows, best val MAE {table.best_val:.2f} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
