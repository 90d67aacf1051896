"""The champion rules as plain domain code: chosen from recorded version attributes, with no tracking backend."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ldlpose.selection.champion import ChampionRuleError, champion_target, same_split
from ldlpose.selection.rules import alias_of


def version(mae: float, latency: float | None, params: float, split: str = "h1") -> dict:
    tags = {"selection.content_hash": split, "selection.metric": "val_mae", "selection.value": repr(mae),
            "val.mae": repr(mae), "profile.params_m": repr(params)}
    if latency is not None:
        tags["profile.latency_ms"] = repr(latency)
    return tags


VERSIONS = {"1": version(4.0, 9.0, 25.0),   # most accurate, too slow for the rule
            "2": version(5.0, 4.0, 11.0),   # the rule's pick
            "3": version(6.0, 2.0, 1.0),
            "4": version(3.0, None, 1.0),   # no latency recorded (a single-objective search's version)
            "5": version(1.0, 1.0, 1.0, split="other")}  # other validation rows: never compared


def test_the_written_rule_picks_from_recorded_values():
    rule = "min val_mae where latency_ms <= 5"
    assert champion_target(VERSIONS, None, "1", rule) == "2"
    assert champion_target(VERSIONS, None, "1", "validation") == "4"  # plain lowest MAE differs
    assert champion_target(VERSIONS, "4", "1", rule) == "2"  # a champion without latency gives way
    assert champion_target(VERSIONS, None, "1", "min latency_ms where val_mae <= 5.5") == "2"
    assert champion_target(VERSIONS, None, "1", "min params_m") == "3"  # ties keep the older version (3, not 4)
    assert champion_target(VERSIONS, "5", "1", rule) == "5"  # the champion's rows differ: the alias stays
    assert champion_target(VERSIONS, None, "1", "min val_mae where latency_ms < 1") is None  # none qualifies
    assert champion_target(VERSIONS, "2", "1", "min val_mae where latency_ms < 1") == "2"
    with pytest.raises(ChampionRuleError, match="champion rule 'min val_mae where': expected a condition"):
        champion_target(VERSIONS, None, "1", "min val_mae where")


def test_versions_on_other_validation_rows_are_never_comparable():
    assert same_split(VERSIONS, "1", "2")
    assert not same_split(VERSIONS, "1", "5")
    assert not same_split(VERSIONS, None, "1")  # no champion yet: nothing to compare with


def test_the_benchmark_rule_picks_the_lowest_test_mae_across_splits():
    versions = {"1": {**VERSIONS["1"], "mae": "7.0"}, "5": {**VERSIONS["5"], "mae": "6.5"}, "2": VERSIONS["2"]}
    assert champion_target(versions, "1", "2", "benchmark") == "5"  # other rows count under 'benchmark'
    assert alias_of("benchmark") == "champion-benchmark"


def test_the_rules_run_without_mlflow_or_torch():
    code = ("import sys; from ldlpose.selection.champion import champion_target; "
            "v = {'1': {'selection.content_hash': 'h', 'selection.metric': 'val_mae', 'selection.value': '3.0'}, "
            "'2': {'selection.content_hash': 'h', 'selection.metric': 'val_mae', 'selection.value': '2.0'}}; "
            "assert champion_target(v, '1', '2', 'validation') == '2'; "
            "print(sorted(m for m in ('mlflow', 'torch', 'ray') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def on_protocol(protocol: str, mae: float, split: str) -> dict:
    return {**version(mae, None, 1.0, split=split), "test.data.protocol": protocol, "mae": repr(mae)}


def test_a_new_protocol_starts_a_new_ranking():
    """facegen-v2's champion (better numbers, other rows) gives way to the best version of facegen-v3:
    the versions of two protocols are never ranked together, and an older protocol's late version
    does not bring its ranking back."""
    versions = {"1": on_protocol("facegen-v2", 5.0, "v2-rows"), "2": on_protocol("facegen-v2", 4.0, "v2-rows")}
    assert champion_target(versions, None, "2", "validation") == "2"
    versions["3"] = on_protocol("facegen-v3", 9.0, "v3-rows")
    assert champion_target(versions, "2", "3", "validation") == "3"
    assert champion_target(versions, "2", "3", "benchmark") == "3"  # lower test MAE on v2 does not count
    versions["4"] = on_protocol("facegen-v3", 8.0, "v3-rows")
    assert champion_target(versions, "3", "4", "validation") == "4"
    versions["5"] = on_protocol("facegen-v2", 1.0, "v2-rows")  # an older ldlpose registers on facegen-v2
    assert champion_target(versions, "4", "5", "validation") == "4"
    assert champion_target(versions, "4", "5", "min val_mae where val_mae <= 9") == "4"
