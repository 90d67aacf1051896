"""Where a search trial's time goes, phase by phase, on each engine, against a plain Tune trainable.

Three searches of the same trials run one after another on one local Ray, in one go, so machine load
affects all alike: ``ldlpose search`` with trials on the in-process engine, the same on Ray Train
(``TorchTrainer``, one worker), and a plain Tune function trainable that runs the same epochs
(ldlpose's model, loaders, train and validation steps) in-process with nothing else. Trials run one
at a time so that phases do not overlap. Phases come from ``LDLPOSE_TRACE`` (ldlpose.infra.trace).

Reported per engine (mean over trials; the first trial of each search starts its process cold):
    fixed cost = trial time (Tune starts it .. Tune sees it complete) - train - validation
    end work = finalising it in the Tune driver (model export and logging, plots, MLflow records),
               on a background thread while the next trial already runs
    per-epoch overhead = (epoch time beyond train and validation) / (train + validation)
and the phases: scheduling, engine start (Ray Train: controller, workers, process group), setup
(network, checkpoint), opening the data, first batch, checkpoint + report per epoch, test benchmark
(once, on the selected epoch), and the end in the Tune driver (model export and logging, plots,
MLflow records).

Also the seconds that checking the shards against their manifest hashes adds to a trial
(ldlpose.data.shards.shard_paths): the trial's data opened in this process as a trial opens it,
with the time inside the check summed; once with the cache of verified shards (what every trial
after the first use of the data pays) and once without it (the first use: every shard hashed).
``--shards-only`` measures just that, on the prepared data, in seconds.

    python bench/trial_cost.py [--trials 3] [--epochs 2] [--train 256] [--json out.json]
    python bench/trial_cost.py --smoke-test
    python bench/trial_cost.py --shards-only [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

ENGINES = ("in_process", "ray_train")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=3, help="trials per search")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--train", type=int, default=256, help="training images per epoch")
    p.add_argument("--backbone", default="resnet18")
    p.add_argument("--workdir", type=Path, help="keep data, results and traces here (default: a temp folder)")
    p.add_argument("--json", type=Path, help="write the figures here as JSON")
    p.add_argument("--smoke-test", action="store_true", help="2 trials of 1 epoch on 32 images")
    p.add_argument("--shards-only", action="store_true", help="only the cost of the shard hash check")
    return p.parse_args(argv)


def space_yaml(root: Path, args) -> str:
    """One method with fixed values: every trial does the same work, so the trials compare."""
    return f"""
name: cost-run
method: {{name: gldl, hparams: {{sigma: 2.0}}}}
model: {{backbone: {args.backbone}, weights: none}}
data: {{root: {root}, benchmarks: [synth], image_size: 64, max_train_samples: {args.train}, max_eval_samples: 128}}
train: {{epochs: {args.epochs}, batch_size: 32, schedule: {{name: none}}, max_failures: 0}}
resources: {{workers: 1, cpus_per_worker: 1}}
search:
  metric: {{name: val_mae, goal: minimize}}
  sampler: {{name: random, seed: 0}}
  scheduler: {{name: none}}
  budget: {{trials: {args.trials}, concurrency: 1}}
  parameters:
    train.seed: {{values: [0, 1, 2, 3, 4, 5, 6, 7]}}
"""


def run_ldlpose(space_file: Path, engine: str, storage: Path, uri: str) -> str:
    from ldlpose.search.driver import search_and_report

    name = f"cost-{engine.replace('_', '-')}"
    code = search_and_report(str(space_file), overrides=[f"resources.engine={engine}", f"search.name={name}"],
                             storage=str(storage), tracking_uri=uri)
    assert code == 0, f"the {engine} search failed"
    return name


def plain_trainable(config: dict, space_file: str) -> None:
    """The same epochs in a plain Tune function: no checkpoints, no tests, no tracking."""
    import time as clock

    import torch
    from ray import tune

    from ldlpose import methods
    from ldlpose.infra import trace
    from ldlpose.models import build_model
    from ldlpose.search.space import load_search_space
    from ldlpose.train import data as train_data
    from ldlpose.train.loop import evaluate_sets, seed_everything, train_one_epoch
    from ldlpose.train.optim import make_optimizer

    trial = tune.get_context().get_trial_id()
    trace.mark("trial.function_start", trial, clock.time())
    run = load_search_space(space_file).base_run
    torch.set_num_threads(1)
    seed_everything(config["seed"])
    method = methods.create(run.method.name, **run.method.hparams)
    model = build_model(method, run.model.backbone, run.model.weights)
    optimizer = make_optimizer(model, run.train.optimizer)
    loaders = train_data.build_loaders(run, method)
    for epoch in range(run.train.epochs):
        loaders.set_epoch(epoch)
        started = clock.perf_counter()
        with trace.phase("epoch.train", trial):
            metrics = train_one_epoch(model, method, loaders.train, optimizer, torch.device("cpu"), epoch=epoch + 1,
                                      grad_clip=None, frozen_bn=False, world=1)
        metrics["train_time_s"] = clock.perf_counter() - started
        with trace.phase("epoch.validation", trial):
            metrics.update(evaluate_sets(model, method, {"val": loaders.evaluation["val"]}, torch.device("cpu"), 1))
        tune.report({**metrics, "epoch": epoch + 1})


def run_plain(space_file: Path, trials: int, storage: Path) -> list[str]:
    from ray import tune

    from ldlpose.infra import trace

    class Marks(tune.Callback):
        def on_trial_start(self, iteration, trials, trial, **info):
            trace.mark("tune.trial_start", trial.trial_id, time.time())

        def on_trial_complete(self, iteration, trials, trial, **info):
            trace.mark("tune.trial_complete", trial.trial_id, time.time())
            trace.mark("end.finalise", trial.trial_id, time.time())  # nothing to finalise

    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(plain_trainable, space_file=str(space_file)), {"CPU": 1}),
        param_space={"seed": tune.grid_search(list(range(trials)))},
        tune_config=tune.TuneConfig(max_concurrent_trials=1, reuse_actors=True),
        run_config=tune.RunConfig(name="cost-plain", storage_path=str(storage), callbacks=[Marks()], verbose=0))
    grid = tuner.fit()
    return [result.metrics["trial_id"] for result in grid]


def _span(records: list[dict], name: str, how: str = "sum") -> float:
    chosen = [r for r in records if r["phase"] == name]
    if not chosen:
        return 0.0
    if how == "first_start":
        return min(r["start"] for r in chosen)
    if how == "last_end":
        return max(r["end"] for r in chosen)
    return sum(r["end"] - r["start"] for r in chosen)


def trial_phases(records: list[dict]) -> dict:
    """Seconds per phase of one trial, from its trace records."""
    start = _span(records, "tune.trial_start", "first_start")
    function = _span(records, "trial.function_start", "first_start")
    trainer = _span(records, "trainer.fit_start", "first_start")
    setup = _span(records, "loop.setup", "first_start") or _span(records, "epoch.train", "first_start")
    complete = _span(records, "tune.trial_complete", "last_end")
    end = _span(records, "end.finalise", "last_end")
    train, val = _span(records, "epoch.train"), _span(records, "epoch.validation")
    epochs = len([r for r in records if r["phase"] == "epoch.train"])
    phases = {
        "trial": complete - start,
        "trial + end": end - start,
        "train": train,
        "validation": val,
        "scheduling": function - start,
        "engine start": (setup - trainer) if trainer else 0.0,
        "driver to loop": (trainer - function) if trainer else (setup - function),
        "setup": _span(records, "loop.setup"),
        "open data": _span(records, "loop.open_data"),
        "first batch": _span(records, "epoch.first_batch"),
        "checkpoint+report": _span(records, "epoch.checkpoint_and_report"),
        "test (once)": _span(records, "end.test"),
        "MLflow start": _span(records, "start.mlflow"),
        "end: model": _span(records, "end.model"),
        "end: plots": _span(records, "end.plots"),
        "end: MLflow": _span(records, "end.mlflow") + _span(records, "end.test_scores"),
        "end work": _span(records, "end.finalise"),
        "epochs": epochs,
    }
    phases["fixed"] = phases["trial"] - train - val
    phases["fixed + end"] = phases["trial + end"] - train - val
    # Per epoch, beyond train and validation: checkpoint and report (the test benchmark runs once).
    phases["per-epoch overhead %"] = 100.0 * phases["checkpoint+report"] / max(train + val, 1e-9)
    return phases


def summarise(records: list[dict], trial_ids: dict[str, list[str]]) -> dict:
    out = {}
    for label, ids in trial_ids.items():
        per_trial = [trial_phases([r for r in records if r["trial"] == t]) for t in ids]
        out[label] = {"trials": per_trial,
                      "mean": {k: statistics.fmean(p[k] for p in per_trial) for k in per_trial[0]}}
    return out


def trial_ids(storage: Path, name: str) -> list[str]:
    """The search's trials in the order Tune started them."""
    folders = sorted((storage / name).glob("trial_*"), key=lambda p: p.stat().st_mtime)
    return [p.name.removeprefix("trial_") for p in folders]


def shard_check_cost(space_file: Path, repeats: int = 3) -> dict:
    """Seconds the shard hash check adds to opening one trial's data (train, validation, test
    benchmark), with the cache of verified shards (warm, median of ``repeats``) and without (cold)."""
    from ldlpose import methods
    from ldlpose.data import shards
    from ldlpose.search.space import load_search_space
    from ldlpose.train import data as train_data

    run = load_search_space(space_file).base_run
    spent = {"s": 0.0, "calls": 0}
    check = shards.mismatched_files

    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return check(*args, **kwargs)
        finally:
            spent["s"] += time.perf_counter() - started
            spent["calls"] += 1

    def open_data(cold: bool) -> tuple[float, float]:
        if cold:
            for cache in Path(run.data.root).rglob(shards.VERIFIED):
                cache.unlink()
        spent["s"], spent["calls"] = 0.0, 0
        started = time.perf_counter()
        train_data.build_loaders(run, methods.create(run.method.name))
        return spent["s"], time.perf_counter() - started

    shards.mismatched_files = timed  # type: ignore[assignment]  # shard_paths looks it up at each call
    try:
        cold, cold_open = open_data(cold=True)
        warm_runs = [open_data(cold=False) for _ in range(repeats)]
    finally:
        shards.mismatched_files = check  # type: ignore[assignment]
    folders = {p.parent for p in Path(run.data.root).rglob(shards.VERIFIED)}
    size = sum(p.stat().st_size for f in folders for p in f.glob("part-*.parquet"))
    return {"cold_s": cold, "cold_open_data_s": cold_open, "warm_s": statistics.median(w[0] for w in warm_runs),
            "warm_open_data_s": statistics.median(w[1] for w in warm_runs), "checks_per_trial": spent["calls"],
            "datasets": len(folders), "shard_bytes": size}


def print_shard_check(cost: dict) -> None:
    print(f"shard hash check per trial: {cost['warm_s']:.4f} s with the cache of verified shards "
          f"({cost['checks_per_trial']} checks; opening the data takes {cost['warm_open_data_s']:.2f} s in all); "
          f"{cost['cold_s']:.3f} s on the data's first use, hashing {cost['shard_bytes'] / 1e6:.1f} MB of "
          f"{cost['datasets']} datasets")


ROWS = ["trial", "train", "validation", "fixed", "per-epoch overhead %", "fixed + end", "scheduling", "driver to loop",
        "engine start", "setup", "open data", "first batch", "checkpoint+report", "test (once)", "MLflow start",
        "end: model", "end: plots", "end: MLflow", "end work"]


def print_table(summary: dict) -> None:
    from ldlpose.report.tables import table

    labels = list(summary)
    rows = [[row, *(f"{summary[label]['mean'][row]:.2f}" for label in labels)] for row in ROWS]
    print(table(["seconds per trial (mean)", *labels], rows))
    for label in labels:
        fixed = ", ".join(f"{t['fixed']:.1f}" for t in summary[label]["trials"])
        print(f"{label}: fixed cost per trial, in the order run: {fixed} s")


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.smoke_test:
        args.trials, args.epochs, args.train = 2, 1, 32
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        traces = work / "trace"
        os.environ["LDLPOSE_TRACE"] = str(traces)  # before Ray starts: its workers inherit it
        import ray

        from ldlpose.cli import main as cli
        from ldlpose.infra import trace
        from ldlpose.infra.ray_cluster import ensure_ray

        root = work / "data"
        if not (root / "synthhead" / "train" / "_manifest.json").is_file():
            assert cli(["prepare", "synthhead", "--out", str(root / "synthhead"), "--train", str(max(args.train, 64)),
                        "--val", "128", "--test", "128", "--size", "64"]) == 0
        space_file = work / "cost.yaml"
        space_file.write_text(space_yaml(root, args))
        shard_check = shard_check_cost(space_file)
        if args.shards_only:
            print_shard_check(shard_check)
            if args.json:
                args.json.write_text(json.dumps({"shard_check": shard_check}, indent=2) + "\n")
            return 0
        storage, uri = work / "results", f"sqlite:///{work / 'mlflow.db'}"
        ensure_ray(None)
        started = time.time()
        ids = {}
        for engine in ENGINES:
            name = run_ldlpose(space_file, engine, storage, uri)
            ids[f"ldlpose {engine}"] = trial_ids(storage, name)
        ids["plain Tune"] = run_plain(space_file, args.trials, storage)
        ray.shutdown()
        summary = summarise(trace.read(traces), ids)
        print()
        print_table(summary)
        print(f"\n{args.trials} trials x {args.epochs} epochs x {args.train} images per engine; "
              f"{time.time() - started:.0f} s in all")
        print_shard_check(shard_check)
        if args.json:
            args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                             "summary": summary, "shard_check": shard_check}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
