"""Config errors come from pydantic but read as ldlpose's own: ``file: dotted.key: rule, got value``.

One test per kind of rule (unknown key, wrong type, out-of-range bound, cross-field check) and for
the method section, a union discriminated on ``method.name``.
"""

import pytest

from ldlpose.config import run_config_from_dict
from ldlpose.config.hparams import HPARAMS, DadlHparams, GldlHparams
from ldlpose.errors import ConfigError
from ldlpose.search.space import search_space_from_dict


def error(data, file="run.yaml"):
    with pytest.raises(ConfigError) as info:
        run_config_from_dict(data, file=file)
    return str(info.value)


def test_an_unknown_key_names_the_dotted_key_the_closest_match_and_the_accepted_keys():
    assert error({"train": {"optimizer": {"lrr": 0.1}}}) == (
        "run.yaml: train.optimizer.lrr: unknown key (did you mean 'lr'?); "
        "accepted: name, lr, head_lr_mult, weight_decay, momentum")


def test_a_wrong_type_names_the_expected_type_and_the_value():
    assert error({"train": {"batch_size": 3.5}}) == "run.yaml: train.batch_size: expected an integer, got 3.5"
    assert error({"train": {"batch_size": True}}) == "run.yaml: train.batch_size: expected an integer, got True"
    assert error({"data": {"val_fraction": "0.1"}}) == "run.yaml: data.val_fraction: expected a number, got '0.1'"
    assert error({"data": {"augment": [0.5]}}) == "run.yaml: data.augment: expected a mapping, got [0.5]"
    assert error({"data": {"benchmarks": [1]}}) == "run.yaml: data.benchmarks[0]: expected a string, got 1"
    assert run_config_from_dict({"train": {"optimizer": {"lr": 1}}}).train.optimizer.lr == 1.0  # 1 is a number


def test_a_bound_names_the_rule_and_the_value():
    assert error({"train": {"optimizer": {"momentum": 1.0}}}) == (
        "run.yaml: train.optimizer.momentum: must be < 1, got 1.0")
    assert error({"data": {"max_train_samples": 0}}) == "run.yaml: data.max_train_samples: must be >= 1, got 0"
    # A hyperparameter's closed range comes with what the value means.
    assert error({"method": {"name": "gldl", "hparams": {"alpha": 11}}}) == (
        "run.yaml: method.hparams.alpha: must be in [0.0, 10.0] (weight of the degrees^2 MSE on the expected "
        "angle), got 11")
    assert error({"method": {"name": "hybrid", "hparams": {"aux_weights": [1, 1, 1, 1, 101]}}}).startswith(
        "run.yaml: method.hparams.aux_weights[4]: must be in [0.0, 100.0]")


def test_a_choice_lists_the_choices_and_suggests_the_closest():
    assert error({"resources": {"engine": "ray-train"}}) == (
        "run.yaml: resources.engine: must be one of 'auto', 'ray_train', 'in_process', got 'ray-train' "
        "(did you mean 'ray_train'?)")


def test_a_cross_field_check_names_the_key_relative_to_the_whole_file():
    assert error({"train": {"epochs": 2, "schedule": {"warmup_epochs": 2}}}) == (
        "run.yaml: train.schedule.warmup_epochs: must be < train.epochs (2), got 2")
    assert error({"resources": {"engine": "in_process", "workers": 2}}).startswith(
        "run.yaml: resources.engine: in_process trains one CPU worker")
    space = {"name": "s", "search": {"metric": []}}
    with pytest.raises(ConfigError, match=r"^s\.yaml: search\.metric: must list at least one objective$"):
        search_space_from_dict(space, file="s.yaml")


def test_a_key_of_another_method_fails_naming_the_key_and_this_method_with_a_suggestion():
    assert "sigma_yaw" in DadlHparams.model_fields and "sigma_yaw" not in GldlHparams.model_fields
    assert error({"method": {"name": "gldl", "hparams": {"sigma_yaw": 2.0}}}) == (
        "run.yaml: method.hparams.sigma_yaw: unknown hyperparameter 'sigma_yaw' of method 'gldl' "
        "(did you mean 'sigma'?); accepted: sigma, alpha, target, center, decode")
    # The same key is valid where the name picks the method that declares it.
    run = run_config_from_dict({"method": {"name": "dadl", "hparams": {"sigma_yaw": 2.0}}})
    assert isinstance(run.method.hparams, DadlHparams) and run.method.hparams.sigma_yaw == 2.0


def test_the_method_name_picks_the_member_and_an_unknown_name_is_suggested():
    assert error({"method": {"name": "dald"}}) == (
        "run.yaml: method.name: unknown method 'dald' (did you mean 'dadl'?); "
        "accepted: asg, dadl, gldl, hopenet, hybrid, rankpose, sixdrepnet, whenet")
    assert type(run_config_from_dict({}).method.hparams) is GldlHparams  # gldl when the name is left out
    for name, model in HPARAMS.items():
        assert type(run_config_from_dict({"method": {"name": name}}).method.hparams) is model


def test_a_preset_resolves_and_the_written_config_keeps_the_values_it_gave():
    run = run_config_from_dict({"method": {"name": "dadl", "hparams": {"preset": "biwi", "alpha": 0.5}}})
    assert run.method.hparams.sigma_yaw == 0.35 and run.method.hparams.alpha == 0.5
    written = run.to_dict()["method"]["hparams"]
    assert written == {"sigma_yaw": 0.35, "sigma_pitch": 0.6, "sigma_roll": 0.3, "alpha": 0.5, "beta": 2.0}
    assert run_config_from_dict(run.to_dict()) == run  # a written config loads back to the same config
    assert error({"method": {"name": "gldl", "hparams": {"preset": "biwi"}}}).startswith(
        "run.yaml: method.hparams.preset: unknown hyperparameter 'preset' of method 'gldl'")


def test_configs_are_frozen():
    run = run_config_from_dict({})
    with pytest.raises(ValueError, match="frozen"):
        run.train.epochs = 3  # type: ignore[misc]
