"""Registered models ``headpose-<benchmark>`` and their ``champion`` alias (:func:`register_champions`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from ldlpose.tracking._common import (
    CHAMPION, TrackingError, _client, _git, _require_existing_store, registered_model_name,
)

# Tests set this to interleave two registrations at the worst moment: called with
# (model name, version about to become champion, attempt) just before each alias write.
_before_alias_write: Callable[[str, str, int], None] | None = None
_SETTLE_ATTEMPTS = 50


def _scored_versions(client, name: str) -> dict[str, float]:
    """Version -> MAE of every version of ``name`` that carries a numeric ``mae`` tag."""
    scored = {}
    for version in client.search_model_versions(f"name = '{name}'"):
        try:
            mae = float(version.tags.get("mae", "nan"))
        except ValueError:
            continue
        if math.isfinite(mae):
            scored[str(version.version)] = mae
    return scored


def _champion_version(client, name: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:  # no alias yet
        return None


def _settle_champion(client, name: str) -> str:
    """Point ``champion`` at the lowest-MAE version and return it, once a read confirms it.

    Why this is right with concurrent searches, whose alias writes are last-writer-wins: every
    registrant creates its version (``mae`` tag included, in the same request) *before* its first
    read here, and returns only after a read in which the alias already equals the best version it
    sees. Take the last alias write W overall, by registrant P. After W, P reads again: no write
    follows W, so P saw alias == best of every version created so far, or it would have written
    again. A version created later belongs to a registrant Q that reads after creating it; no write
    follows W, so Q too saw alias == best including its version. Hence the final alias is the
    best of all versions, whoever finishes last. Ties keep the older version (the champion is
    replaced only by a strictly lower MAE). Views only grow, so the loop ends.
    """
    for attempt in range(_SETTLE_ATTEMPTS):
        scored = _scored_versions(client, name)
        best = min(scored, key=lambda v: (scored[v], int(v)))
        if _champion_version(client, name) == best:
            return best
        if _before_alias_write is not None:
            _before_alias_write(name, best, attempt)
        client.set_registered_model_alias(name, CHAMPION, best)
    raise TrackingError(f"alias {CHAMPION!r} of {name} did not settle after {_SETTLE_ATTEMPTS} attempts; "
                        "are many searches registering at once? Run the registration again")


def _ensure_registered_model(client, name: str, benchmark: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name, tags={"benchmark": benchmark}, description=(
            f"Head pose on {benchmark}: RGB face crop -> yaw/pitch/roll degrees. Alias '{CHAMPION}' "
            "is the version with the lowest MAE (tag 'mae')."))
    except MlflowException as err:
        if err.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise


def _version_for(client, name: str, trial: Mapping, benchmark: str, mae: float, search_name: str) -> str:
    """The version of this trial's model, created unless an earlier registration made it."""
    for version in client.search_model_versions(f"name = '{name}'"):
        if (version.tags.get("search_id") == search_name and version.tags.get("trial_id") == str(trial["trial_id"])
                and version.tags.get("model_uri") == trial["model_uri"]):
            return str(version.version)
    model_uri = trial["model_uri"]
    model_id = model_uri[len("models:/"):] if model_uri.startswith("models:/m-") else None
    tags = {"search_id": search_name, "trial_id": str(trial["trial_id"]), "benchmark": benchmark,
            "mae": repr(mae), "method": str(trial.get("method", "")),
            "backbone": str(trial.get("backbone", "")), "run_id": str(trial.get("run_id", "")),
            "model_uri": model_uri}
    commit = _git(["rev-parse", "HEAD"])
    if commit:
        tags["git_sha"] = commit
    version = client.create_model_version(name, source=model_uri, run_id=trial.get("run_id"), tags=tags,
                                          model_id=model_id)
    return str(version.version)


def register_champions(uri: str, search_name: str, results: list[Mapping],
                       benchmarks: list[str]) -> dict[str, dict]:
    """Register each benchmark's best trial as a version of ``headpose-<benchmark>``; move ``champion``.

    ``results``: one dict per finished trial with a logged model: ``trial_id``, ``run_id``,
    ``model_uri`` (from :meth:`SearchTracker.log_trial_model`), ``method``, ``backbone`` and
    ``metrics``: ``{benchmark: mae}`` (or a flat result holding ``<benchmark>_mae``, e.g. ``synth_mae``). Returns ``{benchmark: {"model", "version", "mae", "champion",
    "moved"}}`` for every benchmark some trial has a finite MAE on; ``moved`` says whether this
    version became the champion. Registering the same trial again adds no version.
    """
    client = _client(uri)
    outcome = {}
    for benchmark in benchmarks:
        scored = []
        for trial in results:
            mae = _benchmark_mae(trial.get("metrics", {}), benchmark)
            if trial.get("model_uri") and mae is not None:
                scored.append((mae, trial))
        if not scored:
            continue
        mae, best = min(scored, key=lambda pair: pair[0])
        name = registered_model_name(benchmark)
        _ensure_registered_model(client, name, benchmark)
        version = _version_for(client, name, best, benchmark, mae, search_name)
        before = _champion_version(client, name)
        champion = _settle_champion(client, name)
        outcome[benchmark] = {"model": name, "version": version, "mae": mae, "champion": champion,
                              "moved": champion == version and before != version}
    return outcome


def _benchmark_mae(metrics: Mapping, benchmark: str) -> float | None:
    """``metrics[benchmark]``, or the reported ``<benchmark>_mae`` of a flat Ray result."""
    from ldlpose.report import metric_key

    value = metrics.get(benchmark, metrics.get(metric_key(benchmark, "mae")))
    return float(value) if _finite(value) else None


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def list_champions(uri: str) -> list[dict]:
    """The ``champion`` of every ``headpose-*`` registered model, by benchmark."""
    _require_existing_store(uri)
    client = _client(uri)
    rows = []
    for model in client.search_registered_models("name LIKE 'headpose-%'"):
        version = _champion_version(client, model.name)
        if version is None:
            continue
        tags = client.get_model_version(model.name, version).tags
        rows.append({"benchmark": tags.get("benchmark", model.name[len("headpose-"):]), "model": model.name,
                     "version": version, "mae": float(tags["mae"]) if _finite(tags.get("mae")) else None,
                     "method": tags.get("method"), "backbone": tags.get("backbone"),
                     "run_id": tags.get("run_id"), "search_id": tags.get("search_id"),
                     "trial_id": tags.get("trial_id"), "uri": f"models:/{model.name}@{CHAMPION}"})
    return sorted(rows, key=lambda r: r["benchmark"])
