"""``ldlpose train``'s record: a training run tracked like a search trial, and registered on request.

The run gets an experiment of its own name with a parent run (its config and data manifests) and one
child run (role ``train``) holding the params by run-config key, every epoch's metrics, the selected
checkpoint's validation and test scores, and the selected checkpoint as a model. ``register``
registers that model under the same champion rule as a search (validation rows must match).

It speaks to the tracking seam (:class:`ldlpose.tracking.seam.Tracker`) only, and writes the same
identity tags and registration entry as a search (:mod:`ldlpose.selection.entry`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ldlpose.tracking._common import TrackingError
from ldlpose.tracking.seam import Tracker

if TYPE_CHECKING:
    from ldlpose.config import RunConfig
    from ldlpose.data.identity import RunData
    from ldlpose.train.run import TrainOutcome


def record_training(tracker: Tracker, run: RunConfig, outcome: TrainOutcome, name: str, config_text: str, *,
                    data: RunData, register: bool = False) -> dict:
    """Track a finished training run; ``{"run_id", "model_uri", "scores", "champions", "experiment_id"}``."""
    from ldlpose.infra.files import sha256_file
    from ldlpose.selection.entry import identity_tags, registration_entry, selection
    from ldlpose.train.checkpoints import CHECKPOINT_FILE, load_checkpoint
    from ldlpose.train.evaluation import selected_scores

    selected = outcome.selected
    if selected is None:
        raise TrackingError(f"training run {name!r} left no checkpoint to track")
    tracker.start_experiment(config_text, {"run": run.to_dict()}, "none", run.train.seed, data.manifests())
    params = run.to_dict()
    params.pop("resources", None)
    run_id = tracker.start_run(name, params, role="train")
    for metrics in load_checkpoint(outcome.checkpoint_path)["history"]:  # a path or a storage URI
        tracker.log_metrics(name, metrics, int(metrics["epoch"]))
    model_uri = tracker.log_model(name, selected.path)
    scores = selected_scores(selected, outcome.metrics, run.data.benchmarks)
    identities = data.benchmark_identities()
    tracker.record_selection(name, selected.epoch, scores, sha256_file(Path(selected.path) / CHECKPOINT_FILE),
                             identity_tags(identities))
    tracker.end_run(name, "FINISHED", outcome.metrics, None, outcome.metrics.get("node_id"),
                    outcome.metrics.get("device"))
    champions = {}
    if register:
        metric = run.train.select_metric
        candidate = {"trial_id": name, "run_id": run_id, "model_uri": model_uri, "method": run.method.name,
                     "backbone": run.model.backbone, "selected_epoch": selected.epoch, "scores": scores}
        chosen_by = selection(metric, scores[metric], data.validation_split())
        champions = tracker.register(registration_entry(candidate, chosen_by, identities), run.data.benchmarks)
    tracker.finish("FINISHED")
    return {"run_id": run_id, "model_uri": model_uri, "scores": scores, "champions": champions,
            "experiment_id": tracker.experiment_id}
