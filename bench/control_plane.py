"""The search's control plane at scale: the production driver with trials that replay a recorded table.

``ldlpose search`` runs end to end (``search.driver.search_and_report``: Tune, the Optuna searcher,
ASHA, the MLflow tracking callback and its outbox with the journal, the finalisation of every
finished trial, registration) against a real ``mlflow server`` on 127.0.0.1 with a sqlite store,
on a local Ray with one logical CPU per concurrent trial. Only the trial function differs: through
``LDLPOSE_TRIAL_FUNCTION`` (ldlpose.search.trial_hook) each trial runs :func:`table_trial`, which
reports a recorded table's curves (bench/replay_table.py) instead of training, as the training loop
reports them: the same metric names per epoch, a checkpoint per epoch in the run folder (the
configuration's untrained network, hard-linked from a template; ``metrics.json`` per epoch; the
loop's retention), the test scores at the last epoch only, and the loop's stop check. So the
driver finalises every trial as it would a trained one: model exported and logged, plots drawn,
an early-stopped trial's selected checkpoint scored on the test benchmark.

Tables record fewer epochs than a long search: a curve is continued past its last recorded epoch by
its last step, shrinking by ``DECAY`` per epoch (it flattens; one that rose at its end rises ever
less), and epoch times are looped. Each epoch sleeps its recorded seconds times ``--epoch-scale``
(0: none, every trial reports as fast as the driver takes it).

Measured in the driver process every ``--sample-s``: its resident memory, its CPU time (all threads,
and the outbox's writing thread alone), the MLflow writes the outbox delivered (journal marks), the
trials started, completed and finalised (``LDLPOSE_TRACE`` marks), and the MLflow server's CPU
time; afterwards the time from Tune's end to the registration, and the registration itself.

    python bench/control_plane.py --trials 1000 --epochs 50 --concurrency 32 \\
        --json bench/results/control_plane.json --figure bench/results/control_plane.png
    python bench/control_plane.py --smoke     # 4 trials of 3 epochs, 2 at a time
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import control_plane_probe as probe  # noqa: E402  (sibling bench modules)
import control_plane_report as report  # noqa: E402
import replay_table  # noqa: E402

SETUP_ENV = "CONTROL_PLANE_SETUP"  # the JSON file the table trials read: table, epochs, scale, templates
DECAY = 0.8  # a continued curve's step shrinks by this per epoch past the recorded ones
TRIAL_FUNCTION = "control_plane:table_trial"


# --- the trial: a table row replayed as the training loop reports it ------------------------------

def extend(values: tuple[float, ...] | list[float], epochs: int) -> list[float]:
    """``values`` to ``epochs`` points: the recorded ones, then the last step continued, shrinking."""
    out = list(values[:epochs])
    step = out[-1] - out[-2] if len(out) > 1 else 0.0
    while len(out) < epochs:
        step *= DECAY
        out.append(max(0.0, out[-1] + step))
    return out


def looped(values: tuple[float, ...] | list[float], epochs: int) -> list[float]:
    return [values[i % len(values)] for i in range(epochs)]


def _errors(prefix: str, mae: float) -> dict[str, float]:
    """The six metrics the loop reports per set (ldlpose.metrics.evaluate), ``mae`` recorded, the
    others a fixed multiple of it: their values steer nothing, their number is what MLflow stores."""
    from ldlpose.metrics import metric_key

    ratios = {"mae": 1.0, "mae_yaw": 1.1, "mae_pitch": 0.9, "mae_roll": 1.0, "maev": 1.3, "geodesic": 1.5}
    return {metric_key(prefix, name): mae * r for name, r in ratios.items()}


def curves(row: replay_table.Row, config: dict, epochs: int, benchmarks: list[str],
           every_epoch: bool) -> list[dict]:
    """Each epoch's metrics as the training loop reports them, for the configuration ``config``."""
    val, test, secs = extend(row.val_mae, epochs), extend(row.test_mae, epochs), looped(row.epoch_s, epochs)
    lr = float(config.get("train.optimizer.lr", 0.0))
    out: list[dict] = []
    best = 0
    for i in range(epochs):
        best = i if val[i] < val[best] else best
        metrics = {"epoch": i + 1, "train_loss": val[i] / 10, "train_time_s": 0.8 * secs[i],
                   "eval_time_s": 0.2 * secs[i], "lr": lr * 0.5 * (1 + math.cos(math.pi * i / epochs)),
                   **_errors("val", val[i]), "resumed_from_epoch": 0,
                   "selected_epoch": best + 1, "selected_val_mae": val[best]}
        for name in (benchmarks if every_epoch else []):
            metrics.update(_errors(name, test[i]))
        if i + 1 == epochs:  # the test benchmarks, once, on the selected epoch (train.loop.score_selected)
            for name in benchmarks:
                metrics.update({f"selected_{k}": v for k, v in _errors(name, test[best]).items()})
            metrics["test_time_s"] = 0.1
        out.append(metrics)
    return out


@functools.cache
def _setup() -> dict:
    setup = json.loads(Path(os.environ[SETUP_ENV]).read_text())
    setup["table_data"] = replay_table.load(setup["table"])
    return setup


def template_name(config: dict) -> str:
    """The file name of a configuration's checkpoint template, from its run-config keys."""
    key = replay_table.config_key(replay_table.run_keys(config))
    return hashlib.sha256(repr(key).encode()).hexdigest()[:16] + ".pt"


def table_trial(config: dict, space, storage: str, prefix: str, points=None) -> None:
    """A Tune trial (LDLPOSE_TRIAL_FUNCTION) that reports a table row's epochs instead of training."""
    from ray import tune

    from ldlpose.infra.storage import join
    from ldlpose.train.checkpoints import checkpoint_dir_name, prune, stop_requested, store

    setup, run = _setup(), space.base_run
    assignment = {k: v for k, v in config.items() if not k.startswith("_")}
    row = setup["table_data"].rows_of(assignment)[0]
    template = Path(setup["templates"]) / template_name(assignment)
    run_dir = join(storage, f"{prefix}-{tune.get_context().get_trial_id()}")
    epochs = curves(row, replay_table.run_keys(assignment), run.train.epochs, run.data.benchmarks,
                    run.data.benchmarks_every_epoch)
    for metrics, secs in zip(epochs, looped(row.epoch_s, len(epochs)), strict=True):
        if stop_requested(run_dir):  # ASHA stopped it (train.checkpoints.STOP_FILE), as the loop checks
            return
        time.sleep(secs * setup["scale"])
        # The checkpoint holds the epoch's metrics before the test scores, as the loop's does.
        kept = {k: v for k, v in metrics.items() if k != "test_time_s"
                and (not k.startswith("selected_") or k.startswith(("selected_val", "selected_epoch")))}
        write = functools.partial(_write, template=template, metrics=kept)
        store(run_dir, checkpoint_dir_name(metrics["epoch"]), write)
        prune(run_dir, run.train.select_metric)
        tune.report(metrics)


def _write(folder: Path, *, template: Path, metrics: dict) -> None:
    from ldlpose.train.checkpoints import CHECKPOINT_FILE, METRICS_FILE

    try:
        os.link(template, folder / CHECKPOINT_FILE)  # the driver reads it; nothing writes to it
    except OSError:
        shutil.copyfile(template, folder / CHECKPOINT_FILE)
    (folder / METRICS_FILE).write_text(json.dumps(metrics))


# --- the search around it ---------------------------------------------------------------------------

def write_templates(space, folder: Path) -> None:
    """One checkpoint per configuration of the space: its untrained network and its run config."""
    import torch

    from ldlpose import methods
    from ldlpose.models import build_model
    from ldlpose.train.checkpoints import save_checkpoint

    folder.mkdir(parents=True, exist_ok=True)
    for point in space.grid():
        target = folder / template_name(point)
        if target.is_file():
            continue
        run = space.run_config({k: v for k, v in point.items() if k != "grid_point"})
        model = build_model(methods.create(run.method.name, **run.method.hparams), run.model.backbone, "none")
        optimizer = torch.optim.SGD(model.parameters(), lr=run.train.optimizer.lr)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
        with tempfile.TemporaryDirectory(dir=folder) as scratch:
            tmp = Path(scratch)
            save_checkpoint(tmp, model_state=model.state_dict(), optimizer=optimizer, scheduler=scheduler, epoch=0,
                            history=[{"epoch": 1}], run=run.to_dict())
            (tmp / "checkpoint.pt").rename(target)


def space_yaml(table: replay_table.Table, args, root: Path) -> str:
    import yaml

    base = json.loads(json.dumps(table.metadata["base"]))
    base["name"] = args.name
    base["train"]["epochs"] = args.epochs
    base["data"]["root"] = str(root)
    search = {"metric": {"name": table.metadata["metric"], "goal": "minimize"},
              "sampler": {"name": "tpe", "seed": 0},
              "scheduler": {"name": "asha", "grace_period": args.grace_period,
                            "reduction_factor": args.reduction_factor},
              "budget": {"trials": args.trials, "concurrency": args.concurrency},
              "parameters": table.metadata["parameters"]}
    return yaml.safe_dump({**base, "search": search}, sort_keys=False)


def prepare(args, work: Path) -> Path:
    """The data, the checkpoint templates and the space file; the space file."""
    from ldlpose.cli import main as cli
    from ldlpose.search.space import load_search_space

    table = replay_table.load(args.table)
    root = work / "data"
    if not (root / "synthhead" / "test" / "_manifest.json").is_file():
        assert cli(["prepare", "synthhead", "--out", str(root / "synthhead"), "--train", "64", "--val",
                    str(args.eval_images), "--test", str(args.eval_images), "--size", "64", "--workers", "1"]) == 0
    space_file = work / f"{args.name}.yaml"
    space_file.write_text(space_yaml(table, args, root))
    write_templates(load_search_space(str(space_file), []), work / "templates")
    setup = {"table": str(Path(args.table).resolve()), "templates": str(work / "templates"),
             "scale": args.epoch_scale}
    (work / "setup.json").write_text(json.dumps(setup))
    return space_file


def run(args, work: Path) -> dict:
    """Prepare, start MLflow and Ray, run the search under the probe; the measurements."""
    import ray

    from ldlpose.infra.environment import temporarily
    from ldlpose.search.driver import search_and_report

    for earlier in ("results", "mlflow", "trace"):  # a search of its own each time; data and templates stay
        shutil.rmtree(work / earlier, ignore_errors=True)
    space_file = prepare(args, work)
    # Before Ray starts, so that its workers inherit them; this process's own are restored at the end.
    env = {"LDLPOSE_TRACE": str(work / "trace"), "LDLPOSE_TRIAL_FUNCTION": TRIAL_FUNCTION,
           SETUP_ENV: str(work / "setup.json"),
           "PYTHONPATH": os.pathsep.join([str(BENCH), os.environ.get("PYTHONPATH", "")])}
    if ray.is_initialized():  # one logical CPU per concurrent trial: a Ray of its own
        ray.shutdown()
    with temporarily(**env), probe.mlflow_server(work / "mlflow") as (server, uri):
        ray.init(address="local", num_cpus=args.concurrency, resources={"TRAIN_DRIVER_RESOURCE": 100},
                 include_dashboard=False, log_to_driver=False, configure_logging=False)
        storage = work / "results"
        watch = probe.Probe(args.sample_s, journal=storage / args.name / "ldlpose-outbox" / "writes.jsonl",
                            trace=work / "trace" / f"{os.getpid()}.jsonl", server_pid=server.pid)
        try:
            with watch, probe.timed_lines() as lines:
                code = search_and_report(str(space_file), storage=str(storage), tracking_uri=uri, verbose=False)
        finally:
            ray.shutdown()
    return report.summarise(watch, lines, code, args)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--table", default=str(BENCH / "results" / "replay-dev.json"))
    p.add_argument("--trials", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--grace-period", type=int, default=2, help="ASHA's (the quickstart's: 2)")
    p.add_argument("--reduction-factor", type=float, default=2.0, help="ASHA's (the quickstart's: 2)")
    p.add_argument("--epoch-scale", type=float, default=0.0, help="seconds slept per recorded epoch second")
    p.add_argument("--eval-images", type=int, default=200, help="validation and test images prepared")
    p.add_argument("--sample-s", type=float, default=1.0)
    p.add_argument("--workdir", type=Path, help="keep everything here (default: a temporary folder)")
    p.add_argument("--json", type=Path)
    p.add_argument("--figure", type=Path)
    p.add_argument("--from-json", type=Path, help="print the summary (and draw --figure) of an earlier run's JSON")
    p.add_argument("--smoke", action="store_true", help="4 trials of 3 epochs, 2 at a time, 32 images")
    args = p.parse_args(argv)
    if args.smoke:
        args.trials, args.epochs, args.concurrency, args.eval_images, args.grace_period = 4, 3, 2, 32, 1
    args.name = f"control-plane-{args.trials}x{args.epochs}"
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.from_json:  # the summary and the figure again, from a run's JSON
        result = json.loads(args.from_json.read_text())
        result["memory"] = report.memory(result["samples"], result["size"]["trials"])  # as measured today
        if args.json:
            args.json.write_text(json.dumps(result, indent=1) + "\n")
        report.print_summary(result)
        if args.figure:
            report.figure(result, args.figure)
        return 0
    command = "python bench/control_plane.py " + " ".join(sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory(prefix="control-plane-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        result = {"command": command, **run(args, work)}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    report.print_summary(result)
    if args.figure:
        report.figure(result, args.figure)
    return 0 if result["exit_code"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
