"""A search space as Optuna sees it: define-by-run suggestions, the sampler, and studies rebuilt from results."""

from __future__ import annotations

import functools
from typing import Any

import optuna
from optuna import distributions as od

from ldlpose.search.space import Param, SearchSpace


def suggest(param: Param, trial: optuna.Trial) -> Any:
    d = param.distribution
    if d == "constant":
        return param.choices[0]
    if d == "categorical":
        return trial.suggest_categorical(param.name, list(param.choices))
    if d in ("int_uniform", "int_log_uniform"):
        return trial.suggest_int(param.name, int(param.low), int(param.high), step=int(param.step or 1),
                                 log=d == "int_log_uniform")
    return trial.suggest_float(param.name, param.low, param.high, step=param.step, log=d == "log_uniform")


def distribution(param: Param) -> od.BaseDistribution:
    d = param.distribution
    if d in ("constant", "categorical"):
        return od.CategoricalDistribution(list(param.choices))
    if d.startswith("int"):
        return od.IntDistribution(int(param.low), int(param.high), step=int(param.step or 1), log=d == "int_log_uniform")
    return od.FloatDistribution(param.low, param.high, step=param.step, log=d == "log_uniform")


def _define(space: SearchSpace, trial: optuna.Trial) -> dict | None:
    if space.search.sampler.name == "grid":
        index = trial.suggest_categorical("grid_point", list(range(len(space.grid()))))
        return dict(space.grid()[index])
    for param in space.params:
        suggest(param, trial)
    if space.method_params:
        chosen = trial.suggest_categorical("method", sorted(space.method_params))
        for param in space.method_params[chosen]:
            suggest(param, trial)
    return None


def define_by_run(space: SearchSpace):
    """Optuna's define-by-run function of ``space`` (grid points are returned whole).

    A partial of a module-level function, not a closure: Tune pickles the searcher with its state.
    """
    return functools.partial(_define, space)


def sampler(space: SearchSpace) -> optuna.samplers.BaseSampler:
    s = space.search.sampler
    if s.name == "random":
        return optuna.samplers.RandomSampler(seed=s.seed)
    if s.name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=s.seed, n_startup_trials=s.n_startup_trials)
    if s.name == "grid":
        return optuna.samplers.GridSampler({"grid_point": list(range(len(space.grid())))}, seed=s.seed)
    # TPE models the parameters jointly and splits conditional spaces into groups (docs/methods.md).
    return optuna.samplers.TPESampler(seed=s.seed, multivariate=s.multivariate, group=s.group,
                                      n_startup_trials=s.n_startup_trials, constant_liar=True)


def distributions(space: SearchSpace, params: dict) -> dict:
    """Optuna distributions of the named parameters of a finished trial (to rebuild a study)."""
    every = {p.name: p for p in space.params}
    every.update({p.name: p for own in space.method_params.values() for p in own})
    grid = space.search.sampler.name == "grid"
    result = {}
    for name in params:
        if name == "method":
            result[name] = od.CategoricalDistribution(sorted(space.method_params))
        elif grid:
            result[name] = od.CategoricalDistribution(every[name].grid_values())
        else:
            result[name] = distribution(every[name])
    return result


def study_of(space: SearchSpace, trials: list[tuple[dict, float]]) -> optuna.Study:
    """A study rebuilt from finished trials ``(assignment, objective)`` (for importance plots)."""
    study = optuna.create_study(direction="minimize")
    for assignment, value in trials:
        params = {k: v for k, v in assignment.items() if k != "grid_point"}
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions(space, params),
                                                  value=value))
    return study
