"""Figures a person wants to look at after a search, saved as PNG run artifacts (matplotlib, Agg).

Every trial of a search draws them, so they are cheap to render: fixed margins rather than
matplotlib's layout engines, and outlines rather than a patch per bin (bench/trial_cost.py).

Per trial and benchmark (:func:`trial_figures`): absolute error versus the true yaw, pitch and roll;
predicted versus target label distributions of a few samples (methods with bins); sample images
with the predicted and true axes drawn. Per search (:func:`search_figures`): Optuna's parameter
importances and parallel coordinates; for a multi-objective search the Pareto front
(:func:`pareto_figure`). Angles are yaw/pitch/roll in degrees (ldlpose.geometry).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["error_vs_angle", "label_distributions", "pareto_figure", "pose_samples", "save_figures",
           "search_figures", "trial_figures"]

ANGLES = ("yaw", "pitch", "roll")
_SAMPLES = 4  # label distributions shown per benchmark
_IMAGES = 8  # pose images shown per benchmark
_PALE = ((255, 170, 170), (170, 235, 170), (160, 190, 255))  # true axes: pale left, down, front


def pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)  # no display on cluster nodes; leaves an explicit choice alone
    import matplotlib.pyplot as plt

    return plt


def error_vs_angle(pred_deg: np.ndarray, true_deg: np.ndarray, title: str):
    """Absolute error against the true angle, per yaw/pitch/roll, with its mean in 10-degree bins."""
    plt = pyplot()
    errors = np.abs(pred_deg - true_deg)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), sharey=True)
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.15, top=0.82, wspace=0.08)
    for k, (ax, name) in enumerate(zip(axes, ANGLES)):
        ax.scatter(true_deg[:, k], errors[:, k], s=6, alpha=0.4)
        edges = np.arange(np.floor(true_deg[:, k].min() / 10) * 10, true_deg[:, k].max() + 10, 10)
        which = np.digitize(true_deg[:, k], edges)
        centres = [(edges[i - 1] + edges[i]) / 2 for i in np.unique(which) if 0 < i < len(edges)]
        means = [errors[which == i, k].mean() for i in np.unique(which) if 0 < i < len(edges)]
        ax.plot(centres, means, color="C3", marker="o", label="mean per 10 deg")
        ax.set_xlabel(f"true {name} (deg)")
        ax.set_title(f"{name}: MAE {errors[:, k].mean():.2f} deg")
    axes[0].set_ylabel("absolute error (deg)")
    axes[0].legend(loc="upper left")
    fig.suptitle(title)
    return fig


def label_distributions(method, outputs, true_deg: np.ndarray, title: str, count: int = _SAMPLES):
    """Target (``method.targets``) versus predicted (softmax of the outputs' slices) distributions
    of the first ``count`` samples; None for methods without bins."""
    import torch

    if not (getattr(method, "has_distributions", False) and hasattr(method, "probabilities")):
        return None
    count = min(count, len(true_deg))
    angles = torch.as_tensor(true_deg[:count], dtype=torch.float32)
    targets = method.targets(angles)
    predicted = method.probabilities(torch.as_tensor(outputs[:count]))
    parts = [a for a in ANGLES if a in targets and a in predicted]
    if not parts or count == 0:
        return None
    schemes = getattr(method, "schemes", {})
    plt = pyplot()
    fig, axes = plt.subplots(count, len(parts), figsize=(4 * len(parts), 2.2 * count), squeeze=False)
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.04, top=0.92, wspace=0.15, hspace=0.45)
    for i in range(count):
        for j, part in enumerate(parts):
            ax = axes[i, j]
            target, pred = targets[part][i].detach().numpy(), predicted[part][i].detach().numpy()
            x = schemes[part].centers().numpy() if part in schemes else np.arange(len(target))
            width = (x[1] - x[0]) if len(x) > 1 else 1.0
            # One filled outline, not a bar per bin: a figure of 12 panels of 66 bins renders in a
            # tenth of the time, and every trial of a search draws one.
            ax.stairs(target, np.append(x - width / 2, x[-1] + width / 2), fill=True, alpha=0.45, label="target")
            ax.plot(x, pred, color="C3", label="predicted")
            ax.axvline(true_deg[i, ANGLES.index(part)], color="k", lw=0.8, ls="--")
            ax.set_title(f"sample {i} {part}: true {true_deg[i, ANGLES.index(part)]:.1f}", fontsize=9)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(title)
    return fig


def pose_samples(images: list[np.ndarray], pred_deg: np.ndarray, true_deg: np.ndarray, title: str,
                 count: int = _IMAGES):
    """Images with the true (thin, pale) and predicted (thick) left/down/front axes drawn."""
    from ldlpose.report.drawing import draw_pose

    plt = pyplot()
    count = min(count, len(images))
    fig, axes = plt.subplots(1, count, figsize=(2.2 * count, 2.7), squeeze=False)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.78, wspace=0.05)
    for i in range(count):
        image = np.asarray(images[i], dtype=np.uint8)
        line = max(1, min(image.shape[:2]) // 64)
        drawn = draw_pose(image, true_deg[i], colours=_PALE, width=line)
        drawn = draw_pose(drawn, pred_deg[i], width=2 * line + 1)
        ax = axes[0, i]
        ax.imshow(drawn)
        ax.set_axis_off()
        ax.set_title("pred {:.0f}/{:.0f}/{:.0f}\ntrue {:.0f}/{:.0f}/{:.0f}".format(*pred_deg[i], *true_deg[i]),
                     fontsize=7)
    fig.suptitle(f"{title} (yaw/pitch/roll; thick: predicted, thin pale: true)")
    return fig


def trial_figures(predictor, images: list[np.ndarray], true_deg: np.ndarray, benchmark: str) -> dict:
    """``{file name: figure}`` for one benchmark; ``predictor``: an
    :class:`ldlpose.inference.predictor.PosePredictor`."""
    import torch

    from ldlpose.inference.predictor import preprocess

    batch = preprocess(images, predictor.image_size)
    with torch.no_grad():
        outputs = torch.cat([predictor.outputs(batch[i:i + 64]) for i in range(0, len(batch), 64)])
        pred = predictor.method.decode(outputs).numpy().astype(np.float64)
    true_deg = np.asarray(true_deg, dtype=np.float64)
    figures = {f"{benchmark}_error_vs_angle.png": error_vs_angle(pred, true_deg, f"{benchmark}: error vs angle"),
               f"{benchmark}_pose_samples.png": pose_samples(images, pred, true_deg, benchmark)}
    distributions = label_distributions(predictor.method, outputs, true_deg, f"{benchmark}: label distributions")
    if distributions is not None:
        figures[f"{benchmark}_label_distributions.png"] = distributions
    return figures


def search_figures(study) -> dict:
    """Optuna's parameter importances and parallel coordinates of a study; a plot that the study
    cannot support yet (fewer than two finished trials, one parameter) is left out."""
    import optuna
    from optuna.visualization import matplotlib as optuna_mpl

    plt = pyplot()
    finished = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    figures: dict[str, Any] = {}
    if len(finished) < 2:
        return figures
    for name, plot in (("param_importances.png", optuna_mpl.plot_param_importances),
                       ("parallel_coordinate.png", optuna_mpl.plot_parallel_coordinate)):
        # rc_context: Optuna's plots switch the whole process to ggplot's style, which every figure
        # drawn after them (a confirmation run's, the search's summary) would inherit.
        with warnings.catch_warnings(), plt.rc_context():
            warnings.simplefilter("ignore")  # optuna marks its matplotlib backend experimental
            try:
                ax = plot(study)
            except (ValueError, RuntimeError) as err:  # e.g. importances of a single distribution
                warnings.warn(f"skipped {name}: {err}", stacklevel=2)
                continue
        ax = ax.flat[0] if isinstance(ax, np.ndarray) else ax
        figures[name] = ax.figure
    return figures


def pareto_figure(points: list[dict], x: str, y: str, size: str | None, title: str):
    """Every trial as ``y`` (validation error) against ``x`` (a cost), marker area by ``size``.

    ``points``: ``{"label", "pareto", x, y, size}`` per trial. Front members are filled and joined
    in order of ``x``; the others are hollow, so the trade-off reads along the line.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.8))
    fig.subplots_adjust(left=0.11, right=0.98, bottom=0.12, top=0.9)
    sizes = [p[size] for p in points] if size else [1.0] * len(points)
    biggest = max(sizes) or 1.0
    area = [30 + 400 * s / biggest for s in sizes]  # the smallest model stays visible
    for point, a in zip(points, area):
        front = point["pareto"]
        ax.scatter(point[x], point[y], s=a, alpha=0.8, facecolors="C0" if front else "none",
                   edgecolors="C0" if front else "0.5", linewidths=1.2)
        ax.annotate(point["label"], (point[x], point[y]), fontsize=7, xytext=(4, 4), textcoords="offset points")
    front = sorted((p for p in points if p["pareto"]), key=lambda p: p[x])
    ax.plot([p[x] for p in front], [p[y] for p in front], color="C0", lw=1, ls="--")
    ax.set_xlabel(x.replace("_ms", " (ms)").replace("_m", " (millions)"))
    ax.set_ylabel(f"{y} (deg)")
    ax.set_title(title + (f"; marker area: {size}" if size else ""), fontsize=10)
    return fig


def save_figures(figures: dict, directory: Path) -> list[str]:
    """Write each figure as ``directory/<name>`` and close it; the names written."""
    plt = pyplot()
    directory.mkdir(parents=True, exist_ok=True)
    for name, fig in figures.items():
        fig.savefig(directory / name, dpi=90)
        plt.close(fig)
    return list(figures)
