"""The two figures that tell a search's story on its parent run and in its report (matplotlib, Agg).

* :func:`best_vs_epochs`: the best validation value so far against the trial-epochs spent, trials in
  the order they finished. It answers "would more budget have helped?": a curve still falling at
  its right end says yes.
* :func:`objective_per_method`: every trial's validation value per method, beside the
  confirmation runs (new seeds) and their mean with its 95 % interval. The spread between seeds
  says how much of a gap between methods is luck.

Both take plain values, so the report draws them again from stored state (lower is better).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ldlpose.report.figures import pyplot

__all__ = ["best_vs_epochs", "objective_per_method"]


def best_vs_epochs(points: Sequence[Mapping], objective: str, title: str):
    """``points``: ``{"epochs", "value"}`` per trial in the order the trials finished (``value`` None
    for a trial without one). Each trial is a dot at the trial-epochs spent when it finished; the
    step line is the best value so far."""
    with pyplot().style.context("default"):  # Optuna's plots set ggplot for the whole process
        return _best_vs_epochs(points, objective, title)


def _best_vs_epochs(points: Sequence[Mapping], objective: str, title: str):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    fig.subplots_adjust(left=0.11, right=0.97, bottom=0.13, top=0.9)
    spent, best, xs, ys = 0.0, np.inf, [], []
    trail_x, trail_y = [], []
    for point in points:
        spent += float(point["epochs"])
        value = point["value"]
        if value is None or not np.isfinite(value):
            continue
        xs.append(spent)
        ys.append(value)
        best = min(best, value)
        trail_x.append(spent)
        trail_y.append(best)
    ax.scatter(xs, ys, s=18, color="0.55", label="a trial, when it finished")
    if trail_x:
        ax.step([*trail_x, spent], [*trail_y, trail_y[-1]], where="post", color="C3", lw=2, label="best so far")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole
    ax.set_xlabel("trial-epochs spent")
    ax.set_ylabel(f"{objective} (deg, validation)")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper right", fontsize=8)
    return fig


def objective_per_method(trials: Mapping[str, Sequence[float]], confirmations: Mapping[str, Sequence[float]],
                         intervals: Mapping[str, tuple[float, float, float]], objective: str, title: str):
    """Per method: its trials' values (grey dots), its confirmation runs' values (orange crosses) and,
    where ``intervals`` has it, their ``(mean, low, high)`` as a bar from low to high."""
    with pyplot().style.context("default"):  # as above
        return _objective_per_method(trials, confirmations, intervals, objective, title)


def _objective_per_method(trials: Mapping[str, Sequence[float]], confirmations: Mapping[str, Sequence[float]],
                          intervals: Mapping[str, tuple[float, float, float]], objective: str, title: str):
    plt = pyplot()
    methods = sorted(set(trials) | set(confirmations))
    fig, ax = plt.subplots(figsize=(max(5.5, 1.6 * len(methods) + 3), 4.2))
    fig.subplots_adjust(left=0.14, right=0.97, bottom=0.13, top=0.9)
    rng = np.random.default_rng(0)  # a fixed jitter: the same data draws the same figure
    shown: set[str] = set()

    def once(label: str) -> str | None:  # one legend entry per kind of mark
        if label in shown:
            return None
        shown.add(label)
        return label

    for i, method in enumerate(methods):
        values = list(trials.get(method, ()))
        if values:
            ax.scatter(i - 0.12 + rng.uniform(-0.06, 0.06, len(values)), values, s=20, color="0.55",
                       label=once("search trial"))
        seeds = list(confirmations.get(method, ()))
        if seeds:
            ax.scatter(np.full(len(seeds), i + 0.12), seeds, marker="x", s=30, color="C1",
                       label=once("confirmation seed"))
        if method in intervals:
            mean, low, high = intervals[method]
            ax.errorbar([i + 0.25], [mean], yerr=[[mean - low], [high - mean]], fmt="o", color="C3", capsize=4,
                        label=once("mean of the seeds, 95% interval"))
    ax.set_xticks(range(len(methods)), methods)
    ax.set_xlim(-0.6, len(methods) - 0.4)
    ax.set_ylabel(f"{objective} (deg, validation)")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="best", fontsize=8, framealpha=0.8)
    return fig
