"""What a set of replays says, as HPO benchmarks report it (bench/replay.py runs them).

Per strategy and worker count, over the seeds: trial-epochs and simulated wall-clock until the best
validation MAE so far comes within 5 % and within 1 % of the table's best (median and interquartile
range; a seed that never gets there counts as infinitely slow, so a median is finite only when at
least half the seeds got there, and ``reached`` says how many did); the trial-epochs and time a
whole search spent; and the anytime curve (median and quartiles of the best so far after each
trial-epoch, a finished search keeping its last value).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

WITHIN = (0.05, 0.01)


def quartiles(values: list[float]) -> dict:
    """25th, 50th and 75th percentile without interpolation, so an unreached (inf) seed stays inf."""
    q = np.quantile(np.asarray(values, dtype=float), [0.25, 0.5, 0.75], method="inverted_cdf")
    return {"q1": float(q[0]), "median": float(q[1]), "q3": float(q[2])}


def summarise(table, runs: dict) -> dict:
    """``runs``: (strategy, workers) -> the replays of every seed."""
    out = {}
    for (strategy, workers), replays in runs.items():
        entry = {"strategy": strategy, "workers": workers, "seeds": len(replays),
                 "trial_epochs": quartiles([r.trial_epochs for r in replays]),
                 "wall_s": quartiles([r.wall_s for r in replays]),
                 "best_val": quartiles([r.curve()[-1][1] for r in replays])}
        for within in WITHIN:
            target = table.best_val * (1 + within)
            reached = [r.reach(target) for r in replays]
            tag = f"within_{round(within * 100)}pct"
            entry[tag] = {"target": target, "reached": sum(x is not None for x in reached),
                          "trial_epochs": quartiles([x[0] if x else math.inf for x in reached]),
                          "wall_s": quartiles([x[1] if x else math.inf for x in reached])}
        out[f"{strategy}@{workers}"] = entry
    return out


def anytime(replays: list, length: int) -> dict:
    """Median and quartiles over seeds of the best val MAE so far after 1 .. ``length`` trial-epochs."""
    curves = []
    for r in replays:
        best = [b for _, b in r.curve()] or [math.inf]
        curves.append(best + [best[-1]] * (length - len(best)))
    q = np.quantile(np.asarray(curves)[:, :length], [0.25, 0.5, 0.75], axis=0, method="inverted_cdf")
    return {"q1": q[0].tolist(), "median": q[1].tolist(), "q3": q[2].tolist()}


def _fmt(q: dict, scale: float = 1.0) -> str:
    if math.isinf(q["median"]):
        return "not reached"
    hi = "inf" if math.isinf(q["q3"]) else f"{q['q3'] / scale:.3g}"
    return f"{q['median'] / scale:.3g} [{q['q1'] / scale:.3g}, {hi}]"


def text_table(table, summary: dict) -> str:
    grid = len(table.configs()) * table.epochs
    head = (f"{'strategy':<13}{'workers':>8} {'epochs to 5 %':>18} {'seconds to 5 %':>18} {'reached':>8} "
            f"{'epochs to 1 %':>18} {'seconds to 1 %':>18} {'reached':>8} {'epochs spent':>16}")
    title = (f"table {table.path}: {len(table.configs())} configurations x {table.epochs} epochs "
             f"(grid: {grid} trial-epochs), best val MAE {table.best_val:.3f}")
    lines = [title, "median [IQR] over seeds; wall-clock in simulated seconds", head]
    for entry in summary.values():
        five, one = entry["within_5pct"], entry["within_1pct"]
        seeds = entry["seeds"]
        lines.append(f"{entry['strategy']:<13}{entry['workers']:>8} {_fmt(five['trial_epochs']):>18} "
                     f"{_fmt(five['wall_s']):>18} {five['reached']:>4}/{seeds:<3} "
                     f"{_fmt(one['trial_epochs']):>18} {_fmt(one['wall_s']):>18} {one['reached']:>4}/{seeds:<3} "
                     f"{_fmt(entry['trial_epochs']):>16}")
    return "\n".join(lines)


def figure(table, runs: dict, path: Path) -> None:
    """Anytime curves: best val MAE so far against trial-epochs, one panel per worker count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workers = sorted({w for _, w in runs})
    fig, axes = plt.subplots(1, len(workers), figsize=(6 * len(workers), 4.2), squeeze=False)
    length = max(r.trial_epochs for replays in runs.values() for r in replays)
    x = np.arange(1, length + 1)
    for ax, count in zip(axes[0], workers, strict=True):
        for (strategy, w), replays in runs.items():
            if w != count:
                continue
            q = anytime(replays, length)
            line, = ax.step(x, q["median"], where="post", label=strategy)
            ax.fill_between(x, q["q1"], q["q3"], step="post", alpha=0.15, color=line.get_color())
        for within, style in zip(WITHIN, (":", "--"), strict=True):
            ax.axhline(table.best_val * (1 + within), color="grey", linestyle=style, lw=0.8,
                       label=f"best + {within:.0%}")
        grid = len(table.configs()) * table.epochs
        ax.axvline(grid, color="black", lw=0.6, label="grid's trial-epochs")
        ax.axvline(grid / 4, color="black", lw=0.6, linestyle="--", label="25 % of the grid's")
        # log x: the strategies part in the first few dozen trial-epochs, the grid's end is far right
        ax.set_xscale("log")
        ax.set(title=f"{count} simulated workers", xlabel="trial-epochs (log)", ylabel="best val MAE so far (deg)")
        ax.legend(fontsize=7)
    fig.suptitle(f"replay of {Path(table.path).name} (median, IQR band over seeds)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_json(path: Path, table, summary: dict, runs: dict, argv: list[str]) -> None:
    length = max(r.trial_epochs for replays in runs.values() for r in replays)
    data = {"table": table.path, "table_metadata": {k: table.metadata[k] for k in ("commit", "machine", "command")},
            "best_val": table.best_val, "configurations": len(table.configs()), "epochs": table.epochs,
            "command": "python bench/replay.py " + " ".join(argv), "summary": summary,
            "anytime": {key: anytime(replays, length) for key, replays in
                        ((f"{s}@{w}", r) for (s, w), r in runs.items())}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_finite(data), indent=1) + "\n")


def _finite(value):
    """JSON has no infinity: an unreached target is written as null."""
    if isinstance(value, float) and math.isinf(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
