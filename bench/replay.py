"""Search strategies replayed on recorded learning curves, with a simulated clock and N simulated workers.

A table (bench/replay_table.py: its schema; bench/record_table.py: how one is recorded) holds every
configuration's per-epoch validation MAE and seconds. A replay runs one search strategy against it
as Tune would run it on N workers, without training anything:

* **The production searcher and scheduler, driven directly.** ``ldlpose.search.tuning.searcher``
  builds Tune's ``OptunaSearch`` (define-by-run, the sampler of ``search_spaces/*.yaml``) and
  ``tuning.scheduler`` the ``ASHAScheduler(time_attr="epoch")`` (or FIFO), from the table's space
  with the strategy's sampler and scheduler settings. The searcher is wrapped in Tune's
  ``ConcurrencyLimiter``, as ``TuneConfig(max_concurrent_trials=N)`` wraps it. Only their public
  methods are called: ``suggest``, ``on_trial_result``, ``on_trial_complete``; the scheduler's
  ``set_search_properties``, ``on_trial_add``, ``on_trial_result``, ``on_trial_complete``, with a
  stand-in trial carrying ``trial_id`` (all that ASHA and FIFO read of a trial).
* **The space restricted to the recorded values**: the table's base run and its parameters' value
  lists, loaded by ldlpose's own loader; a suggestion is answered by that configuration's row (a
  configuration recorded with several seeds: row ``k mod seeds`` for the k-th trial).
* **Re-implemented: Tune's controller loop** (``TuneController``, not a public API), as an event
  queue keyed by simulated time. A trial "runs" as long as its recorded epochs took; each epoch's
  result goes to the scheduler first and, unless it stops the trial, then to the searcher
  (``TuneController._process_trial_result``); a stopped or finished trial is completed with its last
  result, scheduler first (``TuneController.stop_trial``); a freed worker asks for the next trial at
  once. Results at the same simulated instant are taken in the order they were scheduled.
  bench/replay_check.py shows a real ``tune.Tuner`` run over the same table making the same
  decisions. HyperBand (synchronous brackets that pause and resume trials) is not replayed.

    python bench/replay.py --table bench/results/replay-dev.json --strategy tpe-asha --workers 8 --seeds 50
    python bench/replay.py --table T --strategy all --workers 2 8 --seeds 50 --json out.json --figure out.png
"""

from __future__ import annotations

import argparse
import heapq
import logging
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import replay_table  # a sibling bench module

# sampler and scheduler of each strategy (ldlpose's search.sampler.name and search.scheduler.name)
STRATEGIES = {
    "tpe-asha": ("tpe", "asha"),
    "tpe": ("tpe", "none"),
    "random-asha": ("random", "asha"),
    "random": ("random", "none"),
    "grid": ("grid", "none"),
}
OBJECTIVE = "selected_val_mae"  # what the production search gives Tune (ldlpose.search.trials.objective_key)


@dataclass(frozen=True)
class Settings:
    """A strategy's settings; ``trials`` None: as many as the table has configurations."""

    workers: int = 1
    trials: int | None = None
    grace_period: int = 1
    reduction_factor: float = 2.0
    n_startup_trials: int = 4  # ldlpose's default (search.sampler.n_startup_trials)
    start_from: tuple[dict, ...] = ()  # search.start_from, by run-config key


@dataclass(frozen=True)
class Event:
    """One epoch result as the scheduler saw it."""

    time_s: float
    trial_id: str
    epoch: int
    val_mae: float
    decision: str  # Tune's CONTINUE or STOP


@dataclass
class TrialRecord:
    trial_id: str
    config: dict
    row: replay_table.Row
    worker: int
    start_s: float
    epochs: int = 0  # epochs run
    stopped_early: bool = False


@dataclass
class Replay:
    strategy: str
    seed: int
    settings: Settings
    trials: list[TrialRecord] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    @property
    def trial_epochs(self) -> int:
        return len(self.events)

    @property
    def wall_s(self) -> float:
        return max((e.time_s for e in self.events), default=0.0)

    def curve(self) -> list[tuple[float, float]]:
        """(simulated seconds, best val MAE so far) after each trial-epoch, in the order reported."""
        best, out = float("inf"), []
        for event in self.events:
            best = min(best, event.val_mae)
            out.append((event.time_s, best))
        return out

    def reach(self, target: float) -> tuple[int, float] | None:
        """(trial-epochs, simulated seconds) when the best so far first came to ``target`` or below."""
        for count, (time_s, best) in enumerate(self.curve(), start=1):
            if best <= target:
                return count, time_s
        return None


@dataclass(frozen=True)
class _StandInTrial:
    """What Tune's schedulers read of a ``ray.tune.experiment.Trial``: its id."""

    trial_id: str


def search_section(strategy: str, seed: int, settings: Settings, table: replay_table.Table) -> dict:
    """The ldlpose ``search:`` section of a replay (validated by the production loader)."""
    sampler_name, scheduler_name = STRATEGIES[strategy]
    trials = settings.trials or len(table.configs())
    return {"metric": {"name": table.metadata["metric"], "goal": "minimize"},
            "sampler": {"name": sampler_name, "seed": seed, "n_startup_trials": settings.n_startup_trials},
            "scheduler": {"name": scheduler_name, "grace_period": settings.grace_period,
                          "reduction_factor": settings.reduction_factor},
            "budget": {"trials": trials, "concurrency": settings.workers},
            "start_from": [dict(p) for p in settings.start_from]}


def tune_objects(space, workers: int):
    """The production searcher (behind Tune's ConcurrencyLimiter) and scheduler, set up as Tune does."""
    from ray.tune.search import ConcurrencyLimiter

    from ldlpose.search import tuning

    searcher = ConcurrencyLimiter(tuning.searcher(space), max_concurrent=workers)
    scheduler = tuning.scheduler(space)
    searcher.set_search_properties(OBJECTIVE, "min", {})  # as tune.run does; the searcher keeps its own
    scheduler.set_search_properties(OBJECTIVE, "min")
    return searcher, scheduler


class _Simulation:
    """Tune's controller loop over simulated time (see the module docstring for what it follows)."""

    def __init__(self, table, space, settings: Settings, replay: Replay):
        self.table, self.settings, self.replay = table, settings, replay
        self.searcher, self.scheduler = tune_objects(space, settings.workers)
        self.budget = space.num_trials
        self.queue: list[tuple[float, int, str, int]] = []  # (time, order scheduled, trial id, epoch)
        self.order = 0
        self.free = list(range(settings.workers))
        self.running: dict[str, TrialRecord] = {}
        self.exhausted = False

    def run(self) -> Replay:
        self.fill(0.0)
        while self.queue:
            time_s, _, trial_id, epoch = heapq.heappop(self.queue)
            self.result(time_s, self.running[trial_id], epoch)
            self.fill(time_s)
        return self.replay

    def fill(self, now: float) -> None:
        """Start trials on every free worker while the budget and the searcher allow."""
        while self.free and not self.exhausted and len(self.replay.trials) < self.budget:
            trial_id = f"{len(self.replay.trials):05d}"
            config = self.searcher.suggest(trial_id)
            if config is None or config == "FINISHED":  # Searcher.FINISHED: the grid is spent
                self.exhausted = True
                return
            rows = self.table.rows_of(config)
            record = TrialRecord(trial_id, replay_table.run_keys(config), rows[len(self.replay.trials) % len(rows)],
                                 self.free.pop(0), now)
            self.replay.trials.append(record)
            self.running[trial_id] = record
            self.scheduler.on_trial_add(None, _StandInTrial(trial_id))
            self.schedule(now, record, 1)

    def schedule(self, now: float, record: TrialRecord, epoch: int) -> None:
        heapq.heappush(self.queue, (now + record.row.epoch_s[epoch - 1], self.order, record.trial_id, epoch))
        self.order += 1

    def result(self, now: float, record: TrialRecord, epoch: int) -> None:
        from ray.tune.schedulers import TrialScheduler

        val = record.row.val_mae[:epoch]
        result = {"epoch": epoch, "training_iteration": epoch, "trial_id": record.trial_id,
                  "val_mae": val[-1], OBJECTIVE: min(val), "test_mae": record.row.test_mae[epoch - 1],
                  "time_this_iter_s": record.row.epoch_s[epoch - 1]}
        trial = _StandInTrial(record.trial_id)
        decision = self.scheduler.on_trial_result(None, trial, result)
        record.epochs = epoch
        self.replay.events.append(Event(now, record.trial_id, epoch, val[-1], decision))
        last = epoch == self.table.epochs
        if decision != TrialScheduler.STOP and not last:
            self.searcher.on_trial_result(record.trial_id, result)
            self.schedule(now, record, epoch + 1)
            return
        record.stopped_early = not last
        self.scheduler.on_trial_complete(None, trial, result)
        self.searcher.on_trial_complete(record.trial_id, result=result)
        del self.running[record.trial_id]
        self.free.append(record.worker)
        self.free.sort()


def quiet() -> None:
    """Optuna's per-trial logs and its experimental-feature warnings (TPE's multivariate, group,
    constant_liar, as ldlpose uses them) would print thousands of lines over many seeds."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    logging.getLogger("ray.tune").setLevel(logging.ERROR)


def replay(table: replay_table.Table, strategy: str, seed: int, settings: Settings) -> Replay:
    """One search by ``strategy`` (a key of STRATEGIES) with sampler seed ``seed``."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
    import numpy as np

    np.random.seed(seed)  # ASHA draws a bracket per trial from NumPy's global generator
    space = replay_table.space(table, search_section(strategy, seed, settings, table))
    return _Simulation(table, space, settings, Replay(strategy, seed, settings)).run()


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--table", type=Path, required=True, help="a recorded table (bench/results/replay-*.json)")
    p.add_argument("--strategy", nargs="+", default=["tpe-asha"], help=f"{', '.join(STRATEGIES)} or all")
    p.add_argument("--workers", type=int, nargs="+", default=[8], help="simulated workers (several: one replay each)")
    p.add_argument("--seeds", type=int, default=50, help="sampler seeds per strategy (0 .. seeds-1)")
    p.add_argument("--trials", type=int, help="trial budget (default: the table's configurations; grid: all)")
    p.add_argument("--grace-period", type=int, default=1)
    p.add_argument("--reduction-factor", type=float, default=2.0)
    p.add_argument("--n-startup-trials", type=int, default=4)
    p.add_argument("--json", type=Path, help="write the summary and anytime curves here")
    p.add_argument("--figure", type=Path, help="the anytime-curve figure (default: bench/out/replay-<table>.png)")
    args = p.parse_args(argv)
    args.strategy = list(STRATEGIES) if args.strategy == ["all"] else args.strategy
    unknown = [s for s in args.strategy if s not in STRATEGIES]
    if unknown:
        p.error(f"unknown strategy {unknown[0]!r}; known: {', '.join(STRATEGIES)}, all")
    return args


def main(argv=None) -> int:
    import replay_report

    args = parse_args(argv)
    quiet()
    table = replay_table.load(args.table)
    runs: dict[tuple[str, int], list[Replay]] = {}
    for workers in args.workers:
        settings = Settings(workers=workers, trials=args.trials, grace_period=args.grace_period,
                            reduction_factor=args.reduction_factor, n_startup_trials=args.n_startup_trials)
        for strategy in args.strategy:
            runs[strategy, workers] = [replay(table, strategy, seed, settings) for seed in range(args.seeds)]
    summary = replay_report.summarise(table, runs)
    print(replay_report.text_table(table, summary))
    figure = args.figure or Path(__file__).parent / "out" / f"replay-{args.table.stem}.png"
    replay_report.figure(table, runs, figure)
    print(f"figure: {figure}")
    if args.json:
        replay_report.write_json(args.json, table, summary, runs, sys.argv[1:] if argv is None else argv)
        print(f"summary: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
