"""Several objectives in a search space: which are allowed, what they rule out, and the champion rule.

``search.metric`` as a list makes a multi-objective search: the first objective is the validation
metric that selects each trial's checkpoint (as for one objective), the others are costs each trial
measures on that checkpoint (ldlpose.inference.profile). This module checks that part of a space;
:mod:`ldlpose.search.space` calls it while loading.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ldlpose import config as run_configs
from ldlpose.config.schema import FieldError
from ldlpose.errors import ConfigError

if TYPE_CHECKING:
    from ldlpose.search.sections import SearchSection


def _err(file: str | None, key: str, message: str) -> ConfigError:
    return ConfigError(f"{file + ': ' if file else ''}{key}: {message}")


def multi_objective_defaults(raw: Any, file: str | None) -> Any:
    """A list metric without a scheduler runs without one: ASHA cannot judge several objectives."""
    if not isinstance(raw, dict):
        return raw
    if "objectives" in raw:
        raise _err(file, "search.objectives", "unknown key; list the objectives under search.metric")
    if isinstance(raw.get("metric"), list) and len(raw["metric"]) > 1 and "scheduler" not in raw:
        return {**raw, "scheduler": {"name": "none"}}
    return raw


def check_costs(section: SearchSection, file: str | None) -> None:
    """After the validation metric, a multi-objective search minimises costs that each trial measures.

    ASHA is refused rather than applied to the first objective: it would stop trials by validation
    error alone after a few epochs, and a fast model that learns slowly (the low-latency end of the
    front) is exactly what it stops, so the front would be cut by one objective.
    """
    from ldlpose.config.catalog import COST_METRICS

    if section.sampler.name != "nsga2" and section.sampler.population_size is not None:
        raise _err(file, "search.sampler.population_size", "only nsga2 has a population")
    if not section.objectives:
        if section.sampler.name == "nsga2":
            raise _err(file, "search.sampler.name", "nsga2 needs several objectives (search.metric as a list)")
        return
    seen = {section.first_metric.name}
    for index, objective in enumerate(section.objectives[1:], start=1):
        where = f"search.metric[{index}]"
        if objective.name not in COST_METRICS:
            try:  # a test benchmark's metric gets the same explanation as for the first objective
                run_configs.check_selection_metric(f"{where}.name", objective.name)
            except FieldError as err:
                if "test benchmark" in err.message:
                    raise _err(file, f"{where}.name", err.message) from None
            raise _err(file, f"{where}.name", f"{objective.name!r} is not a cost metric; after the validation "
                                              f"objective accepted: {', '.join(COST_METRICS)}")
        if objective.name in seen:
            raise _err(file, f"{where}.name", f"{objective.name!r} is listed twice")
        if objective.goal != "minimize":
            raise _err(file, f"{where}.goal", f"costs are minimised: use minimize, got {objective.goal!r}")
        seen.add(objective.name)
    checks = [("search.scheduler.name", section.scheduler.name, section.scheduler.name == "asha",
               ("asha stops trials by one metric and cannot rank several objectives; a multi-objective "
                "search runs every trial to its last epoch: use {name: none} (or leave search.scheduler out)")),
              ("search.sampler.name", section.sampler.name, section.sampler.name == "cmaes",
               "cmaes optimises a single objective; use nsga2, tpe (multi-objective TPE) or random"),
              ("search.confirm.top_k", section.confirm.top_k, section.confirm.top_k > 0,
               "confirmation over seeds ranks one objective; set it to 0 in a multi-objective search")]
    for key, value, refused, message in checks:
        if refused:
            raise _err(file, key, f"{message}, got {value!r}")


def check_champion_rule(section: SearchSection, file: str | None) -> None:
    """The rule may name validation metrics (every version records them) and this search's costs."""
    from ldlpose.selection.rules import RuleError, parse_rule

    key = "search.champion.rule"
    try:
        rule = parse_rule(section.champion.rule)
    except RuleError as err:
        raise _err(file, key, str(err)) from None
    if isinstance(rule, str):
        if rule == "benchmark" and section.objectives:
            raise _err(file, key, "a multi-objective search chooses among its Pareto front on validation data; "
                                  "use validation or a 'min ...' rule, got 'benchmark'")
        return
    costs = [o.name for o in section.objectives[1:]]
    for metric in rule.metrics:
        if metric in costs:
            continue
        try:
            run_configs.check_selection_metric(key, metric)
        except FieldError as err:
            hint = "" if "test benchmark" in err.message else (
                f"; or one of this search's costs: {', '.join(costs)}" if costs
                else "; a cost (latency_ms, ...) is measured only when it is an objective in search.metric")
            raise _err(file, key, err.message + hint) from None
