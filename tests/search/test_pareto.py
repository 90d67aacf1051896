"""Several objectives: the YAML rules, the non-domination computation and the written champion rule."""

from __future__ import annotations

import copy

import pytest

from ldlpose.errors import ConfigError
from ldlpose.search.pareto import dominates, front_rows, non_dominated
from ldlpose.search.space import search_space_from_dict
from ldlpose.selection.rules import Condition, Rule, RuleError, parse_rule

SPACE = {
    "name": "mo", "method": {"name": "gldl"}, "model": {"backbone": "resnet18"}, "data": {"image_size": 32},
    "search": {"metric": [{"name": "val_mae", "goal": "minimize"}, {"name": "latency_ms", "goal": "minimize"},
                          {"name": "params_m", "goal": "minimize"}],
               "sampler": {"name": "nsga2", "seed": 0},
               "champion": {"rule": "min val_mae where latency_ms <= 5"},
               "parameters": {"model.backbone": {"values": ["mobilenet_v3_small", "resnet18"]}}},
}


def load(**search_changes):
    data = copy.deepcopy(SPACE)
    data["search"].update(search_changes)
    return search_space_from_dict(data, file="mo.yaml")


def refused(match: str, **search_changes) -> str:
    with pytest.raises(ConfigError, match=match) as info:
        load(**search_changes)
    return str(info.value)


# --- the YAML -----------------------------------------------------------------------------------

def test_a_metric_list_makes_the_first_the_objective_and_runs_without_asha():
    space = load()
    assert space.search.metric.name == "val_mae"  # what single-objective code reads
    assert [o.name for o in space.objectives] == ["val_mae", "latency_ms", "params_m"]
    assert space.search.scheduler.name == "none"
    assert space.base_run.train.select_metric == "val_mae"


def test_one_objective_behaves_as_before():
    space = load(metric={"name": "val_mae", "goal": "minimize"}, sampler={"name": "tpe"},
                 champion={"rule": "validation"})
    assert space.search.objectives == [] and [o.name for o in space.objectives] == ["val_mae"]
    assert space.search.scheduler.name == "asha"
    one = load(metric=[{"name": "val_mae"}], sampler={"name": "tpe"}, champion={"rule": "validation"})
    assert one.search.objectives == [] and one.search.scheduler.name == "asha"


def test_test_benchmark_objectives_are_refused_at_their_index():
    metric = copy.deepcopy(SPACE["search"]["metric"])
    metric[0]["name"] = "synth_mae"
    assert refused(r"search\.metric\[0\]\.name: 'synth_mae' is measured on a test benchmark", metric=metric)
    metric = copy.deepcopy(SPACE["search"]["metric"])
    metric[2]["name"] = "aflw2000_mae"
    assert refused(r"search\.metric\[2\]\.name: 'aflw2000_mae' is measured on a test benchmark", metric=metric)
    metric[2]["name"] = "val_maev"
    assert "latency_ms" in refused(r"search\.metric\[2\]\.name: 'val_maev' is not a cost metric", metric=metric)
    metric[2] = {"name": "latency_ms"}
    refused(r"search\.metric\[2\]\.name: 'latency_ms' is listed twice", metric=metric)
    metric[2] = {"name": "params_m", "goal": "maximize"}
    refused(r"search\.metric\[2\]\.goal: costs are minimised", metric=metric)


def test_what_cannot_rank_several_objectives_is_refused_by_its_key():
    refused(r"mo\.yaml: search\.scheduler\.name: asha stops trials by one metric", scheduler={"name": "asha"})
    refused(r"search\.sampler\.name: cmaes optimises a single objective", sampler={"name": "cmaes"})
    refused(r"search\.confirm\.top_k: confirmation over seeds ranks one objective", confirm={"top_k": 2})
    refused(r"search\.champion\.rule: a multi-objective search chooses", champion={"rule": "benchmark"})
    refused(r"search\.sampler\.name: nsga2 needs several objectives", metric={"name": "val_mae"},
            champion={"rule": "validation"})
    refused(r"search\.sampler\.population_size: only nsga2", sampler={"name": "tpe", "population_size": 4})
    refused(r"search\.objectives: unknown key", objectives=[])


@pytest.mark.parametrize(("rule", "match"), [
    ("max val_mae", r"must be one of validation, benchmark or a rule 'min <metric>"),
    ("min", r"expected a metric after 'min', but the rule ends there"),
    ("min val_mae latency_ms <= 5", r"expected 'where' after 'min val_mae', got 'latency_ms'"),
    ("min val_mae where latency_ms <= 5ms", r"expected a number after 'latency_ms <=', got '5ms' \(no units\)"),
    ("min val_mae where latency_ms == 5", r"expected one of <=, <, >=, > after 'latency_ms', got '=='"),
    ("min val_mae where latency_ms <= 5 or params_m < 2", r"a condition is"),
    ("min val_mae where __import__('os') <= 1", r"expected a metric name in a condition"),
    ("min synth_mae", r"'synth_mae' is measured on a test benchmark"),
    ("min val_mae where macs_m <= 3", r"'macs_m' is not a reported validation metric.*latency_ms, params_m"),
])
def test_champion_rule_errors_name_the_key(rule, match):
    message = refused(match, champion={"rule": rule})
    assert message.startswith("mo.yaml: search.champion.rule: ")


def test_rules_parse_into_conditions():
    assert parse_rule("validation") == "validation" and parse_rule(" benchmark ") == "benchmark"
    rule = parse_rule("min val_mae where latency_ms<=5 and params_m < 1.5e1")
    assert rule == Rule("min val_mae where latency_ms<=5 and params_m < 1.5e1", "val_mae",
                        (Condition("latency_ms", "<=", 5.0), Condition("params_m", "<", 15.0)))
    assert rule.metrics == ["val_mae", "latency_ms", "params_m"]
    assert parse_rule("min latency_ms where val_mae <= 6").metrics == ["latency_ms", "val_mae"]
    with pytest.raises(RuleError, match="not a metric this search records"):
        parse_rule("min val_mae", accepted=["val_maev"])
    costs = [o.name for o in load(champion={"rule": "min params_m where val_mae <= 30"}).objectives]
    assert costs == ["val_mae", "latency_ms", "params_m"]


# --- the front ----------------------------------------------------------------------------------

def test_non_domination_by_hand():
    assert dominates([1, 2], [1, 3]) and not dominates([1, 2], [1, 2]) and not dominates([1, 3], [2, 2])
    points = [[3.0, 10.0, 1.0],   # 0: on the front (cheapest in the third objective)
              [2.0, 12.0, 5.0],   # 1: best first objective
              [3.0, 11.0, 1.0],   # 2: dominated by 0 (equal, equal... worse second)
              [4.0, 9.0, 6.0],    # 3: best second objective
              [4.0, 13.0, 6.0],   # 4: dominated by 3 and 1
              [2.0, 12.0, 5.0]]   # 5: equal to 1: neither dominates the other
    assert non_dominated(points) == [0, 1, 3, 5]
    assert non_dominated([]) == [] and non_dominated([[1.0]]) == [0]


def test_front_rows_leave_out_trials_without_costs_and_never_read_test_scores():
    space = load()
    ranked = [{"trial_id": t, "objective": mae, "method": "gldl", "backbone": b, "assignment": {},
               "scores": {"val_mae": mae, "synth_mae": test}}
              for t, mae, b, test in [("a", 5.0, "resnet18", 9.0), ("b", 6.0, "mobilenet_v3_small", 1.0),
                                      ("c", 7.0, "mobilenet_v3_small", 0.5), ("d", 4.0, "resnet50", 0.1)]]
    costs = {"a": {"latency_ms": 4.0, "params_m": 11.0}, "b": {"latency_ms": 2.0, "params_m": 1.0},
             "c": {"latency_ms": 2.5, "params_m": 1.0}, "d": {"params_m": 25.0}}  # d's latency never measured
    rows = front_rows(space, ranked, costs.get)
    assert {r["trial_id"]: r["pareto"] for r in rows} == {"a": True, "b": True, "c": False, "d": False}
    assert rows[0]["values"] == {"val_mae": 5.0, "latency_ms": 4.0, "params_m": 11.0}


def test_the_shipped_space_mixes_small_and_large_backbones_on_three_objectives():
    from pathlib import Path

    from ldlpose.search.space import load_search_space

    space = load_search_space(Path(__file__).parents[2] / "search_spaces" / "pareto-backbones.yaml")
    assert [o.name for o in space.objectives] == ["val_mae", "latency_ms", "params_m"]
    (backbones,) = [p for p in space.params if p.key == "model.backbone"]
    assert {"mobilenet_v3_small", "resnet50"} <= set(backbones.choices) and len(backbones.choices) == 5
    assert space.search.sampler.name == "nsga2" and space.search.scheduler.name == "none"
    rule = parse_rule(space.search.champion.rule)
    assert rule.minimise == "val_mae" and rule.conditions == (Condition("latency_ms", "<=", 5.0),)
