"""Old module paths (before the package was split by layer) still answer, for saved searches' pickles."""

from __future__ import annotations

import importlib
import pickle
import sys

import pytest

from ldlpose._moved import MOVED


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_path_is_the_module_at_its_new_one_and_warns(old):
    new = importlib.import_module(MOVED[old])
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=MOVED[old]):
        aliased = importlib.import_module(old)
    assert aliased is new  # one module object: a class loaded by either path is the same class
    assert aliased.__spec__.name == MOVED[old]  # it keeps its own identity


def test_a_pickle_that_names_a_class_by_its_old_path_loads():
    from ldlpose.config.hparams import GldlHparams

    hparams = GldlHparams(sigma=2.5)
    # Protocol 0 writes ``c<module>\n<name>\n``. The model lives beside its method now
    # (ldlpose.methods.gldl); the same pickle written before the split names ldlpose.hparams, and one
    # written between the split and that move names ldlpose.config.hparams.
    today = pickle.dumps(hparams, protocol=0)
    assert b"cldlpose.methods.gldl\nGldlHparams\n" in today
    between = today.replace(b"ldlpose.methods.gldl\n", b"ldlpose.config.hparams\n")
    assert pickle.loads(between) == hparams
    before = today.replace(b"ldlpose.methods.gldl\n", b"ldlpose.hparams\n")
    assert b"ldlpose.hparams\n" in before
    sys.modules.pop("ldlpose.hparams", None)
    with pytest.warns(DeprecationWarning):
        loaded = pickle.loads(before)
    assert type(loaded) is GldlHparams and loaded == hparams


def test_an_unknown_old_path_is_still_an_import_error():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("ldlpose.no_such_module")
