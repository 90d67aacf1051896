"""Which function a search's Tune trials run: the training trial, or one named by ``LDLPOSE_TRIAL_FUNCTION``.

A seam for benchmarks of the control plane (bench/control_plane.py): with
``LDLPOSE_TRIAL_FUNCTION=module:function`` in the search driver's environment, Tune runs that
function in each trial, with the arguments the training trial takes (``config, space, storage,
prefix, points``), instead of training. Everything around it is the production search: the
searcher, the scheduler, the tracking callback and its outbox, the finalisation of finished
trials, the registration. The function must be importable on every Ray worker (PYTHONPATH).
Unset, as it always is outside such a benchmark, searches train.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable

from ldlpose.errors import ConfigError

ENV = "LDLPOSE_TRIAL_FUNCTION"


def trial_function(training_trial: Callable) -> Callable:
    """``training_trial``, or the function ``LDLPOSE_TRIAL_FUNCTION`` names (said once on stderr)."""
    spec = os.environ.get(ENV, "").strip()
    if not spec:
        return training_trial
    module_name, _, name = spec.partition(":")
    fix = f"set it to 'module:function' (a function importable on every Ray worker), or unset {ENV} to train"
    if not module_name or not name:
        raise ConfigError(f"{ENV}={spec!r}: not of the form 'module:function'; {fix}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(f"{ENV}={spec!r}: cannot import {module_name!r} ({err}); {fix}") from None
    function = getattr(module, name, None)
    if not callable(function):
        raise ConfigError(f"{ENV}={spec!r}: {module_name!r} has no function {name!r}; {fix}")
    # Nobody should mistake such a search for one that trained.
    print(f"ldlpose: trials run {spec} instead of training ({ENV})", file=sys.stderr, flush=True)
    return function
