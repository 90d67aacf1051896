"""The ``search`` section of a search-space YAML as strict models, and one searchable dimension (:class:`Param`).

Loading and checking a whole space, and compiling its parameters: :mod:`ldlpose.search.space`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from ldlpose.config.schema import FieldError, Strict
from ldlpose.errors import ConfigError

__all__ = ["BudgetSection", "ChampionSection", "ConfirmSection", "MetricSection", "Param", "ParamSpec",
           "ProfileSection", "SamplerSection", "SchedulerSection", "SearchSection"]


Distribution = Literal["uniform", "log_uniform", "int_uniform", "int_log_uniform", "categorical", "constant"]
_NUMERIC = ("uniform", "log_uniform", "int_uniform", "int_log_uniform")


class ParamSpec(Strict):
    distribution: Distribution | None = None
    min: float | None = None
    max: float | None = None
    step: float | None = Field(default=None, gt=0)
    values: list[Any] | None = None
    value: Any = None


@dataclass(frozen=True)
class Param:
    """One searchable dimension: ``name`` is the Optuna name, ``key`` the dotted run-config key."""

    name: str
    key: str
    distribution: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple = ()

    def grid_values(self) -> list:
        if self.distribution in ("constant", "categorical"):
            return list(self.choices)
        if self.distribution in ("int_uniform",) or self.step:
            assert self.low is not None and self.high is not None
            step = self.step or 1
            count = math.floor((self.high - self.low) / step + 1e-9) + 1
            values = [self.low + i * step for i in range(count)]
            return [int(v) for v in values] if self.distribution.startswith("int") else values
        raise ConfigError(f"{self.key}: a {self.distribution} distribution has no grid; give values or a step")


class MetricSection(Strict):
    name: str = "val_mae"
    goal: Literal["minimize", "maximize"] = "minimize"


class SamplerSection(Strict):
    # With several objectives tpe is Optuna's multi-objective TPE; nsga2 needs several objectives.
    name: Literal["tpe", "random", "cmaes", "grid", "nsga2"] = "tpe"
    seed: int | None = 0
    # TPE: model the parameters jointly and split conditional spaces into groups (docs/methods.md#tpe-groups).
    multivariate: bool = True
    group: bool = True
    n_startup_trials: int = Field(default=4, ge=0)
    # NSGA-II: trials per generation; by default half the budget (Optuna's 50 would leave a small
    # search in its random first generation).
    population_size: int | None = Field(default=None, ge=2)


class SchedulerSection(Strict):
    name: Literal["asha", "none"] = "asha"
    grace_period: int = Field(default=1, ge=1)  # epochs every trial gets
    reduction_factor: float = Field(default=2.0, gt=1)


class BudgetSection(Strict):
    trials: int = Field(default=8, ge=1)
    # At most this many trials at once; by default as many as the cluster's resources fit.
    concurrency: int | None = Field(default=None, ge=1)
    time_limit_s: float | None = Field(default=None, gt=0)
    max_failures_per_trial: int = Field(default=0, ge=0)  # driver restarts of a trial


class ConfirmSection(Strict):
    """Retrain the ``top_k`` best configurations with ``seeds`` new seeds each (0: no confirmation)."""

    top_k: int = Field(default=0, ge=0)
    seeds: int = Field(default=3, ge=2)


class ChampionSection(Strict):
    # validation: champion moves by the validation objective, only between versions selected on the
    # same validation rows. benchmark: by the test benchmark's MAE (explicitly asked for; recorded).
    # Or a written rule, "min val_mae where latency_ms <= 5" (ldlpose.selection.rules).
    rule: str = "validation"


class ProfileSection(Strict):
    """How a multi-objective search times each trial's model (ldlpose.inference.profile)."""

    batch_size: int = Field(default=8, ge=1)  # timed besides batch 1
    warmup: int = Field(default=3, ge=0)
    repeats: int = Field(default=20, ge=1)


def _metric_shape(value: Any) -> str:
    return "list" if isinstance(value, list) else "one"


# One objective, or a list of them (tagged so that an error names search.metric[i], not a union member).
Objectives = Annotated[
    Annotated[MetricSection, Tag("one")] | Annotated[list[MetricSection], Tag("list")],
    Discriminator(_metric_shape),
]


class SearchSection(Strict):
    name: str | None = None  # the search id; default: the file's stem
    # One objective, or a list: the first a validation metric, the others costs (latency_ms, ...).
    # After loading, ``metric`` is always the first objective and ``objectives`` the whole list
    # (empty for a single objective), so single-objective code reads ``metric`` as before.
    metric: Objectives = Field(default_factory=MetricSection)
    confirm: ConfirmSection = Field(default_factory=ConfirmSection)
    champion: ChampionSection = Field(default_factory=ChampionSection)
    sampler: SamplerSection = Field(default_factory=SamplerSection)
    scheduler: SchedulerSection = Field(default_factory=SchedulerSection)
    budget: BudgetSection = Field(default_factory=BudgetSection)
    parameters: dict[str, Any] = Field(default_factory=dict)
    # Configurations the sampler tries first, in order (a known-good setting, a paper's): each a
    # partial assignment by run-config key, the rest sampled (:func:`ldlpose.search.start_from.checked`).
    start_from: list[dict[str, Any]] = Field(default_factory=list)
    profile: ProfileSection = Field(default_factory=ProfileSection)
    objectives: list[MetricSection] = Field(default_factory=list)  # derived from a list metric, never read from YAML

    @model_validator(mode="after")
    def _first_objective_is_the_metric(self) -> SearchSection:
        if isinstance(self.metric, list):
            if not self.metric:
                raise FieldError("metric", "must list at least one objective")
            # The model is frozen; this is its own construction, finishing the two derived fields.
            object.__setattr__(self, "objectives", list(self.metric) if len(self.metric) > 1 else [])
            object.__setattr__(self, "metric", self.metric[0])
        if self.scheduler.name == "asha" and self.first_metric.name == "":
            raise FieldError("metric.name", "must name a reported metric")
        return self

    @property
    def first_metric(self) -> MetricSection:
        """The validation objective (what :attr:`metric` holds after loading)."""
        assert isinstance(self.metric, MetricSection)
        return self.metric
