"""A search space as Optuna sees it: define-by-run suggestions, the sampler, and studies rebuilt from results.

A searched value has one public name, its run-config key (``train.optimizer.lr``,
``method.hparams.sigma``): a trial's assignment (Tune's config, the ``ldlpose.assignment`` tag), its
run config and its MLflow params all use it, and Optuna's study too wherever Optuna allows. A method's
hyperparameter is shared by every method that declares it, which Optuna allows while their
distributions are compatible (``optuna.distributions.check_distribution_compatibility``: the same
kind and log scale; float and integer bounds may differ, categorical choices may not). Where two
methods declare incompatible ones (``alpha: {values: [0, 0.01]}`` beside ``alpha: {values: [1, 2]}``)
Optuna would refuse the second at its first trial, so inside the study exactly those keep their
method in the name (``method.gldl.alpha``). This module is the one place that maps the two:
:func:`names` holds the rule, :func:`optuna_names` maps an assignment into the study, and the
searcher (:mod:`ldlpose.search.searcher`) maps what the study samples back to public names
(:func:`ldlpose.search.names.public_names`); docs/search-spaces.md states it.
"""

from __future__ import annotations

import functools
from typing import Any

import optuna
from optuna import distributions as od

from ldlpose.search.names import is_method_hparam
from ldlpose.search.space import Param, SearchSpace


def suggest(param: Param, trial: optuna.Trial, name: str | None = None) -> Any:
    """Sample ``param`` under ``name`` (default: its own name); a constant is returned, not sampled."""
    d, name = param.distribution, name or param.name
    if d == "constant":
        return param.choices[0]
    if d == "categorical":
        return trial.suggest_categorical(name, list(param.choices))
    low, high = _bounds(param)
    if d in ("int_uniform", "int_log_uniform"):
        return trial.suggest_int(name, int(low), int(high), step=int(param.step or 1), log=d == "int_log_uniform")
    return trial.suggest_float(name, low, high, step=param.step, log=d == "log_uniform")


def distribution(param: Param) -> od.BaseDistribution:
    d = param.distribution
    if d in ("constant", "categorical"):
        return od.CategoricalDistribution(list(param.choices))
    low, high = _bounds(param)
    if d.startswith("int"):
        return od.IntDistribution(int(low), int(high), step=int(param.step or 1), log=d == "int_log_uniform")
    return od.FloatDistribution(low, high, step=param.step, log=d == "log_uniform")


def _bounds(param: Param) -> tuple[float, float]:
    """``(low, high)`` of a numeric parameter, which the space's loader always gives both."""
    assert param.low is not None and param.high is not None, param
    return param.low, param.high


def _recorded(param: Param, grid: bool) -> od.BaseDistribution:
    """The distribution a study records for ``param`` (a grid search's rebuilt study: its grid values)."""
    return od.CategoricalDistribution(param.grid_values()) if grid else distribution(param)


def _compatible(params: list[Param], grid: bool) -> bool:
    """Whether Optuna accepts every one of ``params`` under one name (its rule is transitive)."""
    first = _recorded(params[0], grid)
    for other in params[1:]:
        try:
            od.check_distribution_compatibility(first, _recorded(other, grid))
        except ValueError:
            return False
    return True


def names(space: SearchSpace) -> dict[str, str]:
    """Each method hyperparameter's Optuna name, by its :attr:`Param.name`: the run-config key
    (``method.hparams.alpha``) where every method declaring it declares a compatible distribution,
    else the method-qualified ``method.<method>.alpha`` (see the module's docstring)."""
    grid = space.search.sampler.name == "grid"
    by_key: dict[str, list[Param]] = {}
    for own in space.method_params.values():
        for param in own:
            by_key.setdefault(param.key, []).append(param)
    return {p.name: (key if _compatible(params, grid) else p.name) for key, params in by_key.items() for p in params}


def optuna_names(space: SearchSpace, assignment: dict) -> dict:
    """An assignment under the study's names: a method's hyperparameter, by its public name or by an
    older search's method-qualified one, becomes :func:`names`' name for the trial's method."""
    named, method = names(space), assignment.get("method")
    if method is None:
        return dict(assignment)
    return {(named.get(f"method.{method}.{name.split('.')[2]}", name) if is_method_hparam(name) else name): value
            for name, value in assignment.items()}


def _define(space: SearchSpace, trial: optuna.Trial) -> dict | None:
    named = names(space)
    if space.search.sampler.name == "grid":
        index = trial.suggest_categorical("grid_point", list(range(len(space.grid()))))
        return {named.get(k, k): v for k, v in space.grid()[index].items()}
    # Optuna records only what it samples: constants join the assignment through the returned dict.
    constants = {}
    params = [(p, p.name) for p in space.params]
    if space.method_params:
        chosen = trial.suggest_categorical("method", sorted(space.method_params))
        params += [(p, named[p.name]) for p in space.method_params[chosen]]
    for param, name in params:
        value = suggest(param, trial, name)
        if param.distribution == "constant":
            constants[name] = value
    return constants or None


def define_by_run(space: SearchSpace):
    """Optuna's define-by-run function of ``space`` (grid points are returned whole).

    A partial of a module-level function, not a closure: Tune pickles the searcher with its state.
    """
    return functools.partial(_define, space)


def start_points(space: SearchSpace) -> list[dict] | None:
    """``search.start_from`` under Optuna's names, for ``OptunaSearch(points_to_evaluate=...)``
    (it enqueues them: the first trials take these values and sample the rest); None without any."""
    named = names(space)
    return [{named.get(k, k): v for k, v in point.items()} for point in space.start_points] or None


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
    named = names(space)
    # A shared name is looked up in the trial's own method: float bounds may differ between methods.
    every.update({named[p.name]: p for p in space.method_params.get(params.get("method", ""), ())})
    grid = space.search.sampler.name == "grid"
    result: dict[str, od.BaseDistribution] = {}
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
        params = optuna_names(space, {k: v for k, v in assignment.items() if k != "grid_point"})
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions(space, params),
                                                  value=value))
    return study


def multi_objective_sampler(space: SearchSpace) -> optuna.samplers.BaseSampler:
    """The sampler of a search with several objectives (search.metric as a list).

    NSGA-II breeds each generation from the non-dominated trials of the last; TPE, given several
    objectives, is Optuna's multi-objective TPE (it splits good from bad trials by non-domination
    rank instead of by one value). Random and grid sampling ignore the objectives.
    """
    s = space.search.sampler
    if s.name == "nsga2":
        population = s.population_size or max(2, min(50, space.num_trials // 2))
        return optuna.samplers.NSGAIISampler(population_size=population, seed=s.seed)
    return sampler(space)
