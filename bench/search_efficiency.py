"""Search efficiency on synthhead: best validation MAE against trial-epochs spent, per search strategy.

Three strategies get the same budget in trial-epochs, each over several seeds, through ldlpose's own
search path (``search_and_report``: Ray Tune, Optuna, MLflow to a SQLite store in the work folder):

* ``grid``: a paper's published grid, read from its faithful space: by default HopeNet's
  (search_spaces/hopenet-paper.yaml: alpha in {0.001, 1, 2}, Ruiz et al. and their released code),
  or with ``--paper gldl`` GLDL's (gldl-paper.yaml: alpha in {0, 0.01, 0.1, 1, 2} at sigma = 4 bins;
  Liu et al., Tables 1-2). Every point trains for all epochs; its size times the epochs is the
  budget. The grid's order is fixed (sampler seed 0); its seeds are training seeds.
* ``random``: Optuna's random sampler over a wider space (alpha over the grid's range and the
  learning rate; GLDL also sigma), no early stopping: budget / epochs trials.
* ``tpe+asha``: TPE over the same wider space with ASHA stopping poor trials after 1 and 2 epochs.
  It is given twice the grid's trials, since stopped trials cost fewer epochs, and its curve is cut
  at the budget (epochs it spent beyond the budget are reported, never counted).

Every other setting (backbone, data, epochs, optimiser, schedule, the method's recommended mode)
is the same base run for all three (the paper's backbone, image size, epochs and optimiser are far
beyond 10 minutes on 2 CPU cores), so only what each strategy searches and how differs. From each trial's per-epoch
results in Tune's experiment folder (``trial_*/result.json``) the anytime curve is built: the best
``val_mae`` seen so far against the trial-epochs reported so far, in the order they were reported.
Reported per strategy: the best val MAE at the budget (mean, std and range over seeds) and how many
trial-epochs it took to come within 5 % of the grid's best (the mean of the grid seeds' final bests).

    python bench/search_efficiency.py [--paper hopenet|gldl] [--seeds 3] [--train 128] [--epochs 3] [--json out.json]
    python bench/search_efficiency.py --smoke-test
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

REPO = Path(__file__).resolve().parent.parent
STRATEGIES = ("tpe+asha", "random", "grid")
METRIC = "val_mae"
WITHIN = 0.05  # "within 5 % of the grid's best"

# The wider spaces TPE and random search explore: each contains every grid point (the paper's
# alphas, GLDL's sigma = 4, the base learning rate) and also searches what the paper fixed.
LR = {"distribution": "log_uniform", "min": 5.0e-4, "max": 5.0e-3}
WIDE_SPACES = {
    "hopenet": {"method.hparams.alpha": {"distribution": "log_uniform", "min": 1.0e-3, "max": 2.0},
                "train.optimizer.lr": LR},
    "gldl": {"method.hparams.alpha": {"distribution": "uniform", "min": 0.0, "max": 2.0},
             "method.hparams.sigma": {"distribution": "log_uniform", "min": 1.0, "max": 8.0},
             "train.optimizer.lr": LR},
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=3, help="searches per strategy (sampler seeds; grid: training seeds)")
    p.add_argument("--paper", choices=sorted(WIDE_SPACES), default="hopenet", help="whose published grid")
    p.add_argument("--train", type=int, default=128, help="synthhead training images")
    p.add_argument("--val", type=int, default=64, help="validation images (the objective)")
    p.add_argument("--test", type=int, default=32, help="test images (scored once per trial, never used to choose)")
    p.add_argument("--epochs", type=int, default=3, help="epochs per trial")
    p.add_argument("--batch", type=int, default=8, help="small: more steps for the same images")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--backbone", default="resnet18")
    p.add_argument("--grid-points", type=int, help="use only the first N values of the paper's grid")
    p.add_argument("--workdir", type=Path, help="keep data, results and MLflow here (default: a temp folder)")
    p.add_argument("--json", type=Path, help="write the figures here as JSON")
    p.add_argument("--smoke-test", action="store_true", help="1 seed, 2 grid points, 2 epochs on 32 images")
    args = p.parse_args(argv)
    if args.smoke_test:
        args.seeds, args.train, args.val, args.test, args.epochs, args.grid_points = 1, 32, 16, 16, 2, 2
    return args


# --- the searches --------------------------------------------------------------------------------

def paper_grid(paper: str, limit: int | None = None) -> dict:
    """A paper's alpha grid, read from its faithful search space, and the width it fixed (GLDL)."""
    space = yaml.safe_load((REPO / "search_spaces" / f"{paper}-paper.yaml").read_text())
    alphas = space["search"]["parameters"]["method.hparams.alpha"]["values"]
    fixed = {k: v for k, v in space["method"].get("hparams", {}).items() if k == "sigma"}
    return {"method": paper, "alpha": alphas[:limit] if limit else alphas, "fixed": fixed}


def base_run(root: Path, args, grid: dict) -> dict:
    """The run every trial of every strategy starts from (the method in ldlpose's recommended mode)."""
    return {
        "method": {"name": grid["method"], "hparams": dict(grid["fixed"])},
        "model": {"backbone": args.backbone, "weights": "none"},
        "data": {"root": str(root), "train": "synthhead/train", "val": "synthhead/val", "benchmarks": ["synth"],
                 "image_size": args.image_size},
        "train": {"epochs": args.epochs, "batch_size": args.batch, "optimizer": {"name": "adam", "lr": 2.0e-3},
                  "schedule": {"name": "cosine"}, "max_failures": 0},
        "resources": {"workers": 1, "cpus_per_worker": 1, "engine": "auto"},
    }


def search_section(strategy: str, seed: int, grid: dict, epochs: int) -> dict:
    """The ``search`` part of one strategy's space for one seed."""
    metric = {"name": METRIC, "goal": "minimize"}
    if strategy == "grid":
        return {"metric": metric, "sampler": {"name": "grid", "seed": 0}, "scheduler": {"name": "none"},
                "budget": {"concurrency": 2},
                "parameters": {"method.hparams.alpha": {"values": grid["alpha"]}}}
    trials = len(grid["alpha"])
    if strategy == "random":
        sampler, scheduler = {"name": "random", "seed": seed}, {"name": "none"}
    else:
        trials *= 2  # ASHA stops most trials early; the curve is cut at the budget
        sampler = {"name": "tpe", "seed": seed, "n_startup_trials": max(2, trials // 4)}
        scheduler = {"name": "asha", "grace_period": 1, "reduction_factor": 2}
    return {"metric": metric, "sampler": sampler, "scheduler": scheduler,
            "budget": {"trials": trials, "concurrency": 2}, "parameters": dict(WIDE_SPACES[grid["method"]])}


def search_name(strategy: str, seed: int) -> str:
    return f"eff-{strategy.replace('+', '-')}-s{seed}"


def write_space(work: Path, root: Path, args, grid: dict, strategy: str, seed: int) -> Path:
    name = search_name(strategy, seed)
    run = base_run(root, args, grid)
    if strategy == "grid":
        run["train"]["seed"] = seed  # the grid's seeds are training seeds
    space = {"name": name, **run, "search": {"name": name, **search_section(strategy, seed, grid, args.epochs)}}
    path = work / "spaces" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    return path


def run_search(space_file: Path, storage: Path, uri: str, logs: Path) -> float:
    """One search end to end (trials tracked, champion registered); its wall time in seconds."""
    from ldlpose.search.driver import search_and_report

    logs.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(logs / f"{space_file.stem}.log", "w") as log, contextlib.redirect_stdout(log):
        code = search_and_report(str(space_file), storage=str(storage), tracking_uri=uri, verbose=False)
    assert code == 0, f"search {space_file.stem} failed; see {logs / space_file.stem}.log"
    return time.perf_counter() - started


# --- anytime curves ------------------------------------------------------------------------------

def epoch_results(experiment: Path) -> list[dict]:
    """Every trial's per-epoch reports, from Tune's experiment folder, in the order they came."""
    rows = []
    for result_file in sorted(experiment.glob("trial_*/result.json")):
        seen = set()
        for line in result_file.read_text().splitlines():
            result = json.loads(line)
            epoch = result.get("epoch")
            if epoch is None or epoch in seen or result.get(METRIC) is None:
                continue  # a later report of an epoch already seen (e.g. with its test scores added)
            seen.add(epoch)
            rows.append({"trial": result["trial_id"], "epoch": epoch, METRIC: result[METRIC],
                         "timestamp": result["timestamp"], "time_total_s": result["time_total_s"]})
    # Tune's timestamp has whole seconds: two reports within one second are ordered by trial time, which
    # can swap them (one trial-epoch's difference in where the curve improves).
    return sorted(rows, key=lambda r: (r["timestamp"], r["time_total_s"]))


def anytime_curve(rows: list[dict]) -> list[float]:
    """curve[k - 1]: the best val MAE seen once k trial-epochs had been reported."""
    curve, best = [], math.inf
    for row in rows:
        best = min(best, row[METRIC])
        curve.append(best)
    return curve


def at_budget(curve: list[float], budget: int) -> float:
    return curve[min(budget, len(curve)) - 1]


def epochs_to_reach(curve: list[float], target: float, budget: int) -> int | None:
    """Trial-epochs until the best so far is at or below ``target``; None if not within the budget."""
    return next((k + 1 for k, best in enumerate(curve[:budget]) if best <= target), None)


def summarise_search(storage: Path, name: str, budget: int, wall_s: float) -> dict:
    rows = epoch_results(storage / name)
    curve = anytime_curve(rows)
    return {"name": name, "trials": len({r["trial"] for r in rows}), "epochs_spent": len(rows),
            "best_at_budget": at_budget(curve, budget), "curve": curve[:budget], "wall_s": wall_s}


def _spread(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values)}


def summarise(searches: dict[str, list[dict]], budget: int) -> dict:
    """Per strategy: best at the budget over seeds, and trial-epochs to come within 5 % of the grid."""
    grid_best = statistics.fmean(s["best_at_budget"] for s in searches["grid"])
    target = grid_best * (1 + WITHIN)
    out = {"budget_trial_epochs": budget, "grid_best": grid_best, "target": target, "strategies": {}}
    for strategy, runs in searches.items():
        reach = [epochs_to_reach(s["curve"], target, budget) for s in runs]
        reached = [r for r in reach if r is not None]
        out["strategies"][strategy] = {
            "best_at_budget": _spread([s["best_at_budget"] for s in runs]),
            "epochs_to_target": reach, "epochs_to_target_mean": statistics.fmean(reached) if reached else None,
            "reached": len(reached), "seeds": len(runs),
            "trials_mean": statistics.fmean(s["trials"] for s in runs),
            "epochs_spent_mean": statistics.fmean(s["epochs_spent"] for s in runs),
            "wall_s_mean": statistics.fmean(s["wall_s"] for s in runs),
            "mean_curve": [statistics.fmean(s["curve"][min(k, len(s["curve"]) - 1)] for s in runs)
                           for k in range(budget)],
            "searches": runs}
    return out


# --- report --------------------------------------------------------------------------------------

def print_tables(summary: dict) -> None:
    from ldlpose.report.tables import table

    budget = summary["budget_trial_epochs"]
    rows = []
    for strategy, s in summary["strategies"].items():
        b = s["best_at_budget"]
        reach = "-" if s["epochs_to_target_mean"] is None else f"{s['epochs_to_target_mean']:.1f}"
        rows.append([strategy, str(s["seeds"]), f"{s['trials_mean']:.1f}", f"{s['epochs_spent_mean']:.1f}",
                     f"{b['mean']:.2f} +- {b['std']:.2f}", f"[{b['min']:.2f}, {b['max']:.2f}]",
                     f"{reach} ({s['reached']}/{s['seeds']})",
                     ", ".join("-" if r is None else str(r) for r in s["epochs_to_target"]), f"{s['wall_s_mean']:.0f}"])
    print(table(["strategy", "seeds", "trials", "trial-epochs run", f"best {METRIC} at {budget}",
                 "range", "to within 5% (reached)", "per seed", "wall s/search"], rows))
    print(f"\ngrid's best (mean over its seeds): {summary['grid_best']:.2f}; within 5 %: <= {summary['target']:.2f}")
    marks = sorted({max(1, round(budget * f)) for f in (0.2, 0.4, 0.6, 0.8, 1.0)})
    curve_rows = [[strategy, *(f"{s['mean_curve'][k - 1]:.2f}" for k in marks)]
                  for strategy, s in summary["strategies"].items()]
    print("\nmean best-so-far val MAE after k trial-epochs:\n")
    print(table(["strategy", *(f"k={k}" for k in marks)], curve_rows))


def machine() -> dict:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, check=False, capture_output=True,
                            text=True)
    return {"cpus": os.cpu_count(), "load_average": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M %Z"),
            "commit": commit.stdout.strip()}


def prepare(root: Path, args) -> None:
    from ldlpose.cli import main as cli

    if not (root / "synthhead" / "train" / "_manifest.json").is_file():
        assert cli(["prepare", "synthhead", "--out", str(root / "synthhead"), "--train", str(args.train),
                    "--val", str(args.val), "--test", str(args.test), "--size", str(args.image_size),
                    "--workers", "1"]) == 0


def run_all(work: Path, args) -> tuple[dict, int]:
    from ldlpose.infra.ray_cluster import ensure_ray

    grid = paper_grid(args.paper, args.grid_points)
    budget = len(grid["alpha"]) * args.epochs
    root, storage, uri = work / "data", work / "results", f"sqlite:///{work / 'mlflow.db'}"
    prepare(root, args)
    ensure_ray(None, log_to_driver=False)
    searches: dict[str, list[dict]] = {s: [] for s in STRATEGIES}
    for seed in range(args.seeds):  # seeds outermost: drifting machine load affects all strategies alike
        for strategy in STRATEGIES:
            space_file = write_space(work, root, args, grid, strategy, seed)
            wall = run_search(space_file, storage, uri, work / "logs")
            found = summarise_search(storage, space_file.stem, budget, wall)
            searches[strategy].append(found)
            print(f"{found['name']}: {found['trials']} trials, {found['epochs_spent']} trial-epochs, "
                  f"best {METRIC} at {budget}: {found['best_at_budget']:.2f} ({wall:.0f} s)", flush=True)
    return {"grid": grid, **summarise(searches, budget)}, budget


def main(argv=None) -> int:
    args = parse_args(argv)
    started, before = time.perf_counter(), machine()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        summary, budget = run_all(work, args)
        import ray

        ray.shutdown()
    wall = time.perf_counter() - started
    print()
    print_tables(summary)
    print(f"\n{args.paper} paper's grid {summary['grid']['alpha']}; "
          f"{args.seeds} seeds x {len(STRATEGIES)} strategies, {budget} trial-epochs each ({args.backbone} at "
          f"{args.image_size} px, {args.train} training images, {args.epochs} epochs per trial); {wall:.0f} s in all")
    if args.json:
        info = {"machine": {**before, "load_average_end": os.getloadavg()}, "wall_s": wall,
                "args": {k: str(v) for k, v in vars(args).items()}, "wide_space": WIDE_SPACES[args.paper], **summary}
        args.json.write_text(json.dumps(info, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
