"""Evaluation runs in MLflow: one run per (model, benchmark, protocol, data hash), and the leaderboard.

``ldlpose evaluate`` logs each score here, whatever the model: a registry model of a search, a
checkpoint, or an external ONNX model. All of them live in one experiment, ``ldlpose-evaluations``,
tagged so that a benchmark's leaderboard is one query::

    ldlpose.role = evaluation
    ldlpose.benchmark, ldlpose.protocol, ldlpose.data_hash      what was measured, on which data
    ldlpose.model, ldlpose.model_kind, ldlpose.model_id         what was measured (as given, kind, identity)
    ldlpose.evaluation_key                                      sha256 of all of the above

Evaluating the same model on the same data again reuses its run (found by the key) and logs the
metrics again, so the leaderboard keeps one line per model and data.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from ldlpose.tracking._common import (
    TAG_ROLE,
    TrackingError,
    _client,
    _log_batch,
    _require_existing_store,
    _sqlite_path,
    require_reachable,
    resolve_tracking_uri,
)

__all__ = ["EXPERIMENT", "leaderboard", "log_evaluation", "registry_model_identity"]

EXPERIMENT = "ldlpose-evaluations"
ROLE = "evaluation"
TAG_BENCHMARK = "ldlpose.benchmark"
TAG_PROTOCOL = "ldlpose.protocol"
TAG_DATA_HASH = "ldlpose.data_hash"
TAG_MODEL = "ldlpose.model"
TAG_MODEL_KIND = "ldlpose.model_kind"
TAG_MODEL_ID = "ldlpose.model_id"
TAG_KEY = "ldlpose.evaluation_key"
MODEL_FIELDS = ("method", "backbone", "image_size")  # logged as params when the model says them


def _experiment(client, uri: str) -> str:
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is not None:
        if experiment.lifecycle_stage != "active":
            raise TrackingError(f"experiment {EXPERIMENT!r} at {uri} is deleted; restore it with "
                                f"mlflow experiments restore --experiment-id {experiment.experiment_id}")
        return experiment.experiment_id
    path = _sqlite_path(uri)
    location = (path.parent / "mlartifacts" / EXPERIMENT).resolve().as_uri() if path is not None else None
    try:
        return client.create_experiment(EXPERIMENT, artifact_location=location)
    except MlflowException:  # created concurrently
        experiment = client.get_experiment_by_name(EXPERIMENT)
        if experiment is None:
            raise
        return experiment.experiment_id


def evaluation_key(model_id: str, benchmark: str, protocol: str, data_hash: str) -> str:
    return hashlib.sha256(json.dumps([model_id, benchmark, protocol, data_hash]).encode()).hexdigest()


def registry_model_identity(model_uri: str, tracking_uri: str | None = None) -> str:
    """A stable identity of a ``models:/`` URI: the logged model id behind a name@alias or
    name/version (which may move), or the URI itself when it names a model id already."""
    uri = resolve_tracking_uri(tracking_uri)
    client = _client(uri)
    body = model_uri[len("models:/"):] if model_uri.startswith("models:/") else model_uri
    try:
        if "@" in body:
            version = client.get_model_version_by_alias(*body.split("@", 1))
        elif "/" in body:
            version = client.get_model_version(*body.split("/", 1))
        else:
            return model_uri
    except Exception:  # an unresolvable URI fails loudly when the model is loaded; keep what was given
        return model_uri
    model_id = getattr(version, "model_id", None)
    return f"models:/{model_id}" if model_id else f"models:/{version.name}/{version.version}"


def log_evaluation(tracking_uri: str | None, result: Mapping, model: Mapping,
                   artifacts: Sequence[Path] = ()) -> str:
    """Log one benchmark result of ``ldlpose.evaluation.harness.evaluate`` for ``model`` (its ``describe()``);
    returns the run id."""
    uri = resolve_tracking_uri(tracking_uri)
    require_reachable(uri)
    client = _client(uri)
    experiment_id = _experiment(client, uri)
    key = evaluation_key(model["id"], result["benchmark"], result["protocol"], result["content_hash"])
    tags = {TAG_ROLE: ROLE, TAG_BENCHMARK: result["benchmark"], TAG_PROTOCOL: result["protocol"],
            TAG_DATA_HASH: result["content_hash"], TAG_MODEL: model["spec"], TAG_MODEL_KIND: model["kind"],
            TAG_MODEL_ID: model["id"], TAG_KEY: key}
    found = client.search_runs([experiment_id], filter_string=f"tags.`{TAG_KEY}` = '{key}'", max_results=1)
    if found:
        run_id = found[0].info.run_id
        params = {}  # params cannot change; the first evaluation logged them
    else:
        run = client.create_run(experiment_id, run_name=f"{result['benchmark']} {Path(model['spec']).name}"[:250])
        run_id = run.info.run_id
        params = {k: model["info"][k] for k in MODEL_FIELDS if model["info"].get(k) is not None}
        params.update({"rows": result["rows"], "protocol": result["protocol"]})
    metrics = {k: float(v) for k, v in result["metrics"].items()}
    _log_batch(client, run_id, metrics=metrics, params=params, tags=tags)
    for path in artifacts:
        client.log_artifact(run_id, str(path))
    # MLflow prints "View run ... at: http://..." to stdout here; stdout is the command's (--json).
    with contextlib.redirect_stdout(sys.stderr):
        client.set_terminated(run_id, "FINISHED")
    return run_id


def leaderboard(tracking_uri: str | None, benchmark: str) -> list[dict]:
    """Every model evaluated on ``benchmark``, best MAE first: model, kind, id, protocol, data hash,
    rows, metrics and the run id."""
    uri = resolve_tracking_uri(tracking_uri)
    _require_existing_store(uri)
    client = _client(uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return []
    runs, token = [], None
    while True:
        page = client.search_runs([experiment.experiment_id], max_results=1000, page_token=token,
                                  filter_string=f"tags.`{TAG_ROLE}` = '{ROLE}' "
                                                f"and tags.`{TAG_BENCHMARK}` = '{benchmark}'")
        runs += page
        token = page.token
        if not token:
            break
    entries = [_entry(run) for run in runs]
    return sorted(entries, key=lambda e: (e["metrics"].get("mae", float("inf")), e["model"]))


def _entry(run) -> dict:
    tags, params = run.data.tags, run.data.params
    return {"model": tags.get(TAG_MODEL), "kind": tags.get(TAG_MODEL_KIND), "model_id": tags.get(TAG_MODEL_ID),
            "protocol": tags.get(TAG_PROTOCOL), "content_hash": tags.get(TAG_DATA_HASH),
            "method": params.get("method"), "backbone": params.get("backbone"),
            "rows": int(params["rows"]) if "rows" in params else None, "metrics": dict(run.data.metrics),
            "run_id": run.info.run_id}
