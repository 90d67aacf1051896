"""``search.start_from``: the configurations a search tries first, checked against its searched dimensions."""

from __future__ import annotations

from typing import Any

from ldlpose.errors import ConfigError, closest
from ldlpose.search.names import hparam_key, is_method_hparam
from ldlpose.search.sections import Param, SearchSection

__all__ = ["checked"]


def _err(file: str | None, key: str, message: str) -> ConfigError:
    return ConfigError(f"{file + ': ' if file else ''}{key}: {message}")


def checked(section: SearchSection, params: tuple[Param, ...], method_params: dict[str, tuple[Param, ...]],
            file: str | None) -> tuple[dict, ...]:
    """``search.start_from`` checked against the searched dimensions: each point names only searched
    keys (a method's own as ``method.hparams.<name>``, or as ``method.<method>.<name>`` as older searches'
    assignments named it, with ``method`` in the point when the method is searched) with values their
    distributions can take. Keys left out are sampled as usual."""
    given = section.start_from
    if not given:
        return ()
    if section.sampler.name == "grid":
        raise _err(file, "search.start_from", "a grid search evaluates every point of its grid; start_from is for "
                                             "the samplers that choose (tpe, random, cmaes, nsga2)")
    if len(given) > section.budget.trials:
        raise _err(file, "search.start_from", f"lists {len(given)} configurations, more than search.budget.trials "
                                             f"({section.budget.trials})")
    shared = {p.key: p for p in params if p.distribution != "constant"}
    points = []
    for i, raw in enumerate(given):
        where = f"search.start_from[{i}]"
        method = raw.get("method")
        if "method" in raw and not method_params:
            raise _err(file, f"{where}.method", "the method is not searched here (no search.parameters.method)")
        if method is not None and method not in method_params:
            raise _err(file, f"{where}.method", f"must be one of the searched methods "
                                                f"{', '.join(sorted(method_params))}, got {method!r}")
        own = {p.key: p for p in method_params.get(method, ()) if p.distribution != "constant"} if method else {}
        point = {}
        for given_key, value in raw.items():
            if given_key == "method":
                point[given_key] = value
                continue
            # a method-qualified name, copied from an older search's assignment, reads as its public name
            key = hparam_key(given_key) if is_method_hparam(given_key) and given_key.split(".")[1] == method \
                else given_key
            if key.startswith("method.hparams.") and method_params and method is None:
                raise _err(file, f"{where}.{key}", "names a method's hyperparameter: give the point's method too")
            param = own.get(key) or shared.get(key)
            fixed = [p for p in params if p.key == key and p.distribution == "constant"]
            if param is None and fixed:
                raise _err(file, f"{where}.{key}", f"is fixed at {fixed[0].choices[0]!r} by search.parameters, "
                                                   f"not searched")
            if param is None:
                searched = sorted(shared) + (["method"] if method_params else []) + sorted(own)
                raise _err(file, f"{where}.{key}", f"is not a searched parameter{closest(key, searched)}; "
                                                   f"searched: {', '.join(searched)}")
            problem = _outside(param, value)
            if problem:
                raise _err(file, f"{where}.{key}", f"{problem}, got {value!r}")
            point[param.name] = value
        points.append(point)
    return tuple(points)


def _outside(param: Param, value: Any) -> str | None:
    """Why ``value`` is not a value ``param`` can take, or None."""
    if param.distribution == "categorical":
        return None if value in param.choices else f"must be one of {list(param.choices)}"
    assert param.low is not None and param.high is not None  # numeric
    integer = param.distribution.startswith("int")
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        return f"must be {'an integer' if integer else 'a number'}"
    if not param.low <= value <= param.high:
        return f"must be in [{param.low:g}, {param.high:g}]"
    if param.step and abs(round((value - param.low) / param.step) * param.step + param.low - value) > 1e-9:
        return f"must be min + a multiple of step ({param.low:g} + k * {param.step:g})"
    return None
