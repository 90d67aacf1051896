"""search.start_from: configurations the sampler tries first, checked against the space at load.

The searcher is Tune's OptunaSearch as the search builds it (``tuning.searcher``); asking it for
trials needs no Ray cluster.
"""

from __future__ import annotations

import copy

import optuna
import pytest

from ldlpose.errors import ConfigError
from ldlpose.search import tuning
from ldlpose.search.space import search_space_from_dict

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = {
    "name": "t",
    "method": {"name": "gldl"},
    "model": {"backbone": "shufflenet_v2_x0_5"},
    "data": {"benchmarks": ["synth"]},
    "train": {"epochs": 4, "batch_size": 32},
    "search": {
        "name": "warm",
        "sampler": {"name": "tpe", "seed": 0, "n_startup_trials": 2},
        "budget": {"trials": 6},
        "parameters": {
            "train.optimizer.lr": {"distribution": "log_uniform", "min": 1e-3, "max": 1e-2},
            "train.batch_size": {"values": [32, 64]},
            "train.epochs": {"value": 4},
            "method": {"values": {
                # alpha lists differ, so Optuna names them method.gldl.alpha / method.hopenet.alpha
                "gldl": {"sigma": {"distribution": "log_uniform", "min": 1, "max": 4},
                         "alpha": {"values": [0.0, 0.1]}},
                "hopenet": {"alpha": {"values": [0.1, 1.0]}},
                "dadl": {"beta": {"distribution": "uniform", "min": 0.5, "max": 3, "step": 0.5}},
            }},
        },
    },
}


def space_with(start_from, **search):
    data = copy.deepcopy(SPACE)
    data["search"]["start_from"] = start_from
    data["search"].update(search)
    return search_space_from_dict(data, file="warm.yaml")


def test_first_trials_take_the_start_points_in_order_and_sample_the_rest():
    space = space_with([
        {"method": "hopenet", "method.hparams.alpha": 1.0, "train.optimizer.lr": 6.44e-3, "train.batch_size": 64},
        {"method": "gldl"},  # only the method: its sigma, alpha and the shared values are sampled
    ])
    searcher = tuning.searcher(space)
    first, second, third = (searcher.suggest(f"t{i}") for i in range(3))

    # Tune's config names every method hyperparameter method.hparams.<name>, whatever Optuna's name.
    assert first == {"method": "hopenet", "method.hparams.alpha": 1.0, "train.optimizer.lr": 6.44e-3,
                     "train.batch_size": 64, "train.epochs": 4}  # the constant joins every trial
    run = space.run_config(first)
    assert (run.method.name, run.method.hparams.alpha, run.train.optimizer.lr, run.train.batch_size) == \
        ("hopenet", 1.0, 6.44e-3, 64)

    assert second["method"] == "gldl"
    assert 1 <= second["method.hparams.sigma"] <= 4 and second["method.hparams.alpha"] in (0.0, 0.1)
    assert 1e-3 <= second["train.optimizer.lr"] <= 1e-2 and second["train.batch_size"] in (32, 64)

    # Without start points the same seed samples other first trials: the points above were not luck.
    plain = tuning.searcher(space_with([]))
    assert plain.suggest("t0") != first
    assert third != first  # the queue is used up: the sampler chooses again


def test_a_space_without_a_searched_method_takes_shared_values():
    data = copy.deepcopy(SPACE)
    del data["search"]["parameters"]["method"]
    data["search"]["start_from"] = [{"train.optimizer.lr": 2e-3}]
    space = search_space_from_dict(data)
    trial = tuning.searcher(space).suggest("t0")
    assert trial["train.optimizer.lr"] == 2e-3 and trial["train.batch_size"] in (32, 64)


def test_a_multi_objective_search_starts_from_its_points():
    space = space_with([{"method": "dadl", "method.hparams.beta": 1.5}],
                       metric=[{"name": "val_mae"}, {"name": "latency_ms"}])
    trial = tuning.searcher(space).suggest("t0")
    assert trial["method"] == "dadl" and trial["method.hparams.beta"] == 1.5


def test_the_shipped_quickstart_starts_from_its_known_best_configuration():
    from pathlib import Path

    from ldlpose.search.space import load_search_space

    space = load_search_space(Path(__file__).resolve().parents[2] / "search_spaces" / "quickstart.yaml")
    trial = tuning.searcher(space).suggest("t0")
    run = space.run_config(trial)
    assert (run.method.name, run.method.hparams.alpha, run.train.optimizer.lr) == ("hopenet", 0.01, 6.4e-3)


BAD = [
    ([{"method": "hopenet", "train.optimizer.lrr": 1e-3}], "search.start_from[0].train.optimizer.lrr",
     "is not a searched parameter (did you mean 'train.optimizer.lr'?)"),
    ([{"train.epochs": 4}], "search.start_from[0].train.epochs", "is fixed at 4 by search.parameters, not searched"),
    ([{"model.backbone": "resnet18"}], "search.start_from[0].model.backbone", "is not a searched parameter"),
    ([{"method": "asg"}], "search.start_from[0].method", "must be one of the searched methods dadl, gldl, hopenet"),
    ([{"method.hparams.sigma": 2.0}], "search.start_from[0].method.hparams.sigma", "give the point's method too"),
    ([{"method": "hopenet", "method.hparams.sigma": 2.0}], "search.start_from[0].method.hparams.sigma",
     "is not a searched parameter"),
    ([{"method": "gldl", "method.hparams.sigma": 8.0}], "search.start_from[0].method.hparams.sigma",
     "must be in [1, 4], got 8.0"),
    ([{"method": "gldl"}, {"method": "hopenet", "method.hparams.alpha": 0.5}],
     "search.start_from[1].method.hparams.alpha", "must be one of [0.1, 1.0], got 0.5"),
    ([{"train.optimizer.lr": "fast"}], "search.start_from[0].train.optimizer.lr", "must be a number, got 'fast'"),
    ([{"method": "dadl", "method.hparams.beta": 1.2}], "search.start_from[0].method.hparams.beta",
     "must be min + a multiple of step"),
    ([{}] * 7, "search.start_from", "lists 7 configurations, more than search.budget.trials (6)"),
]


@pytest.mark.parametrize(("start_from", "key", "text"), BAD)
def test_bad_start_points_name_the_file_the_point_and_the_key(start_from, key, text):
    with pytest.raises(ConfigError) as err:
        space_with(start_from)
    assert str(err.value).startswith(f"warm.yaml: {key}: "), err.value
    assert text in str(err.value)


def test_a_start_point_that_is_not_a_mapping_is_named():
    with pytest.raises(ConfigError, match=r"warm.yaml: search.start_from.0"):
        space_with(["hopenet"])


def test_a_grid_search_refuses_start_points():
    data = copy.deepcopy(SPACE)
    data["search"]["parameters"] = {"train.batch_size": {"values": [32, 64]}}
    data["search"]["sampler"] = {"name": "grid"}
    data["search"]["start_from"] = [{"train.batch_size": 64}]
    with pytest.raises(ConfigError, match=r"search.start_from: a grid search evaluates every point"):
        search_space_from_dict(data)


def test_a_fixed_method_has_no_method_key_to_start_from():
    data = copy.deepcopy(SPACE)
    del data["search"]["parameters"]["method"]
    data["search"]["start_from"] = [{"method": "gldl"}]
    with pytest.raises(ConfigError, match=r"search.start_from\[0\].method: the method is not searched here"):
        search_space_from_dict(data)
