"""Which registered version holds a rule's alias: the champion rules as plain domain code.

Versions are given as their recorded attributes (``{version: {tag: value}}``, strings as a model
registry stores them); nothing here knows which registry stores them (``ldlpose.tracking`` holds
MLflow's, and asks :func:`champion_target` at every alias write).
"""

from __future__ import annotations

from collections.abc import Mapping

from ldlpose.selection.rules import Rule, RuleError, parse_rule
from ldlpose.selection.rules import tag_number as _number

__all__ = ["TAG_PARETO", "TAG_PROTOCOL", "TAG_SELECTION_METRIC", "TAG_SELECTION_VALUE", "TAG_SPLIT_HASH",
           "ChampionRuleError", "champion_target", "checked_rule", "newest_protocol", "same_split"]

TAG_PARETO = "ldlpose.pareto"  # "true" on a version that was on its search's Pareto front
# Version tags the champion rules read (see docs/tracking.md for every tag a version carries).
TAG_SPLIT_HASH, TAG_SELECTION_METRIC, TAG_SELECTION_VALUE = (
    "selection.content_hash", "selection.metric", "selection.value")
TAG_PROTOCOL = "test.data.protocol"  # the benchmark's protocol the version's test scores were measured under


class ChampionRuleError(ValueError):
    """A champion rule that cannot be read, as one line: ``champion rule '<rule>': <what was expected>``."""


def champion_target(versions: Mapping[str, Mapping], current: str | None, own: str, rule: str) -> str | None:
    """The version that should hold ``champion`` under ``rule``, given every version's tags.

    ``validation``: the lowest validation objective among versions selected on the same validation
    rows (same ``selection.content_hash`` and ``selection.metric``) as the current champion, or as
    ``own`` (the version being registered) when there is no comparable champion yet. Versions on
    other splits are never compared: the alias stays. ``benchmark``: the lowest test MAE (tag
    ``mae``) of all versions; the user asked for it explicitly. ``min <metric> where ...``: among the
    same comparable versions, those whose recorded values meet every condition, the lowest
    ``<metric>``; if none qualifies the alias stays (None: there is no champion). Ties keep the
    older version. A rule that cannot be read raises :class:`ChampionRuleError`.

    Every rule decides among the versions of the benchmark's newest protocol only
    (:func:`newest_protocol`): a new generator version or test protocol starts a new ranking, and
    the alias leaves a champion of an older protocol for the best of the new one.
    """
    parsed = checked_rule(rule)
    protocol = newest_protocol(versions)
    if protocol is not None:
        versions = {v: tags for v, tags in versions.items() if tags.get(TAG_PROTOCOL) == protocol}
        current = current if current in versions else None
        own = own if own in versions else max(versions, key=int)
    def key(v: str, tag: str) -> tuple[float, int]:
        value = _number(versions[v].get(tag))
        assert value is not None, (v, tag)  # only versions whose tag holds a number are ranked
        return value, int(v)

    if rule == "benchmark":
        scored = [v for v in versions if _number(versions[v].get("mae")) is not None]
        return min(scored, key=lambda v: key(v, "mae")) if scored else (current or own)

    def group(v: str | None):
        tags = versions.get(v or "", {})
        if _number(tags.get(TAG_SELECTION_VALUE)) is None or not tags.get(TAG_SPLIT_HASH):
            return None
        return tags[TAG_SPLIT_HASH], tags.get(TAG_SELECTION_METRIC)

    anchor = group(current) or group(own)
    if anchor is None:
        return current or own
    members = [v for v in versions if group(v) == anchor]
    if isinstance(parsed, Rule):
        qualified = [v for v in members if parsed.qualifies(versions[v])]
        if not qualified:
            return current
        rule_ = parsed

        def rule_key(v: str) -> tuple[float, int]:
            values = rule_.values(versions[v])
            assert values is not None, v  # a qualified version records every metric of the rule
            return values[rule_.minimise], int(v)

        return min(qualified, key=rule_key)
    return min(members, key=lambda v: key(v, TAG_SELECTION_VALUE))


def newest_protocol(versions: Mapping[str, Mapping]) -> str | None:
    """The protocol introduced last: the one whose first version is the most recent. A function of the
    versions alone, so concurrent registrants agree on it, and a version registered later under an
    older protocol (an older ldlpose) does not bring the older ranking back. None: no version says."""
    first: dict[str, int] = {}
    for v, tags in versions.items():
        protocol = tags.get(TAG_PROTOCOL)
        if protocol:
            first[protocol] = min(first.get(protocol, int(v)), int(v))
    return max(first, key=lambda p: first[p]) if first else None


def checked_rule(rule: str) -> str | Rule:
    """The parsed rule, or :class:`ChampionRuleError` naming it and what the grammar expected."""
    try:
        return parse_rule(rule)
    except RuleError as err:
        where = "" if str(err).startswith("must be one of") else f"{rule!r}: "
        raise ChampionRuleError(f"champion rule {where}{err}") from None


def same_split(versions: Mapping[str, Mapping], a: str | None, b: str) -> bool:
    """Whether versions ``a`` and ``b`` were selected on the same validation rows by the same metric."""
    pick = (TAG_SPLIT_HASH, TAG_SELECTION_METRIC)
    tags_a = {} if a is None else versions.get(a, {})
    return [tags_a.get(k) for k in pick] == [versions.get(b, {}).get(k) for k in pick]
