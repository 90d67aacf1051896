"""Evaluation runs in MLflow: one run per (model, benchmark, protocol, data hash), and the leaderboard.

``ldlpose evaluate`` logs each score here, whatever the model: a registry model of a search, a
checkpoint, or an external ONNX model. All of them live in one experiment, ``ldlpose-evaluations``,
tagged so that a benchmark's leaderboard is one query::

    ldlpose.role = evaluation
    ldlpose.benchmark, ldlpose.protocol, ldlpose.data_hash      what was measured, on which data
    ldlpose.model, ldlpose.model_kind, ldlpose.model_id         what was measured (as given, kind, identity)
    ldlpose.evaluation_key                                      sha256 of all of the above

Evaluating the same model on the same data again reuses its run (found by the key) and logs the
metrics again, so the leaderboard keeps one line per model and data. The leaderboard also lists the
registered versions of ``headpose-<benchmark>`` with the test scores their searches measured (version
tags), ranked with the evaluations of the same protocol and data hash (:func:`leaderboard`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from ldlpose.selection.rules import tag_number as _number
from ldlpose.tracking._common import (
    TAG_ROLE,
    _client,
    _experiment_id,
    _log_batch,
    _require_existing_store,
    _sqlite_path,
    registered_model_name,
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
    path = _sqlite_path(uri)
    location = (path.parent / "mlartifacts" / EXPERIMENT).resolve().as_uri() if path is not None else None
    return _experiment_id(client, uri, EXPERIMENT, location)


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
    if model_id:
        return f"models:/{model_id}"
    # MLflow's SQL registry leaves model_id empty on a version made from a logged model; its source names it.
    source = str(getattr(version, "source", "") or "")
    return source if source.startswith("models:/m-") else f"models:/{version.name}/{version.version}"


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
    """Every score on ``benchmark``: models measured by ``ldlpose evaluate`` (``source`` ``evaluate``)
    and the registered versions of ``headpose-<benchmark>`` with the test scores their search or
    training run measured (``source`` ``search``).

    Each entry has model, kind, id, protocol, data hash, rows, metrics, run id, and ``group`` and
    ``rank``: entries are ranked (best MAE first) only within a group of one protocol and one data
    hash, since scores on other rows or under another protocol do not compare; groups are numbered
    largest first. A version that ``ldlpose evaluate`` also measured on the same data is listed
    once, as the evaluation, with its version added.
    """
    uri = resolve_tracking_uri(tracking_uri)
    _require_existing_store(uri)
    client = _client(uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = [] if experiment is None else _evaluation_runs(client, experiment.experiment_id, benchmark)
    entries = [{**_entry(run), "source": "evaluate"} for run in runs]
    measured = {(e["model_id"], e["protocol"], e["content_hash"]): e for e in entries}
    for version in _version_entries(client, benchmark):
        data = (version["protocol"], version["content_hash"])
        # by the logged model behind the version, or by name/version (what older evaluations recorded)
        twin = measured.get((version["model_id"], *data)) or measured.get((version["model"], *data))
        if twin is None:
            entries.append(version)
        else:
            twin["version"] = version["version"]
    return _ranked(entries)


def _evaluation_runs(client, experiment_id: str, benchmark: str) -> list:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], max_results=1000, page_token=token,
                                  filter_string=f"tags.`{TAG_ROLE}` = '{ROLE}' "
                                                f"and tags.`{TAG_BENCHMARK}` = '{benchmark}'")
        runs += page
        token = page.token
        if not token:
            return runs


def _ranked(entries: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for entry in entries:
        groups.setdefault((entry["protocol"] or "", entry["content_hash"] or ""), []).append(entry)
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
    ranked = []
    for number, (_, members) in enumerate(ordered, 1):
        members.sort(key=lambda e: (e["metrics"].get("mae", float("inf")), str(e["model"])))
        ranked += [{**e, "group": number, "rank": rank} for rank, e in enumerate(members, 1)]
    return ranked


def _entry(run) -> dict:
    tags, params = run.data.tags, run.data.params
    return {"model": tags.get(TAG_MODEL), "kind": tags.get(TAG_MODEL_KIND), "model_id": tags.get(TAG_MODEL_ID),
            "protocol": tags.get(TAG_PROTOCOL), "content_hash": tags.get(TAG_DATA_HASH),
            "method": params.get("method"), "backbone": params.get("backbone"),
            "rows": int(params["rows"]) if "rows" in params else None, "metrics": dict(run.data.metrics),
            "run_id": run.info.run_id}


def _version_entries(client, benchmark: str) -> list[dict]:
    """The registered versions of ``headpose-<benchmark>`` that carry test scores (version tags
    ``test.<metric>`` and ``test.data.*``, written at registration; docs/tracking.md)."""
    from mlflow.exceptions import MlflowException

    name = registered_model_name(benchmark)
    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException:  # no such registered model
        return []
    entries = []
    for version in versions:
        tags = dict(version.tags)
        metrics = {k[len("test."):]: float(v) for k, v in tags.items()
                   if k.startswith("test.") and not k.startswith("test.data.") and _number(v) is not None}
        if not metrics:
            continue
        rows = _number(tags.get("test.data.rows"))
        entries.append({"model": f"models:/{name}/{version.version}", "kind": "search",
                        "model_id": tags.get("model_uri"), "protocol": tags.get("test.data.protocol"),
                        "content_hash": tags.get("test.data.content_hash"), "method": tags.get("method") or None,
                        "backbone": tags.get("backbone") or None,
                        "rows": _scored_rows(client, tags.get("run_id"), None if rows is None else int(rows)),
                        "metrics": metrics, "run_id": tags.get("run_id"), "source": "search",
                        "version": str(version.version), "search_id": tags.get("search_id"),
                        "trial_id": tags.get("trial_id")})
    return entries


def _scored_rows(client, run_id: str | None, stored: int | None) -> int | None:
    """The test rows a trial scored: all stored rows unless its run config cut them
    (``data.max_eval_samples``, a parameter of its run)."""
    if not run_id or stored is None:
        return stored
    from mlflow.exceptions import MlflowException

    try:
        cap = _number(client.get_run(run_id).data.params.get("data.max_eval_samples"))
    except MlflowException:  # the run was deleted; the version keeps its tags
        return stored
    return stored if cap is None else min(stored, int(cap))
