"""Disk used by a search: per trial and per search, by where it lies (training runs, Tune, MLflow).

Runs the quickstart's search (search_spaces/quickstart.yaml: 6 trials of 3 epochs, TPE + ASHA,
three LDL methods, ResNet-18) through ``search_and_report`` on a small synthhead in a work folder,
then measures what it left:

* per trial: its training run folder (``<storage>/<search>-<trial>``: the checkpoints Ray Train's
  retention rule keeps, the best epoch plus the latest), Tune's trial folder
  (``<storage>/<search>/trial_<id>``: results, params), its MLflow logged model and its plots;
* per search: Tune's experiment folder, all training runs, MLflow's artifacts (logged models, the
  trials' plots, the parent run's files) and its SQLite database.

A checkpoint holds the weights, the optimiser state and the history, so its size depends on the
backbone, not on the images: the data and image size are shrunk (32 px, a few hundred images) to
keep the run short without changing what is measured. Sizes are file sizes (apparent bytes) in MiB.

    python bench/disk_use.py [--train 128] [--json out.json]
    python bench/disk_use.py --smoke-test
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

REPO = Path(__file__).resolve().parent.parent
QUICKSTART = REPO / "search_spaces" / "quickstart.yaml"
NAME = "disk-quickstart"
MIB = 2 ** 20


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", type=Path, default=QUICKSTART, help="the search space to measure")
    p.add_argument("--train", type=int, default=128, help="synthhead training images")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--workdir", type=Path, help="keep data, results and MLflow here (default: a temp folder)")
    p.add_argument("--json", type=Path, help="write the figures here as JSON")
    p.add_argument("--smoke-test", action="store_true", help="2 trials of 1 epoch on 32 images")
    return p.parse_args(argv)


def size(path: Path) -> int:
    """Bytes of every file under ``path`` (or of the file itself); 0 when it does not exist."""
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def prepare(root: Path, train: int, image_size: int) -> None:
    from ldlpose.cli import main as cli

    if not (root / "synthhead" / "train" / "_manifest.json").is_file():
        assert cli(["prepare", "synthhead", "--out", str(root / "synthhead"), "--train", str(train),
                    "--val", "32", "--test", "32", "--size", str(image_size), "--workers", "1"]) == 0


def run(work: Path, args) -> float:
    """The search end to end, its output to a log; its wall time in seconds."""
    from ldlpose.infra.ray_cluster import ensure_ray
    from ldlpose.search.driver import search_and_report

    overrides = [f"search.name={NAME}", f"data.root={work / 'data'}", f"data.max_train_samples={args.train}",
                 f"data.image_size={args.image_size}"]
    ensure_ray(None, log_to_driver=False)
    started = time.perf_counter()
    with open(work / f"{NAME}.log", "w") as log, contextlib.redirect_stdout(log):
        code = search_and_report(str(args.space), overrides=overrides, smoke_test=args.smoke_test,
                                 storage=str(work / "results"), tracking_uri=f"sqlite:///{work / 'mlflow.db'}",
                                 verbose=False)
    assert code == 0, f"the search failed; see {work / NAME}.log"
    return time.perf_counter() - started


def _epochs(tune_dir: Path) -> set[int]:
    results = tune_dir / "result.json"
    lines = results.read_text().splitlines() if results.is_file() else []
    return {json.loads(line).get("epoch") for line in lines} - {None}


def trial_sizes(storage: Path) -> list[dict]:
    """Per trial: its training run folder (and its checkpoints) and Tune's trial folder."""
    trials = []
    for tune_dir in sorted((storage / NAME).glob("trial_*")):
        trial = tune_dir.name.removeprefix("trial_")
        run_dir = storage / f"{NAME}-{trial}"
        checkpoints = sorted(run_dir.glob("checkpoint_*"))
        trials.append({"trial": trial, "epochs_reported": len(_epochs(tune_dir)), "run_folder": size(run_dir),
                       "checkpoints": len(checkpoints), "checkpoint_bytes": sum(size(c) for c in checkpoints),
                       "tune_trial_folder": size(tune_dir)})
    return trials


def mlflow_sizes(artifacts: Path) -> dict:
    """MLflow's artifacts of the search: logged models, the trials' runs (plots), the parent's files."""
    models = [size(m) for m in sorted((artifacts / "models").glob("m-*"))]
    runs = [d for d in sorted(artifacts.iterdir()) if d.is_dir() and d.name != "models"] if artifacts.is_dir() else []
    parent = [d for d in runs if (d / "artifacts" / "search.yaml").is_file()]
    trial_runs = [size(d) for d in runs if d not in parent]
    return {"models": models, "trial_runs": trial_runs, "parent_run": sum(size(d) for d in parent),
            "total": size(artifacts)}


def measure(work: Path) -> dict:
    storage = work / "results"
    trials = trial_sizes(storage)
    mlflow = mlflow_sizes(work / "mlartifacts" / NAME)
    db = work / "mlflow.db"
    search = {"tune_experiment_folder": size(storage / NAME),
              "training_runs": sum(t["run_folder"] for t in trials),
              "mlflow_artifacts": mlflow["total"], "mlflow_db": size(db)}
    search["total"] = sum(search.values())
    return {"trials": trials, "mlflow": mlflow, "search": search}


def _mib(n: float) -> str:
    return f"{n / MIB:.1f}" if n >= MIB / 10 else f"{n / MIB:.3f}"


def _stats(values: list[int]) -> list[str]:
    if not values:
        return ["-", "-", "-"]
    return [_mib(statistics.fmean(values)), _mib(min(values)), _mib(max(values))]


def print_tables(figures: dict) -> None:
    from ldlpose.report.tables import table

    trials, mlflow, search = figures["trials"], figures["mlflow"], figures["search"]
    rows = [["training run folder", *_stats([t["run_folder"] for t in trials])],
            ["  of it checkpoints", *_stats([t["checkpoint_bytes"] for t in trials])],
            ["  checkpoints kept (count)", *(f"{f(t['checkpoints'] for t in trials):.1f}" for f in
                                            (statistics.fmean, min, max))],
            ["Tune trial folder", *_stats([t["tune_trial_folder"] for t in trials])],
            ["MLflow logged model", *_stats(mlflow["models"])],
            ["MLflow run artifacts (plots)", *_stats(mlflow["trial_runs"])]]
    print(table(["per trial (MiB)", "mean", "min", "max"], rows))
    print()
    rows = [["Tune experiment folder", _mib(search["tune_experiment_folder"])],
            ["training runs (all trials)", _mib(search["training_runs"])],
            ["MLflow artifacts", _mib(search["mlflow_artifacts"])],
            ["  logged models", _mib(sum(mlflow["models"]))],
            ["  trials' plots", _mib(sum(mlflow["trial_runs"]))],
            ["  parent run (space, manifests, plots)", _mib(mlflow["parent_run"])],
            ["MLflow database", _mib(search["mlflow_db"])],
            ["total", _mib(search["total"])]]
    print(table([f"per search, {len(trials)} trials (MiB)", "size"], rows))


def machine() -> dict:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, check=False, capture_output=True,
                            text=True)
    return {"cpus": os.cpu_count(), "load_average": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M %Z"),
            "commit": commit.stdout.strip()}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.smoke_test:
        args.train = 32
    started, info = time.perf_counter(), machine()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        prepare(work / "data", max(args.train, 32), args.image_size)
        search_s = run(work, args)
        import ray

        ray.shutdown()
        figures = measure(work)
    print_tables(figures)
    wall = time.perf_counter() - started
    print(f"\n{args.space.name} ({'smoke test' if args.smoke_test else 'as shipped'}), {args.train} training "
          f"images at {args.image_size} px; search {search_s:.0f} s, {wall:.0f} s in all")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "wall_s": wall, "search_s": search_s,
                                         "args": {k: str(v) for k, v in vars(args).items()}, **figures},
                                        indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
