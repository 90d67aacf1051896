"""Search-space files: strict validation, conditional method sub-spaces, grids, samplers."""

import copy

import optuna
import pytest
import yaml

from ldlpose.errors import ConfigError
from ldlpose.search import optuna_space
from ldlpose.search.space import load_search_space, search_space_from_dict

BASE = {
    "name": "t",
    "method": {"name": "gldl"},
    "model": {"backbone": "resnet18"},
    "data": {"benchmarks": ["synth"]},
    "train": {"epochs": 2},
    "search": {
        "name": "unit",
        "metric": {"name": "val_mae", "goal": "minimize"},
        "sampler": {"name": "tpe", "seed": 1},
        "budget": {"trials": 4},
        "parameters": {
            "train.optimizer.lr": {"distribution": "log_uniform", "min": 1e-4, "max": 1e-2},
            "model.backbone": {"values": ["resnet18", "mobilenet_v3_small"]},
            "method": {"values": {
                "gldl": {"sigma": {"distribution": "log_uniform", "min": 1, "max": 8}, "alpha": {"values": [0, 0.01]}},
                "dadl": {"beta": {"distribution": "uniform", "min": 0.5, "max": 3}},
                "asg": {"num_points": {"values": [300, 600]}},
                "hopenet": {},
            }},
        },
    },
}


def mutate(path, value, delete=False):
    data = copy.deepcopy(BASE)
    keys = path.split("|")
    node = data
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    if delete:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return data


P = "search|parameters|"
INVALID = [
    # (mutation path, value, text the error must contain)
    ("search|metrics", {"name": "val_mae"}, "search.metrics: unknown key (did you mean 'metric'?)"),
    ("search|metric|goal", "minimise", "search.metric.goal: must be one of"),
    ("search|metric|name", "accuracy", "search.metric.name: 'accuracy' is not a reported validation metric"),
    ("search|metric|name", "synth_mae", "search.metric.name: 'synth_mae' is measured on a test benchmark; a model is chosen on the validation split only"),
    ("search|metric|name", "aflw2000_maev", "search.metric.name: 'aflw2000_maev' is measured on a test benchmark"),
    ("search|metric|name", "biwi_p2_mae_yaw", "use val_mae_yaw"),
    ("search|metric|goal", "maximize", "search.metric.goal: validation metrics are errors"),
    ("train|select_metric", "val_maev", "train.select_metric: must equal search.metric.name ('val_mae')"),
    ("search|confirm|seeds", 1, "search.confirm.seeds: must be >= 2"),
    ("search|champion|rule", "test", "search.champion.rule: must be one of"),
    ("search|sampler|name", "bayes", "search.sampler.name: must be one of"),
    ("search|scheduler|reduction_factor", 1, "search.scheduler.reduction_factor: must be > 1"),
    ("search|scheduler|grace_period", 0, "search.scheduler.grace_period: must be >= 1"),
    ("search|budget|trials", 0, "search.budget.trials: must be >= 1"),
    ("search|budget|concurrency", "two", "search.budget.concurrency"),
    ("search|name", "bad name!", "search.name: must be letters"),
    ("search|name", "quick-smoke", "search.name: 'quick-smoke' ends in '-smoke', which names the smoke tests"),
    (P + "train.optimizer.lr", {"distribution": "log_uniform", "min": 0, "max": 1e-2}, "search.parameters.train.optimizer.lr.min: a log distribution needs min > 0"),
    (P + "train.optimizer.lr", {"distribution": "uniform", "min": 0.1, "max": 0.01}, "search.parameters.train.optimizer.lr.min: min (0.1) must be < max (0.01)"),
    (P + "train.optimizer.lr", {"distribution": "gaussian", "min": 0.1, "max": 0.2}, "search.parameters.train.optimizer.lr.distribution: must be one of"),
    (P + "train.optimizer.lr", {"distribution": "uniform", "min": 0.1}, "search.parameters.train.optimizer.lr: a uniform distribution takes min and max"),
    (P + "train.optimizer.lr", {"mean": 0.1}, "search.parameters.train.optimizer.lr.mean: unknown key"),
    (P + "train.optimizer.lr", {"distribution": "uniform", "min": -1.0, "max": 0.1}, "search.parameters.train.optimizer.lr: value -1.0 is invalid"),
    (P + "train.optimizer.lrr", {"values": [0.1]}, "search.parameters.train.optimizer.lrr: train.optimizer.lrr is not a run-config key"),
    (P + "train.epochs", {"distribution": "int_uniform", "min": 1.5, "max": 4}, "search.parameters.train.epochs: an integer distribution needs integer min and max"),
    (P + "train.epochs", {"values": ["five"]}, "search.parameters.train.epochs: value 'five' is invalid"),
    (P + "model.backbone", {"values": []}, "search.parameters.model.backbone.values: must list at least one value"),
    (P + "model.backbone", {"values": ["resnet18", "resnet18"]}, "search.parameters.model.backbone.values: lists a value twice"),
    (P + "model.backbone", {"values": ["resnet18", "vgg16"]}, "search.parameters.model.backbone: value 'vgg16' is invalid"),
    (P + "model.backbone", {"values": ["resnet18"], "value": "resnet18"}, "search.parameters.model.backbone: a constant takes only value"),
    (P + "method", {"values": ["gldl", "dadl"]}, "search.parameters.method: the method is a categorical of sub-spaces"),
    (P + "method|values|gldll", {}, "search.parameters.method.values.gldll: unknown method (did you mean 'gldl'?)"),
    (P + "method|values|gldl|sigmaa", {"values": [1.0]}, "search.parameters.method.values.gldl.sigmaa: gldl has no hyperparameter 'sigmaa'"),
    (P + "method|values|gldl|sigma", {"distribution": "uniform", "min": -1.0, "max": 2.0}, "search.parameters.method.values.gldl.sigma: value -1.0 is invalid"),
    (P + "method|values|dadl", [1, 2], "search.parameters.method.values.dadl: expected a mapping"),
    (P + "method.hparams.sigma", {"values": [1.0, 2.0]}, "search.parameters.method.hparams.sigma: the method is searched"),
    ("train|epochs", 0, "train.epochs: must be >= 1"),
    ("search|sampler|name", "cmaes", "search.sampler.name: cmaes needs a space of numeric distributions only"),
    ("search|sampler|name", "grid", "search.parameters.train.optimizer.lr: grid search needs discrete values"),
]


@pytest.mark.parametrize("path, value, expected", INVALID, ids=[f"{i:02d}" for i in range(len(INVALID))])
def test_invalid_space_files_name_the_offending_key(tmp_path, path, value, expected):
    file = tmp_path / "space.yaml"
    file.write_text(yaml.safe_dump(mutate(path, value)))
    with pytest.raises(ConfigError) as info:
        load_search_space(file)
    message = str(info.value)
    assert message.startswith(str(file)), message
    assert expected in message, message


@pytest.mark.parametrize("benchmark", ["synth", "aflw2000", "biwi", "biwi-p2"])
@pytest.mark.parametrize("metric", ["mae", "mae_yaw", "mae_pitch", "mae_roll", "maev", "geodesic"])
def test_no_test_benchmark_metric_can_be_the_objective(tmp_path, benchmark, metric):
    from ldlpose.metrics import metric_key

    file = tmp_path / "space.yaml"
    file.write_text(yaml.safe_dump(mutate("search|metric|name", metric_key(benchmark, metric))))
    with pytest.raises(ConfigError, match=r"search\.metric\.name: .* is measured on a test benchmark"):
        load_search_space(file)


def test_the_objective_selects_each_trials_checkpoint(tmp_path):
    file = tmp_path / "space.yaml"
    file.write_text(yaml.safe_dump(mutate("search|metric|name", "val_geodesic")))
    space = load_search_space(file)
    assert space.base_run.train.select_metric == "val_geodesic"
    assert space.run_config({}).train.select_metric == "val_geodesic"


def test_missing_search_section_is_named(tmp_path):
    file = tmp_path / "space.yaml"
    file.write_text(yaml.safe_dump(mutate("search", None, delete=True)))
    with pytest.raises(ConfigError, match="search: is required"):
        load_search_space(file)


def test_valid_space_loads_and_names_default_to_the_file(tmp_path):
    data = mutate("search|name", None, delete=True)
    file = tmp_path / "my-space.yaml"
    file.write_text(yaml.safe_dump(data))
    space = load_search_space(file)
    assert space.name == "my-space"
    assert {p.key for p in space.params} == {"train.optimizer.lr", "model.backbone"}
    assert set(space.method_params) == {"gldl", "dadl", "asg", "hopenet"}


def test_conditional_parameters_appear_only_in_their_methods_trials():
    space = search_space_from_dict(copy.deepcopy(BASE))
    study = optuna.create_study(sampler=optuna_space.sampler(space))
    seen = set()
    for _ in range(40):
        trial = study.ask()
        optuna_space.define_by_run(space)(trial)
        method = trial.params["method"]
        seen.add(method)
        own = {k for k in trial.params if k.startswith("method.")}
        # Named by run-config key: no two methods here declare the same hyperparameter.
        expected = {f"method.hparams.{hp}" for hp in {"gldl": ["sigma", "alpha"], "dadl": ["beta"],
                                                      "asg": ["num_points"], "hopenet": []}[method]}
        assert own == expected
        run = space.run_config(trial.params)
        assert run.method.name == method
        assert set(run.method.hparams.keys()) == {k.split(".")[2] for k in own}
        study.tell(trial, 1.0)
    assert seen == {"gldl", "dadl", "asg", "hopenet"}


def test_trial_values_land_at_their_dotted_keys():
    space = search_space_from_dict(copy.deepcopy(BASE))
    run = space.run_config({"train.optimizer.lr": 0.003, "model.backbone": "mobilenet_v3_small",
                            "method": "gldl", "method.gldl.sigma": 2.5, "method.gldl.alpha": 0.01})
    assert run.train.optimizer.lr == 0.003 and run.model.backbone == "mobilenet_v3_small"
    assert dict(run.method.hparams) == {"sigma": 2.5, "alpha": 0.01}
    assert run.train.epochs == 2  # untouched base values stay


def test_grid_expands_method_subgrids():
    data = copy.deepcopy(BASE)
    data["search"]["sampler"] = {"name": "grid"}
    data["search"]["parameters"] = {
        "train.optimizer.lr": {"values": [0.001, 0.01]},
        "method": {"values": {"gldl": {"alpha": {"values": [0, 0.01, 0.1]}}, "hopenet": {"alpha": {"values": [1, 2]}}}},
    }
    space = search_space_from_dict(data)
    grid = space.grid()
    assert len(grid) == 2 * 3 + 2 * 2 == space.num_trials
    study = optuna.create_study(sampler=optuna_space.sampler(space))
    seen = []
    study.optimize(lambda trial: seen.append(tuple(sorted(optuna_space.define_by_run(space)(trial).items()))) or 0.0,
                   n_trials=space.num_trials)
    assert len(seen) == len(set(seen)) == len(grid)  # every grid point exactly once


def test_cmaes_is_accepted_for_numeric_spaces():
    data = copy.deepcopy(BASE)
    data["search"]["sampler"] = {"name": "cmaes", "seed": 0}
    data["search"]["parameters"] = {"train.optimizer.lr": {"distribution": "log_uniform", "min": 1e-4, "max": 1e-2},
                                    "method.hparams.sigma": {"distribution": "uniform", "min": 1.0, "max": 4.0}}
    space = search_space_from_dict(data)
    assert type(optuna_space.sampler(space)).__name__ == "CmaEsSampler"
    run = space.run_config({"train.optimizer.lr": 0.001, "method.hparams.sigma": 2.0})
    assert run.method.hparams.given() == {"sigma": 2.0}


def test_shipped_spaces_are_valid():
    from pathlib import Path

    files = sorted(Path(__file__).resolve().parents[2].joinpath("search_spaces").glob("*.yaml"))
    assert files, "search_spaces/ is empty"
    for file in files:
        space = load_search_space(file)
        assert space.num_trials >= 1


def test_the_documented_complete_example_loads():
    """docs/search-spaces.md's complete example is a valid space, start points included."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "search-spaces.md").read_text()
    block = text.split("## A complete example", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    space = search_space_from_dict(yaml.safe_load(block), file="docs/search-spaces.md")
    assert space.name == "example" and space.num_trials == 12
    assert space.start_points == ({"method": "gldl", "method.gldl.sigma": 2.0, "train.optimizer.lr": 1e-3},)
