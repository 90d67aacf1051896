"""The champion rule a user writes (``search.champion.rule``), parsed strictly and evaluated on version tags.

Grammar (whitespace-separated words; nothing is ever evaluated as code)::

    rule       := "validation" | "benchmark" | "min" METRIC [ "where" condition { "and" condition } ]
    condition  := METRIC ("<=" | "<" | ">=" | ">") NUMBER
    METRIC     := a validation metric (val_mae, val_maev, ...) or a cost metric (latency_ms, params_m, ...)

``min val_mae where latency_ms <= 5``: of the comparable versions whose recorded latency is at most
5 ms, the one with the lowest validation MAE. ``validation`` and ``benchmark`` are the fixed rules of
:func:`ldlpose.selection.champion.champion_target`. A metric's value is read from the version's tags:
``val_<m>`` from ``val.<m>``, a cost metric from ``profile.<name>``; a version lacking one of the
rule's values does not qualify.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

__all__ = ["CHAMPION", "FIXED_RULES", "Condition", "Rule", "RuleError", "alias_of", "parse_rule"]

FIXED_RULES = ("validation", "benchmark")
CHAMPION = "champion"  # the alias of rule "validation"; every other rule has an alias of its own (alias_of)
_OP_WORDS = {"<=": "le", "<": "lt", ">=": "ge", ">": "gt"}
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}
_METRIC = re.compile(r"[a-z][a-z0-9_]*")
_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")


class RuleError(ValueError):
    """A rule that does not follow the grammar; the message states what was expected where."""


@dataclass(frozen=True)
class Condition:
    metric: str
    op: str
    bound: float

    def holds(self, value: float) -> bool:
        return _OPERATORS[self.op](value, self.bound)

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"


@dataclass(frozen=True)
class Rule:
    """``min <metric> where <conditions>``; ``text`` is the rule as written."""

    text: str
    minimise: str
    conditions: tuple[Condition, ...] = ()

    @property
    def metrics(self) -> list[str]:
        return [self.minimise, *(c.metric for c in self.conditions if c.metric != self.minimise)]

    def values(self, tags: Mapping[str, str]) -> dict[str, float] | None:
        """The rule's metrics read from a version's tags; None if one is missing or not finite."""
        found = {}
        for metric in self.metrics:
            value = tag_number(tags.get(tag_of(metric)))
            if value is None:
                return None
            found[metric] = value
        return found

    def qualifies(self, tags: Mapping[str, str]) -> bool:
        values = self.values(tags)
        return values is not None and all(c.holds(values[c.metric]) for c in self.conditions)


def tag_of(metric: str) -> str:
    """The version tag that records ``metric``: ``val_mae`` -> ``val.mae``, ``latency_ms`` -> ``profile.latency_ms``."""
    return metric.replace("val_", "val.", 1) if metric.startswith("val_") else f"profile.{metric}"


def tag_number(value) -> float | None:
    """A tag's value as a finite number, else None (tags are strings; a missing or NaN score is None)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _metric(word: str | None, accepted: Collection[str] | None, where: str) -> str:
    if word is None:
        raise RuleError(f"expected a metric {where}, but the rule ends there")
    if not _METRIC.fullmatch(word):
        raise RuleError(f"expected a metric name {where}, got {word!r}")
    if accepted is not None and word not in accepted:
        raise RuleError(f"{word!r} {where} is not a metric this search records; accepted: {', '.join(accepted)}")
    return word


def _condition(words: list[str], accepted: Collection[str] | None) -> Condition:
    if not words:
        raise RuleError("expected a condition '<metric> <op> <number>' after 'where' or 'and'")
    if len(words) != 3:
        raise RuleError(f"a condition is '<metric> <op> <number>', got {' '.join(words)!r}")
    metric = _metric(words[0], accepted, "in a condition")
    if words[1] not in _OPERATORS:
        raise RuleError(f"expected one of {', '.join(_OPERATORS)} after {metric!r}, got {words[1]!r}")
    if not _NUMBER.fullmatch(words[2]):
        raise RuleError(f"expected a number after '{metric} {words[1]}', got {words[2]!r} (no units)")
    return Condition(metric, words[1], float(words[2]))


def parse_rule(text: str, accepted: Collection[str] | None = None) -> str | Rule:
    """A fixed rule's name, or the :class:`Rule` of ``min ...``; ``accepted``: the metrics it may name.

    Raises :class:`RuleError` saying what the grammar expected (see the module docstring).
    """
    if not isinstance(text, str):
        raise RuleError(f"expected a string, got {text!r}")
    if text.strip() in FIXED_RULES:
        return text.strip()
    # Operators may be written without spaces around them ("latency_ms<=5").
    words = re.sub(r"(<=|>=|<|>)", r" \1 ", text).split()
    if not words or words[0] != "min":
        raise RuleError(f"must be one of {', '.join(FIXED_RULES)} or a rule 'min <metric> "
                        f"[where <metric> <op> <number> [and ...]]', got {text!r}")
    minimise = _metric(words[1] if len(words) > 1 else None, accepted, "after 'min'")
    rest = words[2:]
    if not rest:
        return Rule(text.strip(), minimise)
    if rest[0] != "where":
        raise RuleError(f"expected 'where' after 'min {minimise}', got {rest[0]!r}")
    clauses: list[list[str]] = []
    current: list[str] = []
    for word in rest[1:]:
        if word == "and":
            clauses.append(current)
            current = []
        else:
            current.append(word)
    clauses.append(current)
    return Rule(text.strip(), minimise, tuple(_condition(c, accepted) for c in clauses))


def alias_of(rule: str | Rule) -> str:
    """The registry alias that names the best version under ``rule``: one alias per rule, so that
    searches under different rules never move each other's alias.

    ``validation`` -> ``champion``; any other rule -> ``champion-`` and a slug of the rule (MLflow's
    alias characters, ``[A-Za-z0-9_-]``): ``benchmark`` -> ``champion-benchmark``, ``min val_mae where
    latency_ms <= 5`` -> ``champion-min-val_mae-where-latency_ms-le-5``. Rules written differently
    but meaning the same (spacing, ``5`` or ``5.0``) share their alias.
    """
    parsed = parse_rule(rule) if isinstance(rule, str) else rule
    if parsed == "validation":
        return CHAMPION
    if isinstance(parsed, str):
        return f"{CHAMPION}-{parsed}"
    words = ["min", parsed.minimise]
    for i, condition in enumerate(parsed.conditions):
        number = f"{condition.bound:g}".replace("-", "m").replace("+", "").replace(".", "p")
        words += ["where" if i == 0 else "and", condition.metric, _OP_WORDS[condition.op], number]
    return "-".join([CHAMPION, *words])
