"""What a selected model records about how it was chosen and what it was measured on, written the
same way by a search and by ``ldlpose train``: the trial run's identity tags and the registration
entry that the registry files a version under.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["SELECTION_TAG", "identity_tags", "registration_entry", "selection", "selection_tags"]

SELECTION_TAG = "ldlpose.selection"  # .split, .rows, .content_hash: the validation rows that judged a run


def identity_tags(identities: Mapping[str, Mapping]) -> dict[str, str]:
    """``ldlpose.protocol.<benchmark>`` and ``ldlpose.data_hash.<benchmark>``: what the test scores were
    measured on (``identities``: ``RunData.benchmark_identities()``)."""
    tags = {}
    for name, identity in identities.items():
        tags[f"ldlpose.protocol.{name}"] = str(identity["protocol"])
        tags[f"ldlpose.data_hash.{name}"] = str(identity["content_hash"])
    return tags


def selection_tags(split: Mapping) -> dict[str, str]:
    """The identity of the validation rows a run was judged on (``split``: ``RunData.validation_split()``),
    recorded when it is finalised, so that registration files the model under the rows it was
    measured on, never under ones recomputed later."""
    return {f"{SELECTION_TAG}.{key}": str(split[field])
            for key, field in (("split", "name"), ("rows", "rows"), ("content_hash", "content_hash"))}


def selection(metric: str, value: float, split: Mapping) -> dict:
    """The selection a registered version records: the metric that chose it, its value, and the rows."""
    return {"metric": metric, "value": value, "split": split["name"], "rows": split["rows"],
            "content_hash": split["content_hash"]}


def registration_entry(candidate: Mapping, chosen_by: Mapping, identities: Mapping[str, Mapping],
                       confirmation: Mapping | None = None) -> dict:
    """What the registry takes for one chosen run: the candidate (``trial_id``, ``run_id``, ``model_uri``,
    ``method``, ``backbone``, ``selected_epoch``, ``scores``), its ``selection`` (:func:`selection`), the
    benchmarks' data identities and, after a confirmation, its seed statistics."""
    entry = {**candidate, "selection": dict(chosen_by), "benchmark_data": dict(identities)}
    if confirmation is not None:
        entry["confirmation"] = dict(confirmation)
    return entry
