"""The seam that lets a benchmark run the production search without training (ldlpose.search.trial_hook)."""

from __future__ import annotations

import pytest

from ldlpose.errors import ConfigError
from ldlpose.search.trial_hook import ENV, trial_function


def training_trial(config, space, storage, prefix, points=None):  # stands for ldlpose.search.tuning.trial
    return "trained"


def test_unset_the_search_trains(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    assert trial_function(training_trial) is training_trial


def test_set_the_named_function_runs_instead_and_says_so(monkeypatch, capsys):
    monkeypatch.setenv(ENV, "os.path:join")
    import os.path

    assert trial_function(training_trial) is os.path.join
    assert "trials run os.path:join instead of training" in capsys.readouterr().err


@pytest.mark.parametrize(("spec", "says"), [
    ("os.path.join", "not of the form 'module:function'"),
    ("no_such_module_here:f", "cannot import 'no_such_module_here'"),
    ("os.path:no_such_function", "'os.path' has no function 'no_such_function'"),
])
def test_a_wrong_name_is_refused_naming_the_variable_and_the_fix(monkeypatch, spec, says):
    monkeypatch.setenv(ENV, spec)
    with pytest.raises(ConfigError) as err:
        trial_function(training_trial)
    assert f"{ENV}={spec!r}" in str(err.value) and says in str(err.value)
    assert f"unset {ENV} to train" in str(err.value)
