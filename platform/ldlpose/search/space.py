"""Search-space YAML: a run config plus a ``search`` section, validated strictly and compiled to Optuna.

The ``search`` section follows the shape of W&B sweeps (``metric: {name, goal}``; parameters with
``distribution``, ``min``, ``max``, ``values``, ``value``) keyed by dotted paths into the run config.
What head-pose search adds is the method as a categorical whose options carry their own sub-spaces::

    parameters:
      train.optimizer.lr: {distribution: log_uniform, min: 1.0e-4, max: 1.0e-2}
      method:
        values:
          gldl: {sigma: {distribution: log_uniform, min: 1, max: 8}, alpha: {values: [0, 0.01]}}
          hopenet: {alpha: {values: [1, 2]}}

A sampled trial is a flat dict of parameter names -> values, its *assignment*: dotted run-config
keys (the chosen method's own parameters too, ``method.hparams.sigma``; they exist only in its
trials) and ``method``. That one name is the hyperparameter's in Tune's trial config, the
``ldlpose.assignment`` tag and MLflow's params (:mod:`ldlpose.search.names`). A method's :attr:`Param.name`
is ``method.<name>.<hparam>``, the space's own handle; Optuna keeps it as its internal name only
where two methods declare incompatible distributions for one key (ldlpose.search.optuna_space.names).
Searches started before this rule stored Optuna's name in Tune's config and the tag too, so every
reader accepts it (:func:`ldlpose.search.names.public_names`, :meth:`SearchSpace.run_config`).
:meth:`SearchSpace.run_config` turns an assignment into the trial's run config; MLflow records that
config by its run-config keys (``method.name``, ``method.hparams.sigma``), so runs of different
searches line up.
The Optuna side (define-by-run, samplers) is :mod:`ldlpose.search.optuna_space`.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ldlpose import config as run_configs
from ldlpose.config import RunConfig
from ldlpose.config.hparams import HPARAMS
from ldlpose.config.schema import FieldError, set_dotted, validate
from ldlpose.config.splits import check_split_paths, unsearchable
from ldlpose.errors import ConfigError, closest
from ldlpose.search import objectives, start_from
from ldlpose.search.names import hparam_key, is_method_hparam, public_names
from ldlpose.search.sections import (  # the sections lived here once: pickled searches name them here
    _NUMERIC,
    BudgetSection,
    ChampionSection,
    ConfirmSection,
    MetricSection,
    Param,
    ParamSpec,
    ProfileSection,
    SamplerSection,
    SchedulerSection,
    SearchSection,
)

SMOKE_SUFFIX = "-smoke"  # a smoke test runs as the search <name>-smoke (ldlpose.search.tuning)

__all__ = [
    "BudgetSection",
    "ChampionSection",
    "ConfirmSection",
    "MetricSection",
    "Param",
    "ParamSpec",
    "ProfileSection",
    "SamplerSection",
    "SchedulerSection",
    "SearchSection",
    "SearchSpace",
    "hparam_key",
    "is_method_hparam",
    "load_search_space",
    "public_names",
]


@dataclass(frozen=True)
class SearchSpace:
    """A validated search: the base run config, the search settings and the compiled parameters."""

    name: str
    base: dict  # the run config as plain data; trials override keys of it
    search: SearchSection
    params: tuple[Param, ...]  # shared dimensions (not the method's own)
    method_params: dict[str, tuple[Param, ...]]  # method name -> its own dimensions; {} if fixed
    file: str | None = None
    # search.start_from, validated, by Param.name (``method.<method>.<hparam>`` for a method's own)
    start_points: tuple[dict, ...] = ()

    @property
    def objectives(self) -> list[MetricSection]:
        """Every objective, the validation metric first (one for a single-objective search)."""
        return self.search.objectives or [self.search.first_metric]

    @property
    def base_run(self) -> RunConfig:
        return run_configs.run_config_from_dict(self.base, file=self.file)

    # --- the space's points ----------------------------------------------------------------
    def grid(self) -> list[dict]:
        """Every point of a grid search (the method's sub-grids expanded per method)."""
        shared = [[(p.name, v) for v in p.grid_values()] for p in self.params]
        methods: list[tuple[str | None, tuple[Param, ...]]] = [(None, ())]
        if self.method_params:
            methods = [(name, own) for name, own in sorted(self.method_params.items())]
        points = []
        for method, own in methods:
            extra = [[(p.name, v) for v in p.grid_values()] for p in own]
            head = [] if method is None else [[("method", method)]]
            for combo in itertools.product(*head, *shared, *extra):
                points.append(dict(combo))
        return points

    @property
    def num_trials(self) -> int:
        return len(self.grid()) if self.search.sampler.name == "grid" else self.search.budget.trials

    # --- trials ------------------------------------------------------------------------------
    def run_config(self, assignment: dict) -> RunConfig:
        """The run config of one trial: the base with the sampled values set at their keys."""
        data = copy.deepcopy(self.base)
        method = assignment.get("method")
        if method is not None:
            data.setdefault("method", {})["name"] = method
            data["method"]["hparams"] = dict(self._fixed_hparams(method))
        for name, value in assignment.items():
            if name in ("method", "grid_point"):
                continue
            if method is not None and is_method_hparam(name):  # either name (see the module docstring)
                data["method"]["hparams"][name.split(".")[2]] = value
            else:
                set_dotted(data, name, value)
        return run_configs.run_config_from_dict(data, file=self.file)

    def data_variants(self) -> list[RunConfig]:
        """The base run and one run per value of a searched ``data.train`` or ``data.benchmarks``: every
        placement of the data a trial can have (ldlpose.config.splits checks them before a search starts)."""
        return [self.base_run] + [self.run_config({p.name: v}) for p in self.params
                                  if p.key in ("data.train", "data.benchmarks") for v in p.choices]

    def _fixed_hparams(self, method: str) -> dict:
        base = self.base.get("method", {})
        return dict(base.get("hparams", {})) if base.get("name") == method else {}


# --- loading and validation ---------------------------------------------------------------------

def _param_from_spec(name: str, key: str, raw: Any, where: str, file: str | None) -> Param:
    spec = validate(ParamSpec, raw if isinstance(raw, dict) else {"value": raw}, file=file, prefix=where)
    given = {k for k in ("min", "max", "values", "value") if getattr(spec, k) is not None}
    d = spec.distribution
    if d is None:
        if "value" in given:
            d = "constant"
        elif "values" in given:
            d = "categorical"
        elif {"min", "max"} <= given:
            ints = isinstance(raw.get("min"), int) and isinstance(raw.get("max"), int)
            d = "int_uniform" if ints else "uniform"
        else:
            raise _err(file, where, "give value, values, or min and max (with an optional distribution)")
    if d == "constant":
        if given != {"value"}:
            raise _err(file, where, f"a constant takes only value, got {sorted(given)}")
        return Param(name, key, d, choices=(spec.value,))
    if d == "categorical":
        if given != {"values"}:
            raise _err(file, where, f"a categorical takes only values, got {sorted(given)}")
        if not spec.values:
            raise _err(file, f"{where}.values", "must list at least one value")
        if len({repr(v) for v in spec.values}) != len(spec.values):
            raise _err(file, f"{where}.values", f"lists a value twice: {spec.values}")
        return Param(name, key, d, choices=tuple(spec.values))
    if given != {"min", "max"}:
        raise _err(file, where, f"a {d} distribution takes min and max, got {sorted(given)}")
    low, high = spec.min, spec.max
    assert low is not None and high is not None  # both given
    if not low < high:
        raise _err(file, f"{where}.min", f"min ({low}) must be < max ({high})")
    if d.endswith("log_uniform") and low <= 0:
        raise _err(file, f"{where}.min", f"a log distribution needs min > 0, got {low}")
    if d.startswith("int") and (low != int(low) or high != int(high)):
        raise _err(file, where, f"an integer distribution needs integer min and max, got {low}, {high}")
    if spec.step is not None and d.endswith("log_uniform"):
        raise _err(file, f"{where}.step", "a log distribution cannot have a step")
    return Param(name, key, d, low=float(low), high=float(high), step=spec.step)


def _sections_as_mappings(data: dict, file: str | None) -> dict:
    """An empty section (``train:``) means its defaults, as in a run config; the checks below read the
    sections as mappings, so anything else is refused here, by key, before they do."""
    for key, field in RunConfig.model_fields.items():
        if key in data and data[key] is None and field.annotation is not str:
            data[key] = {}
        elif key != "name" and not isinstance(data.get(key, {}), dict):
            raise _err(file, key, f"must be a mapping of settings, got {type(data[key]).__name__}")
    method = data.get("method", {})
    if "hparams" in method and method["hparams"] is None:
        method["hparams"] = {}
    return data


def _err(file: str | None, key: str, message: str) -> ConfigError:
    return ConfigError(f"{file + ': ' if file else ''}{key}: {message}")


def _probe_values(param: Param) -> list:
    if param.distribution in ("constant", "categorical"):
        return list(param.choices)
    assert param.low is not None and param.high is not None  # a numeric distribution
    if param.distribution.startswith("int"):
        return [int(param.low), int(param.high)]
    return [param.low, param.high]


def _check_run_key(base: dict, param: Param, where: str, file: str | None) -> None:
    """Every value a parameter can take must make a valid run config at its key."""
    for value in _probe_values(param):
        data = copy.deepcopy(base)
        try:
            set_dotted(data, param.key, value)
            check_split_paths(run_configs.run_config_from_dict(data).data)  # a searched data.train too
        except ConfigError as err:
            message = str(err)
            if "unknown key" in message:
                raise _err(file, where, f"{param.key} is not a run-config key: {message}") from None
            raise _err(file, where, f"value {value!r} is invalid: {message}") from None


def _method_params(base: dict, raw: Any, where: str, file: str | None) -> dict[str, tuple[Param, ...]]:
    if not isinstance(raw, dict) or set(raw) != {"values"} or not isinstance(raw["values"], dict):
        raise _err(file, where, "the method is a categorical of sub-spaces: {values: {gldl: {...}, dadl: {...}}}")
    options = raw["values"]
    if not options:
        raise _err(file, f"{where}.values", "must list at least one method")
    result = {}
    for name, given in options.items():
        sub_where = f"{where}.values.{name}"
        if name not in HPARAMS:
            raise _err(file, sub_where, f"unknown method{closest(str(name), HPARAMS)}; "
                                        f"accepted: {', '.join(sorted(HPARAMS))}")
        subspace = given or {}
        if not isinstance(subspace, dict):
            raise _err(file, sub_where, f"expected a mapping of the method's hyperparameters, got {subspace!r}")
        model = HPARAMS[name]
        accepted = model.names()
        params = []
        for hp, spec in subspace.items():
            hp_where = f"{sub_where}.{hp}"
            if hp not in accepted:
                raise _err(file, hp_where, f"{name} has no hyperparameter {hp!r}{closest(hp, accepted)}; "
                                           f"accepted: {', '.join(accepted)}")
            param = _param_from_spec(f"method.{name}.{hp}", f"method.hparams.{hp}", spec, hp_where, file)
            for value in _probe_values(param):
                try:
                    validate(model, {hp: value}, file=name)
                except ConfigError as err:
                    raise _err(file, hp_where, f"value {value!r} is invalid: {err}") from None
            params.append(param)
        result[name] = tuple(params)
    return result


def _check_sampler(space: SearchSpace, file: str | None) -> None:
    name = space.search.sampler.name
    if name == "cmaes":
        every = list(space.params) + [p for ps in space.method_params.values() for p in ps]
        bad = [p.key for p in every if p.distribution in ("categorical",)] + (["method"] if space.method_params else [])
        if bad or not any(p.distribution in _NUMERIC for p in every):
            raise _err(file, "search.sampler.name",
                       "cmaes needs a space of numeric distributions only"
                       + (f"; categorical: {', '.join(bad)}" if bad else "; none is numeric") + " (use tpe)")
    if name == "grid":
        for p in list(space.params) + [p for ps in space.method_params.values() for p in ps]:
            try:
                p.grid_values()
            except ConfigError as err:
                raise _err(file, f"search.parameters.{p.key}", f"grid search needs discrete values ({err})") from None


def _check_objective(section: SearchSection, base: dict, file: str | None) -> None:
    """The objective chooses models, so it must be a validation metric; the run selects on it too."""
    where = "search.metric[0]" if section.objectives else "search.metric"
    try:
        run_configs.check_selection_metric(f"{where}.name", section.first_metric.name)
    except FieldError as err:
        raise _err(file, f"{where}.name", err.message) from None
    if section.first_metric.goal != "minimize":
        raise _err(file, f"{where}.goal", f"validation metrics are errors in degrees (lower is better): "
                                               f"use minimize, got {section.first_metric.goal!r}")
    given = base.get("train", {}).get("select_metric")
    if given is not None and given != section.first_metric.name:
        raise _err(file, "train.select_metric", f"must equal search.metric.name ({section.first_metric.name!r}) or be "
                                                f"left out: a trial is judged by the checkpoint its objective "
                                                f"selects, got {given!r}")
    base.setdefault("train", {})["select_metric"] = section.first_metric.name


def search_space_from_dict(data: dict, *, file: str | None = None, default_name: str = "search") -> SearchSpace:
    if not isinstance(data, dict):
        raise _err(file, "<top level>", "expected a mapping")
    data = _sections_as_mappings(copy.deepcopy(data), file)
    if "search" not in data:
        raise _err(file, "search", "is required: a search space is a run config plus a search section")
    raw = objectives.multi_objective_defaults(data.pop("search"), file)
    section = validate(SearchSection, raw, file=file, prefix="search")
    _check_objective(section, data, file)
    objectives.check_costs(section, file)
    objectives.check_champion_rule(section, file)
    base_run = run_configs.run_config_from_dict(data, file=file)  # the base must be valid on its own
    check_split_paths(base_run.data, file)
    params, method_params = [], {}
    for key, raw in section.parameters.items():
        where = f"search.parameters.{key}"
        if key == "method":
            method_params = _method_params(data, raw, where, file)
            continue
        if key.startswith("method.hparams.") and "method" in section.parameters:
            raise _err(file, where, "the method is searched: put its hyperparameters under "
                                    "search.parameters.method.values.<method>")
        param = _param_from_spec(key, key, raw, where, file)
        varies = param.distribution in _NUMERIC or len(param.choices) > 1
        if varies and (why := unsearchable(key, base_run.data.val)):
            raise _err(file, where, why)
        _check_run_key(data, param, where, file)
        params.append(param)
    name = section.name or default_name
    space = SearchSpace(name=name, base=data, search=section, params=tuple(params),
                        method_params=method_params, file=file)
    try:
        run_configs.check_name(name)
    except FieldError as err:
        raise _err(file, "search.name", err.message) from None
    if name.endswith(SMOKE_SUFFIX):
        raise _err(file, "search.name", f"{name!r} ends in {SMOKE_SUFFIX!r}, which names the smoke tests of "
                                        "searches (ldlpose search --smoke-test); choose another name")
    _check_sampler(space, file)
    space = replace(space, start_points=start_from.checked(space.search, space.params, space.method_params, file))
    if space.num_trials < 1:
        raise _err(file, "search.parameters", "the grid is empty")
    return space


def load_search_space(path: str | Path, overrides: Sequence[str] = ()) -> SearchSpace:
    """Read and validate a search-space YAML; ``--set`` overrides apply to the whole file."""
    path = Path(path)
    data = run_configs.apply_overrides(run_configs.read_yaml(path), list(overrides))
    return search_space_from_dict(data, file=str(path), default_name=path.stem)
