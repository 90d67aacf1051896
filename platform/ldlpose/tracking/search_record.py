"""A search as MLflow stores it, read back into plain data: its parent run, every trial and
confirmation run, the model versions it registered and the figures on its parent run.

The search's summary (:mod:`ldlpose.search.story`) and ``ldlpose report`` are computed from this
alone, so they tell the same story for a search that just ended, one resumed after its driver was
killed, and one finished long ago.
"""

from __future__ import annotations

from ldlpose.tracking._common import (
    TAG_PARENT,
    TAG_ROLE,
    TAG_SEARCH,
    TAG_TRIAL,
    TrackingError,
    _check_name,
    _client,
    _require_existing_store,
    redact,
    registered_model_name,
)

__all__ = ["read_search"]

PLOTS = "plots"  # the parent run's figures, as log_search_plots and log_search_summary write them


def read_search(uri: str, search_name: str, *, figures: bool = True) -> dict:
    """``{"uri", "experiment_id", "parent", "runs", "versions", "figures"}`` of the search ``search_name``.

    ``parent`` and each of ``runs`` (the child runs, oldest first): ``run_id``, ``name``, ``status``,
    ``role``, ``trial_id``, ``params``, ``tags``, ``metrics`` (latest values), ``start_ms``,
    ``end_ms``. ``versions``: the registered versions whose ``search_id`` tag names this search
    (``model``, ``version``, ``aliases``, ``tags``). ``figures``: file name -> PNG bytes of the
    parent run's ``plots/``.
    """
    _check_name("search name", search_name)
    _require_existing_store(uri)
    client = _client(uri)
    experiment = client.get_experiment_by_name(search_name)
    if experiment is None:
        known = sorted(e.name for e in client.search_experiments() if e.tags.get(TAG_SEARCH))
        raise TrackingError(f"no search named {search_name!r} at {redact(uri)}; the searches there: "
                            f"{', '.join(known) or 'none'} (pass the name, or the search-space YAML, of one)")
    runs = _all_runs(client, experiment.experiment_id, f"tags.`{TAG_SEARCH}` = '{search_name}'")
    parents = [r for r in runs if r.data.tags.get(TAG_ROLE) == "search"]
    if not parents:
        raise TrackingError(f"experiment {search_name!r} at {redact(uri)} holds no search run "
                            f"(tag {TAG_ROLE} = search); was it written by ldlpose search?")
    parent = parents[0]
    children = [r for r in runs if r.data.tags.get(TAG_PARENT) == parent.info.run_id]
    benchmarks = sorted({k.split(".", 2)[2] for r in children for k in r.data.tags
                         if k.startswith("ldlpose.protocol.")})
    return {"uri": redact(uri), "experiment_id": experiment.experiment_id, "parent": _run(parent),
            "runs": [_run(r) for r in children], "versions": _versions(client, search_name, benchmarks),
            "figures": _figures(client, parent.info.run_id) if figures else {}}


def _all_runs(client, experiment_id: str, filter_string: str) -> list:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], filter_string=filter_string, max_results=1000,
                                  order_by=["attributes.start_time ASC"], page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _run(run) -> dict:
    tags = dict(run.data.tags)
    return {"run_id": run.info.run_id, "name": run.info.run_name, "status": run.info.status,
            "role": tags.get(TAG_ROLE), "trial_id": tags.get(TAG_TRIAL), "params": dict(run.data.params),
            "tags": tags, "metrics": dict(run.data.metrics), "start_ms": run.info.start_time,
            "end_ms": run.info.end_time}


def _versions(client, search_name: str, benchmarks: list[str]) -> list[dict]:
    """The registered versions this search made (one registered model per benchmark)."""
    from mlflow.exceptions import MlflowException

    found = []
    for benchmark in benchmarks:
        name = registered_model_name(benchmark)
        try:
            versions = client.search_model_versions(f"name = '{name}'")
        except MlflowException:  # nothing registered under this name yet
            continue
        for version in versions:
            if version.tags.get("search_id") != search_name:
                continue
            full = client.get_model_version(name, version.version)  # a search's listing leaves aliases out
            found.append({"model": name, "version": str(version.version), "aliases": sorted(full.aliases or []),
                          "tags": dict(version.tags)})
    return sorted(found, key=lambda v: (v["model"], int(v["version"])))


def _figures(client, run_id: str) -> dict[str, bytes]:
    import os
    import tempfile
    from pathlib import Path

    from ldlpose.infra.environment import temporarily

    if not [item for item in client.list_artifacts(run_id, PLOTS) if item.path.endswith(".png")]:
        return {}
    progress = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # quiet unless asked
    with tempfile.TemporaryDirectory() as tmp, temporarily(MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=progress):
        local = Path(client.download_artifacts(run_id, PLOTS, tmp))
        return {file.name: file.read_bytes() for file in sorted(local.glob("*.png"))}
