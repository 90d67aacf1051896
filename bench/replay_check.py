"""The replay against a real Tune run: the same table, the same searcher and scheduler, the same decisions?

bench/replay.py re-implements one part of Tune, its controller loop, over simulated time. Here a
real ``tune.Tuner`` (real Ray) runs the same search, with the production searcher and scheduler
built the same way (``ldlpose.search.tuning``), and a trainable that reads the table instead of
training: each epoch it sleeps the row's recorded seconds times ``--scale`` and reports what the
row recorded. Per seed, the check compares, trial by trial in the order Tune created them, the
configuration suggested and the epochs each trial ran (where ASHA stopped it or let it finish).

Wall-clock noise can reorder two results that the table puts close together in time, and ASHA's
decisions depend on that order; the replay's smallest gap between consecutive results is printed
beside each verdict. ``--times staggered`` gives every configuration its own epoch time
(1 to 2 seconds apart in a fixed pattern, times ``--scale``) instead of the recorded ones, which on
today's tables are nearly equal across configurations. The first trials wait for a common start
(actors start at different moments); every epoch then ends at its trial's start plus its
cumulative scaled time.

    python bench/replay_check.py --table bench/results/replay-dev.json --strategy tpe-asha --workers 2 \\
        --seeds 0 1 2 --scale 0.5 --times staggered [--json bench/results/replay_check-dev.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import replay  # sibling bench modules
import replay_table

START_ALLOWANCE_S = 10.0  # the first trials' actors start within this; they then begin together


def staggered(table: replay_table.Table) -> replay_table.Table:
    """The table with every configuration's epochs taking its own time: 1 + (0.618 i mod 1) seconds."""
    index = {key: i for i, key in enumerate(table.configs())}
    rows = tuple(dataclasses.replace(r, epoch_s=(1.0 + (0.618 * index[replay_table.config_key(r.config)]) % 1.0,)
                                     * table.epochs) for r in table.rows)
    return dataclasses.replace(table, rows=rows)


def scaled(table: replay_table.Table, scale: float) -> replay_table.Table:
    rows = tuple(dataclasses.replace(r, epoch_s=tuple(s * scale for s in r.epoch_s)) for r in table.rows)
    return dataclasses.replace(table, rows=rows)


def table_trial(config: dict, table: replay_table.Table, start_at: float, first: int) -> None:
    """A trainable that reports a table row's epochs, each after the row's (scaled) time."""
    from ray import tune

    index = _index(tune.get_context().get_trial_dir())
    rows = table.rows_of(config)
    row = rows[index % len(rows)]
    if index < first:  # the first trials begin together, as the replay's do
        time.sleep(max(0.0, start_at - time.time()))
    started, elapsed = time.time(), 0.0
    for epoch in range(1, table.epochs + 1):
        elapsed += row.epoch_s[epoch - 1]
        time.sleep(max(0.0, started + elapsed - time.time()))
        val = row.val_mae[:epoch]
        tune.report({"epoch": epoch, "val_mae": val[-1], replay.OBJECTIVE: min(val),
                     "test_mae": row.test_mae[epoch - 1]})


def _dirname(trial) -> str:
    """A trial's folder named by its creation order (Tune's tag starts with the 1-based trial count)."""
    return f"trial_{int(trial.experiment_tag.split('_', 1)[0]) - 1:05d}"


def _index(trial_dir: str) -> int:
    return int(Path(trial_dir).name.removeprefix("trial_"))


def tune_run(table: replay_table.Table, strategy: str, seed: int, settings: replay.Settings) -> list[tuple]:
    """One real Tune search over ``table``: (configuration, epochs run) per trial, in creation order."""
    import numpy as np
    from ray import tune

    from ldlpose.search import tuning

    np.random.seed(seed)
    space = replay_table.space(table, replay.search_section(strategy, seed, settings, table))
    trainable = tune.with_resources(
        tune.with_parameters(table_trial, table=table, start_at=time.time() + START_ALLOWANCE_S,
                             first=settings.workers), {"CPU": 1})
    with tempfile.TemporaryDirectory(prefix="replay-check-") as storage:
        tuner = tune.Tuner(trainable, tune_config=tune.TuneConfig(
            metric=replay.OBJECTIVE, mode="min", search_alg=tuning.searcher(space),
            scheduler=tuning.scheduler(space), num_samples=space.num_trials,
            max_concurrent_trials=settings.workers, reuse_actors=True, trial_dirname_creator=_dirname),
            run_config=tune.RunConfig(name=f"check-{seed}", storage_path=storage, verbose=0))
        grid = tuner.fit()
        trials = []
        for result in grid:
            trials.append((_index(result.path), replay_table.run_keys(result.config),
                           int(result.metrics["epoch"])))
    return [(config, epochs) for _, config, epochs in sorted(trials, key=lambda t: t[0])]


def min_gap(run: replay.Replay) -> float:
    times = sorted(e.time_s for e in run.events)
    return min((b - a for a, b in itertools.pairwise(times) if b > a), default=float("inf"))


def check(table: replay_table.Table, strategy: str, seeds: list[int], settings: replay.Settings) -> list[dict]:
    """Replay and real Tune run per seed; Ray must be initialised with at least ``workers`` CPUs."""
    from ray import cloudpickle

    for module in (sys.modules[__name__], replay, replay_table):  # bench/ is not on Ray workers' path
        cloudpickle.register_pickle_by_value(module)
    out = []
    for seed in seeds:
        simulated = replay.replay(table, strategy, seed, settings)
        expected = [(t.config, t.epochs) for t in simulated.trials]
        real = tune_run(table, strategy, seed, settings)
        same = [(replay_table.config_key(c), e) for c, e in expected] == \
               [(replay_table.config_key(c), e) for c, e in real]
        out.append({"seed": seed, "same": same, "min_gap_s": min_gap(simulated),
                    "replay": [[c, e] for c, e in expected], "tune": [[c, e] for c, e in real],
                    "stopped_early_replay": sum(t.stopped_early for t in simulated.trials)})
        print(f"[check] seed {seed}: {'same' if same else 'DIFFERENT'} decisions over {len(expected)} trials "
              f"({out[-1]['stopped_early_replay']} stopped early); smallest gap between results "
              f"{out[-1]['min_gap_s']:.2f} s", flush=True)
    return out


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--table", type=Path, required=True)
    p.add_argument("--strategy", default="tpe-asha", choices=sorted(replay.STRATEGIES))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--trials", type=int, help="trial budget (default: the table's configurations)")
    p.add_argument("--scale", type=float, default=0.5, help="real seconds per recorded (or staggered) second")
    p.add_argument("--times", choices=("recorded", "staggered"), default="staggered")
    p.add_argument("--json", type=Path)
    return p.parse_args(argv)


def main(argv=None) -> int:
    import ray

    args = parse_args(argv)
    replay.quiet()
    table = replay_table.load(args.table)
    table = scaled(staggered(table) if args.times == "staggered" else table, args.scale)
    settings = replay.Settings(workers=args.workers, trials=args.trials)
    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        results = check(table, args.strategy, args.seeds, settings)
    finally:
        ray.shutdown()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"command": "python bench/replay_check.py " + " ".join(
            sys.argv[1:] if argv is None else argv), "table": str(args.table), "results": results}, indent=1) + "\n")
    return 0 if all(r["same"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
