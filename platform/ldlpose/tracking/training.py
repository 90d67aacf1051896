"""``ldlpose train`` in MLflow: a training run tracked like a search trial, and registered on request.

The run gets an experiment of its own name with a parent run (its config and data manifests) and one
child run (role ``train``) holding the params by run-config key, every epoch's metrics, the selected
checkpoint's validation and test scores, and the selected checkpoint as a model. ``register``
registers that model under the same champion rule as a search (validation rows must match).
"""

from __future__ import annotations

from pathlib import Path

from ldlpose.config import RunConfig
from ldlpose.infra.files import sha256_file
from ldlpose.train.checkpoints import CHECKPOINT_FILE, load_checkpoint
from ldlpose.train.data import benchmark_identities, run_manifests
from ldlpose.train.evaluation import selected_scores
from ldlpose.train.run import TrainOutcome


def record_training(uri: str, run: RunConfig, outcome: TrainOutcome, name: str, config_text: str, *,
                    register: bool = False) -> dict:
    """Track a finished training run in MLflow; ``{"run_id", "model_uri", "scores", "champions", "experiment_id"}``."""
    from ldlpose import tracking
    from ldlpose.train.data import validation_split

    if outcome.selected is None:
        raise tracking.TrackingError(f"training run {name!r} left no checkpoint to track")
    tracker = tracking.SearchTracker(uri, name)
    manifests = run_manifests(run)
    tracker.start(config_text, {"run": run.to_dict()}, "none", run.train.seed, manifests)
    params = run.to_dict()
    params.pop("resources", None)
    run_id = tracker.trial_started(name, params, role="train")
    for metrics in load_checkpoint(outcome.checkpoint_path)["history"]:  # a path or a storage URI
        tracker.trial_result(name, metrics, int(metrics["epoch"]))
    selected = outcome.selected
    model_uri = tracker.log_trial_model(name, selected.path)
    scores = selected_scores(selected, outcome.metrics, run.data.benchmarks)
    identities = benchmark_identities(run)
    tags = {f"ldlpose.{k}.{b}": v for b, ident in identities.items()
            for k, v in (("protocol", ident["protocol"]), ("data_hash", ident["content_hash"]))}
    tracker.trial_selected(name, selected.epoch, scores, sha256_file(Path(selected.path) / CHECKPOINT_FILE), tags)
    tracker.trial_finished(name, "FINISHED", outcome.metrics, None, outcome.metrics.get("node_id"),
                           outcome.metrics.get("device"))
    champions = {}
    if register:
        split = validation_split(run)
        metric = run.train.select_metric
        best = {"trial_id": name, "run_id": run_id, "model_uri": model_uri, "method": run.method.name,
                "backbone": run.model.backbone, "selected_epoch": selected.epoch, "scores": scores,
                "selection": {"metric": metric, "value": scores[metric], "split": split["name"],
                              "rows": split["rows"], "content_hash": split["content_hash"]},
                "benchmark_data": identities}
        champions = tracking.register_champions(uri, name, best, run.data.benchmarks)
    tracker.finish("FINISHED")
    return {"run_id": run_id, "model_uri": model_uri, "scores": scores, "champions": champions,
            "experiment_id": tracker.experiment_id}
