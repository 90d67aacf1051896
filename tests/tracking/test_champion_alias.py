"""One alias per champion rule: its name is a slug of the rule that MLflow accepts."""

from __future__ import annotations

import re

import pytest

from ldlpose.selection.rules import alias_of


@pytest.mark.parametrize(("rule", "alias"), [
    ("validation", "champion"),
    ("benchmark", "champion-benchmark"),
    ("min val_mae where latency_ms <= 5", "champion-min-val_mae-where-latency_ms-le-5"),
    ("min val_mae where latency_ms<=5.0", "champion-min-val_mae-where-latency_ms-le-5"),  # the same rule
    ("min params_m", "champion-min-params_m"),
    ("min val_mae where latency_ms < 2.5 and params_m >= -1e-3",
     "champion-min-val_mae-where-latency_ms-lt-2p5-and-params_m-ge-m0p001"),
])
def test_each_rule_has_its_own_alias(rule, alias):
    assert alias_of(rule) == alias
    assert re.fullmatch(r"[\w\-]+", alias) and not re.fullmatch(r"[vV]\d+", alias)  # MLflow's alias rules


def test_different_rules_never_share_an_alias():
    rules = ["min val_mae where latency_ms <= 5", "min val_mae where latency_ms < 5",
             "min val_mae where latency_ms <= 50", "min val_mae where params_m <= 5",
             "min val_maev where latency_ms <= 5", "benchmark", "validation"]
    assert len({alias_of(r) for r in rules}) == len(rules)
