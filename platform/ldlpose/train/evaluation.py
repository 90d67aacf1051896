"""Scoring a stored checkpoint on the test benchmarks, outside the training workers.

The loop scores the benchmarks itself on the selected weights after its last epoch. Where it could
not (a trial stopped early by ASHA, or a run resumed after its best epoch, whose weights were then
only on storage), the search driver scores the selected checkpoint here, on this process's device.
"""

from __future__ import annotations

import torch

from ldlpose import methods
from ldlpose.config import run_config_from_dict
from ldlpose.metrics import metric_key
from ldlpose.models import build_model
from ldlpose.train.checkpoints import Selected, load_checkpoint
from ldlpose.train.data import benchmark_loaders
from ldlpose.train.loop import evaluate_sets


def score_checkpoint(checkpoint_dir, benchmarks: list[str] | None = None) -> dict[str, float]:
    """``selected_<benchmark>_<metric>`` of a checkpoint on the benchmarks of its run (or ``benchmarks``),
    on the rows and inputs the loop scores (:func:`ldlpose.train.data.benchmark_loaders`)."""
    state = load_checkpoint(checkpoint_dir)
    run = run_config_from_dict(state["run"])
    method = methods.create(run.method.name, **run.method.hparams)
    model = build_model(method, run.model.backbone, "none")
    model.load_state_dict(state["model"])
    loaders = benchmark_loaders(run, benchmarks)
    scores = evaluate_sets(model, method, loaders, torch.device("cpu"), world=1)
    return {f"selected_{k}": v for k, v in scores.items()}


def selected_scores(selected: Selected, last_result: dict, benchmarks: list[str]) -> dict[str, float]:
    """The selected checkpoint's validation scores and test scores, ``{"val_mae": ..., "synth_mae": ...}``.

    The test scores come from the run's last result when the loop scored the same epoch (the usual
    case), else they are computed here from the checkpoint.
    """
    scores = {k: float(v) for k, v in selected.metrics.items() if k.startswith("val_")}
    if last_result.get("selected_epoch") == selected.epoch:
        scores.update({k[len("selected_"):]: float(v) for k, v in last_result.items()
                       if k.startswith("selected_") and not k.startswith("selected_val_")
                       and k != "selected_epoch" and isinstance(v, (int, float))})
    if any(metric_key(b, "mae") not in scores for b in benchmarks):
        scores.update({k[len("selected_"):]: v for k, v in score_checkpoint(selected.path, benchmarks).items()})
    return scores
