"""Which settings should the tpe-asha strategy ship with? A sweep over a recorded table (issue 26, item 4).

Every combination of TPE's ``n_startup_trials``, ASHA's ``grace_period`` and ``reduction_factor`` is
replayed by bench/replay.py (the production searcher and scheduler, a simulated clock) for many sampler
seeds, at each worker count and each trial budget:

* **the full budget** (as many trials as the table has configurations): trial-epochs until the best
  validation MAE so far is within 5 % and 1 % of the table's best, and the trial-epochs spent;
* **small budgets** (the quickstart's 3 trials, and 6): the best validation MAE the search ends with,
  and the fraction of seeds that end within 5 % of the table's best.

ASHA promotes the first trial to reach a rung, so which trial reports first matters. Each combination
therefore runs three times: ``start_from`` the quickstart's start point (its nearest recorded
configuration), ``start_from`` the table's worst configuration, and no start point; the table shows
the worst of the three (the start that made that combination slowest or its result poorest).

    python bench/replay_settings.py --table bench/results/replay-facegen.json --workers 2 8 --seeds 100 \\
        --json bench/results/replay-facegen-settings.json
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import math
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import record_table  # sibling bench modules
import replay
import replay_report
import replay_table

GRID = {"n_startup_trials": (2, 4, 8), "grace_period": (1, 2, 3), "reduction_factor": (2, 3)}
BUDGETS = (None, 3, 6)  # None: the full budget (the table's configurations)
# the quickstart's start point (search_spaces/quickstart.yaml: hopenet, alpha 0.1, lr 6.44e-3) at the
# nearest recorded values: the table holds alpha 0.01 and 1.0, lr 6.4e-3
QUICKSTART_START = {"method": "hopenet", "method.hparams.alpha": 0.01, "train.optimizer.lr": 0.0064}


def start_points(table: replay_table.Table) -> dict[str, tuple[dict, ...]]:
    """The three starts each combination is replayed from, by name."""
    table.rows_of(QUICKSTART_START)  # TableError, naming the table, if the point is not recorded
    return {"quickstart": (dict(QUICKSTART_START),), "worst": (worst_config(table),), "none": ()}


def worst_config(table: replay_table.Table) -> dict:
    """The configuration whose best validation MAE (mean over its training seeds) is the highest."""
    def score(key: tuple) -> float:
        return statistics.fmean(min(r.val_mae) for r in table.rows_of(dict(key)))
    worst: tuple = max(table.configs(), key=score)
    return dict(worst)


def combinations() -> list[dict]:
    return [dict(zip(GRID, values, strict=True)) for values in itertools.product(*GRID.values())]


def tasks(table: replay_table.Table, workers: list[int]) -> list[dict]:
    """One task per (workers, budget, combination, start), the quickstart's worker count first."""
    return [{"workers": w, "budget": b, "start": s, **combo}
            for w in workers for b in BUDGETS for combo in combinations() for s in start_points(table)]


def run_task(table: replay_table.Table, task: dict, seeds: int, starts: dict[str, tuple[dict, ...]]) -> dict:
    """Replay one task for sampler seeds 0 .. seeds-1, ``task["start"]`` naming one of ``starts``;
    bench/replay_report's summary of them."""
    settings = replay.Settings(workers=task["workers"], trials=task["budget"], grace_period=task["grace_period"],
                               reduction_factor=task["reduction_factor"],
                               n_startup_trials=task["n_startup_trials"],
                               start_from=starts[task["start"]])
    runs = [replay.replay(table, "tpe-asha", seed, settings) for seed in range(seeds)]
    entry = replay_report.summarise(table, {("tpe-asha", task["workers"]): runs})
    return {**task, **next(iter(entry.values()))}


def _inf(value: float | None) -> float:
    """A summary read back from JSON holds null for an unreached (infinite) figure."""
    return math.inf if value is None else value


def measure(entry: dict) -> tuple[float, ...]:
    """What a start can make worse, larger is worse: for the full budget the median trial-epochs to
    within 5 % (inf: under half the seeds got there), then to within 1 %; for a small budget the
    median best val MAE at the end, then the fraction of seeds short of 5 %."""
    if entry["budget"] is None:
        return tuple(_inf(entry[tag]["trial_epochs"]["median"]) for tag in ("within_5pct", "within_1pct"))
    return entry["best_val"]["median"], 1 - entry["within_5pct"]["reached"] / entry["seeds"]


def worst_cases(entries: list[dict]) -> list[dict]:
    """Per (workers, budget, combination), the entry of the start that did worst by :func:`measure`."""
    return [max(group, key=measure) for group in _groups(entries).values()]


def _run(table: replay_table.Table, args: tuple[dict, int]) -> dict:
    return run_task(table, *args, start_points(table))


def sweep(path: Path, workers: list[int], seeds: int, jobs: int, on_result=None) -> list[dict]:
    """Every task, ``jobs`` processes at once; ``on_result(entries)`` after each task (partial saves)."""
    table = replay_table.load(path)
    todo = [(task, seeds) for task in tasks(table, workers)]
    entries: list[dict] = []
    with multiprocessing.get_context("fork").Pool(jobs, replay.quiet) as pool:
        for entry in pool.imap(functools.partial(_run, table), todo):
            entries.append(entry)
            if on_result:
                on_result(entries)
    return entries


def _q(q: dict, digits: int = 3) -> str:
    if q["median"] is None or math.isinf(q["median"]):
        return "not reached"
    hi = "inf" if q["q3"] is None or math.isinf(q["q3"]) else f"{q['q3']:.{digits}g}"
    return f"{q['median']:.{digits}g} [{q['q1']:.{digits}g}, {hi}]"


def _groups(entries: list[dict]) -> dict[tuple, list[dict]]:
    """(workers, budget, *combination) -> the entries of its starts."""
    groups: dict[tuple, list[dict]] = {}
    for entry in entries:
        groups.setdefault(tuple(entry[k] for k in ("workers", "budget", *GRID)), []).append(entry)
    return groups


def _worst(group: list[dict], value) -> str:
    """The worst start's ``value(entry)`` (a (sort key, text) pair), with that start's name."""
    entry = max(group, key=lambda e: value(e)[0])
    return f"{value(entry)[1]} ({entry['start']})"


def _full_cells(group: list[dict]) -> list[str]:
    def reached(tag):
        return lambda e: (-e[tag]["reached"], f"{e[tag]['reached']}/{e['seeds']}")
    return [_worst(group, lambda e: (_inf(e["within_5pct"]["trial_epochs"]["median"]),
                                     _q(e["within_5pct"]["trial_epochs"]))),
            _worst(group, reached("within_5pct")),
            _worst(group, lambda e: (_inf(e["within_1pct"]["trial_epochs"]["median"]),
                                     _q(e["within_1pct"]["trial_epochs"]))),
            _worst(group, reached("within_1pct")),
            _worst(group, lambda e: (e["trial_epochs"]["median"], _q(e["trial_epochs"])))]


def _small_cells(group: list[dict]) -> list[str]:
    def fraction(e):
        return e["within_5pct"]["reached"] / e["seeds"]
    return [_worst(group, lambda e: (e["best_val"]["median"], _q(e["best_val"], 4))),
            _worst(group, lambda e: (-fraction(e), f"{fraction(e):.0%}"))]


def markdown(table: replay_table.Table, entries: list[dict]) -> str:
    """One row per (workers, combination); each cell the worst of the starts, for that cell's figure."""
    groups = _groups(entries)
    title = (f"{table.path}: {len(table.configs())} configurations x {table.epochs} epochs (grid "
             f"{len(table.configs()) * table.epochs} trial-epochs), best val MAE {table.best_val:.3f}; "
             "tpe-asha, median [IQR] over seeds; each cell the worst of the three starts for its own figure "
             "(that start in brackets)")
    head = ("| workers | startup | grace | factor | full: epochs to 5 % | reached | epochs to 1 % | reached "
            "| epochs spent | 3 trials: best val | within 5 % | 6 trials: best val | within 5 % |")
    lines = [title, "", head, "|---" * 13 + "|"]
    for workers in dict.fromkeys(e["workers"] for e in entries):
        for combo in combinations():
            cells = [str(workers), *(str(v) for v in combo.values())]
            full = groups.get((workers, None, *combo.values()))
            cells += _full_cells(full) if full else ["-"] * 5
            for budget in BUDGETS[1:]:
                small = groups.get((workers, budget, *combo.values()))
                cells += _small_cells(small) if small else ["-", "-"]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_json(path: Path, table: replay_table.Table, entries: list[dict], argv: list[str], seeds: int,
               machine: str) -> None:
    data = {"commit": record_table.commit(), "machine": machine,
            "command": "python bench/replay_settings.py " + " ".join(argv),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "table": table.path, "best_val": table.best_val, "configurations": len(table.configs()),
            "epochs": table.epochs, "seeds": seeds, "grid": GRID, "budgets": BUDGETS,
            "starts": {name: list(points) for name, points in start_points(table).items()},
            "entries": entries, "worst_cases": worst_cases(entries)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(replay_report._finite(data), indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--table", type=Path, required=True, help="a recorded table (bench/results/replay-*.json)")
    p.add_argument("--workers", type=int, nargs="+", default=[2, 8], help="simulated workers")
    p.add_argument("--seeds", type=int, default=50, help="sampler seeds per task (0 .. seeds-1)")
    p.add_argument("--jobs", type=int, default=2, help="processes replaying at once")
    p.add_argument("--json", type=Path, help="write every task's summary here (rewritten after each task)")
    p.add_argument("--report", action="store_true", help="print the table of the --json file; replay nothing")
    args = p.parse_args(argv)
    if args.report:
        saved = json.loads(args.json.read_text())
        print(markdown(replay_table.load(saved["table"]), saved["entries"]))
        return 0
    argv = sys.argv[1:] if argv is None else argv
    table = replay_table.load(args.table)
    started, machine = time.monotonic(), record_table.machine()  # its load average: before the sweep adds its own

    def save(entries: list[dict]) -> None:
        if args.json:
            write_json(args.json, table, entries, argv, args.seeds, machine)
        print(f"{len(entries)} tasks done, {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)

    entries = sweep(args.table, args.workers, args.seeds, args.jobs, save)
    print(markdown(table, entries))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
