"""Registered models ``headpose-<benchmark>`` and their aliases, one per champion rule (:func:`register_champions`).

``champion`` is always the best version under rule ``validation``; a search under another rule
moves that rule's own alias (:func:`ldlpose.selection.rules.alias_of`), deciding among the
versions registered under the same rule only. Two rules never fight over one alias, and concurrent
registrations under different rules never see each other's writes.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator, Mapping

from ldlpose.infra import trace
from ldlpose.selection.champion import (
    TAG_PARETO,
    TAG_SELECTION_METRIC,
    TAG_SELECTION_VALUE,
    TAG_SPLIT_HASH,
    ChampionRuleError,
    champion_target,
    checked_rule,
    same_split,
)
from ldlpose.selection.rules import FIXED_RULES, Rule, RuleError, alias_of
from ldlpose.selection.rules import tag_number as _number
from ldlpose.tracking._common import (
    CHAMPION,
    TrackingError,
    _client,
    _git,
    _global_uri,
    _require_existing_store,
    _short,
    redact,
    registered_model_name,
)

# Tests set this to interleave two registrations at the worst moment: called with
# (model name, version about to become champion, attempt) just before each alias write.
_before_alias_write: Callable[[str, str, int], None] | None = None
_SETTLE_ATTEMPTS = 50


RULES = FIXED_RULES  # and any "min <metric> where ..." rule (ldlpose.selection.rules)
__all__ = ["RULES", "TAG_PARETO", "TAG_SELECTION_METRIC", "TAG_SELECTION_VALUE", "TAG_SPLIT_HASH", "RegistrationError",
           "champion_target", "list_champions", "register_champions", "register_front"]


class RegistrationError(TrackingError):
    """MLflow refused a registration, or failed during one; the search's runs and models are kept,
    and registering again (``ldlpose search --resume``) adds no second version."""


@contextlib.contextmanager
def _registering(uri: str, name: str) -> Iterator[None]:
    """Any error while registering ``name`` as one line naming the model and the tracking URI."""
    try:
        yield
    except RegistrationError:
        raise
    except Exception as err:  # MlflowException, a refused or dropped connection, a TrackingError
        # MLflow's messages quote the request URL, password included: the error is printed and tagged.
        message = re.sub(r"(://[^/\s:@]+):[^/\s@]+@", r"\1:***@", _short(err))
        raise RegistrationError(f"registering {name} in {redact(uri)} failed: {message}") from err


def _versions(client, name: str, alias: str | None = None) -> dict[str, dict]:
    """Version -> its tags, for every version of ``name`` (registered under the rule of ``alias``, if given)."""
    everything = {str(v.version): dict(v.tags) for v in client.search_model_versions(f"name = '{name}'")}
    if alias is None:
        return everything
    return {v: tags for v, tags in everything.items() if _alias_of_tag(tags.get("champion_rule")) == alias}


def _alias_of_tag(rule: str | None) -> str | None:
    """The alias of the rule a version was registered under (versions from before the tag: ``validation``)."""
    try:
        return alias_of(rule or "validation")
    except RuleError:
        return None  # a rule this version of ldlpose cannot read names no alias it moves


def _parsed(rule: str) -> str | Rule:
    try:
        return checked_rule(rule)
    except ChampionRuleError as err:  # the registry's callers catch TrackingError
        raise TrackingError(str(err)) from None


def _champion_version(client, name: str, alias: str = CHAMPION) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:  # no alias yet
        return None


def _settle_champion(client, name: str, own: str, rule: str) -> str | None:
    """Point the rule's alias at :func:`champion_target` over the rule's versions; return it once a read confirms it.

    Why this is right with concurrent searches, whose alias writes are last-writer-wins: every
    registrant creates its version (tags included, in the same request) *before* its first read
    here, and returns only after a read in which the alias already equals the target it computes.
    Take the last alias write W overall, by registrant P. After W, P reads again: no write follows
    W, so P saw alias == target over every version created so far, or it would have written again.
    A version created later belongs to a registrant Q that reads after creating it; no write follows
    W, so Q too saw alias == target including its version. Hence the final alias is the target of
    all versions, whoever finishes last. (The target depends on the current champion only through
    its validation split, which the alias never leaves under the validation rule, and the protocol
    that decides is a function of the versions alone.) Views only grow, so the loop ends.
    """
    from mlflow.exceptions import MlflowException

    alias = alias_of(rule)
    for attempt in range(_SETTLE_ATTEMPTS):
        current = _champion_version(client, name, alias)
        best = champion_target(_versions(client, name, alias), current, own, rule)
        if current == best:
            return best
        assert best is not None  # champion_target gives None only when there is no champion (current None)
        if _before_alias_write is not None:
            _before_alias_write(name, best, attempt)
        try:
            client.set_registered_model_alias(name, alias, best)
        except MlflowException:
            # MLflow's SQL store checks for the alias row, then inserts it: two first writes at the
            # same instant collide on PostgreSQL's unique key. The loser's write counts as never
            # made (the argument above holds), and it re-reads; anything else is a real refusal.
            if _champion_version(client, name, alias) is None:
                raise
    raise TrackingError(f"alias {alias!r} of {name} did not settle after {_SETTLE_ATTEMPTS} attempts; "
                        "are many searches registering at once? Run the registration again")


def _ensure_registered_model(client, name: str, benchmark: str, rule: str) -> None:
    """Create ``name`` if needed; say in its description and a tag which rule chooses each alias."""
    from mlflow.exceptions import MlflowException

    description = (
        f"Head pose on {benchmark}: RGB face crop -> yaw/pitch/roll degrees. Each alias is the best version "
        f"under one champion rule, chosen among the versions registered under that rule. Alias '{CHAMPION}': rule "
        "'validation', the lowest validation objective (tag 'selection.value') among versions selected on the "
        "same validation rows (tag 'selection.content_hash'); test benchmarks never choose it. Alias "
        f"'{CHAMPION}-<rule>': the rule of that name (search.champion.rule), e.g. '{alias_of('benchmark')}' for "
        "rule 'benchmark' (the lowest test MAE, tag 'mae'); tag 'alias.<alias>' on this model holds each rule "
        "as written, and tag 'champion_rule' on each version the rule it was registered under.")
    try:
        client.create_registered_model(name, tags={"benchmark": benchmark}, description=description)
    except MlflowException as err:
        if err.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise
        if client.get_registered_model(name).description != description:  # made by an older ldlpose
            client.update_registered_model(name, description=description)
    client.set_registered_model_tag(name, f"alias.{alias_of(rule)}", rule)


def _version_tags(best: Mapping, benchmark: str, search_name: str, rule: str) -> dict[str, str]:
    """Everything a version records: where it came from, what selected it, its validation and test scores."""
    from ldlpose.metrics import metric_key

    selection = best.get("selection", {})
    scores = best.get("scores", {})
    tags = {"search_id": search_name, "trial_id": str(best["trial_id"]), "run_id": str(best.get("run_id", "")),
            "model_uri": best["model_uri"], "benchmark": benchmark, "method": str(best.get("method", "")),
            "backbone": str(best.get("backbone", "")), "selected_epoch": str(best.get("selected_epoch", "")),
            "champion_rule": rule}
    for key in ("metric", "value", "split", "rows", "content_hash"):
        if key in selection:
            value = selection[key]
            tags[f"selection.{key}"] = repr(value) if isinstance(value, float) else str(value)
    prefix = metric_key(benchmark, "")
    for key, value in scores.items():
        if key.startswith("val_") and _number(value) is not None:
            tags[key.replace("val_", "val.", 1)] = repr(float(value))
        elif key.startswith(prefix) and _number(value) is not None:
            tags[f"test.{key[len(prefix):]}"] = repr(float(value))
    if "test.mae" in tags:
        tags["mae"] = tags["test.mae"]  # the benchmark's test MAE, reported (chooses only under rule 'benchmark')
    for key, value in best.get("benchmark_data", {}).get(benchmark, {}).items():
        tags[f"test.data.{key}"] = str(value)
    for key, value in best.get("profile", {}).items():  # the costs of a multi-objective search
        tags[f"profile.{key}"] = repr(float(value)) if isinstance(value, float) else str(value)
    if best.get("pareto"):
        tags[TAG_PARETO] = "true"
        tags["pareto.objectives"] = ",".join(best["pareto"])
    for key, value in best.get("confirmation", {}).items():
        tags[f"confirmation.{key}"] = repr(value) if isinstance(value, float) else str(value)
    commit = _git(["rev-parse", "HEAD"])
    if commit:
        tags["git_sha"] = commit
    return tags


def _version_for(client, uri: str, name: str, best: Mapping, tags: Mapping[str, str]) -> str:
    """The version of this trial's model, created unless an earlier registration made it."""
    for number, old in _versions(client, name).items():
        if (old.get("search_id") == tags["search_id"] and old.get("trial_id") == tags["trial_id"]
                and old.get("model_uri") == tags["model_uri"]):
            return number
    model_uri = best["model_uri"]
    model_id = model_uri[len("models:/"):] if model_uri.startswith("models:/m-") else None
    # MLflow's SQL registry looks the logged model up through the *global* tracking URI: point it
    # at this store for the call, or it would open (and create) ./mlflow.db instead.
    with _global_uri(uri):
        version = client.create_model_version(name, source=model_uri, run_id=best.get("run_id"), tags=dict(tags),
                                              model_id=model_id)
    return str(version.version)


def register_champions(uri: str, search_name: str, best: Mapping, benchmarks: list[str], *,
                       rule: str = "validation") -> dict[str, dict]:
    """Register a search's chosen trial as a version of ``headpose-<benchmark>`` per benchmark; move ``champion``.

    ``best`` is the trial the search chose on validation data: ``trial_id``, ``run_id``, ``model_uri``
    (from :meth:`SearchTracker.log_trial_model`), ``method``, ``backbone``, ``selected_epoch``,
    ``selection`` (``metric``, ``value``, ``split``, ``rows``, ``content_hash`` of the validation rows),
    ``scores`` (the selected checkpoint's ``val_*`` and ``<benchmark>_*`` metrics), and optionally
    ``benchmark_data`` (``{benchmark: {content_hash, rows, ...}}``) and ``confirmation`` (seed statistics).
    ``rule``: see :func:`champion_target`; it moves its own alias (:func:`alias_of`). Returns
    ``{benchmark: {"model", "version", "mae", "alias", "champion", "moved", "comparable"}}``;
    registering the same trial again adds no version. Raises :class:`RegistrationError` naming the
    model and the tracking URI when MLflow refuses or fails.
    """
    _parsed(rule)
    client, alias = _client(uri), alias_of(rule)
    outcome, started = {}, time.time()
    for benchmark in benchmarks:
        name = registered_model_name(benchmark)
        with _registering(uri, name):
            _ensure_registered_model(client, name, benchmark, rule)
            tags = _version_tags(best, benchmark, search_name, rule)
            version = _version_for(client, uri, name, best, tags)
            before = _champion_version(client, name, alias)
            champion = _settle_champion(client, name, version, rule)
            versions = _versions(client, name)
        comparable = rule == "benchmark" or same_split(versions, champion, version)
        outcome[benchmark] = {"model": name, "version": version, "mae": _number(tags.get("mae")), "alias": alias,
                              "champion": champion, "moved": champion == version and before != version,
                              "comparable": comparable}
    trace.mark("register.champions", search_name, started, time.time())  # bench/control_plane.py
    return outcome


def register_front(uri: str, search_name: str, members: list[Mapping], benchmarks: list[str], *,
                   rule: str = "validation") -> dict[str, dict]:
    """Register every member of a search's Pareto front as a version per benchmark; move ``champion`` once.

    Each member is what :func:`register_champions` takes as ``best``, plus ``profile`` (its costs)
    and ``pareto`` (the objectives' names); its versions are tagged ``ldlpose.pareto = true``.
    Returns ``{benchmark: {"model", "versions": {trial id: version}, "champion", "moved", "comparable"}}``;
    ``champion`` is None when no version meets the rule. Registering again adds no versions.
    """
    _parsed(rule)
    if not members:
        return {}
    client, alias = _client(uri), alias_of(rule)
    outcome = {}
    for benchmark in benchmarks:
        name = registered_model_name(benchmark)
        with _registering(uri, name):
            _ensure_registered_model(client, name, benchmark, rule)
            versions = {str(m["trial_id"]): _version_for(client, uri, name, m,
                                                         _version_tags(m, benchmark, search_name, rule))
                        for m in members}
            before = _champion_version(client, name, alias)
            champion = _settle_champion(client, name, next(iter(versions.values())), rule)
            everything = _versions(client, name)
        outcome[benchmark] = {"model": name, "versions": versions, "champion": champion, "alias": alias,
                              "moved": champion in versions.values() and before != champion,
                              "comparable": champion is None or same_split(everything, champion,
                                                                            next(iter(versions.values())))}
    return outcome


def list_champions(uri: str) -> list[dict]:
    """Every alias of every ``headpose-*`` registered model (one per champion rule), by benchmark,
    ``champion`` (rule ``validation``) first."""
    _require_existing_store(uri)
    client = _client(uri)
    rows = []
    for model in client.search_registered_models("name LIKE 'headpose-%'"):
        aliases = dict(getattr(model, "aliases", None) or {})
        for alias in sorted(aliases, key=lambda a: (a != CHAMPION, a)):
            tags = client.get_model_version(model.name, str(aliases[alias])).tags
            rows.append(_champion_row(model, alias, str(aliases[alias]), tags))
    return sorted(rows, key=lambda r: (r["benchmark"], r["alias"] != CHAMPION, r["alias"]))


def _champion_row(model, alias: str, version: str, tags: Mapping[str, str]) -> dict:
    return {"benchmark": tags.get("benchmark", model.name[len("headpose-"):]), "model": model.name,
            "version": version, "alias": alias, "mae": _number(tags.get("mae")),
            "selection_metric": tags.get(TAG_SELECTION_METRIC),
            "selection_value": _number(tags.get(TAG_SELECTION_VALUE)),
            "split": tags.get("selection.split"),
            "rule": (model.tags or {}).get(f"alias.{alias}") or tags.get("champion_rule"),
            "protocol": tags.get("test.data.protocol"), "data_hash": tags.get("test.data.content_hash"),
            "method": tags.get("method"), "backbone": tags.get("backbone"),
            "run_id": tags.get("run_id"), "search_id": tags.get("search_id"),
            "trial_id": tags.get("trial_id"), "uri": f"models:/{model.name}@{alias}"}
