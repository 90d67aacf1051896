"""Registry and hyperparameter validation: every mistake is a ConfigError that says how to fix it."""

import typing

import pytest

import ldlpose.methods as methods
from ldlpose.config.hparams import HPARAMS, Hparams, hparam
from ldlpose.errors import ConfigError
from ldlpose.methods._registry import register


def test_unknown_method_lists_the_methods_and_the_closest_match():
    with pytest.raises(ConfigError) as info:
        methods.create("gldll")
    message = str(info.value)
    assert "did you mean 'gldl'?" in message
    for name in methods.available():
        assert name in message


def test_unknown_hyperparameter_lists_the_accepted_ones_and_the_closest_match():
    with pytest.raises(ConfigError) as info:
        methods.create("gldl", sigam=2.0)
    message = str(info.value)
    assert "'sigam'" in message and "did you mean 'sigma'?" in message
    assert "alpha" in message and "target" in message


@pytest.mark.parametrize(
    "name, hparams, match",
    [
        ("gldl", {"sigma": -1.0}, r"^gldl: sigma: must be in \[0.1, 20.0\] \(Gaussian width .*\), got -1.0$"),
        ("dadl", {"sigma_roll": 0.0}, "sigma_roll"),
        ("hopenet", {"alpha": -0.5}, "alpha"),
        ("gldl", {"sigma": float("nan")}, "sigma"),
        ("gldl", {"sigma": "4"}, "sigma: expected a number, got '4'"),
        ("asg", {"num_points": 600.5}, "num_points: expected an integer, got 600.5"),
        ("rankpose", {"signed": 1}, "true or false"),
        ("hopenet", {"decode": "centre"},
         r"decode: must be one of 'center', 'edge', got 'centre' \(did you mean 'center'"),
        ("hybrid", {"aux_weights": (7, 5, 3, 1)}, "aux_weights: expected a list of 5 numbers"),
        ("hybrid", {"aux_weights": (7, 5, 3, 1, -1)}, r"aux_weights\[4\]"),
    ],
)
def test_invalid_values_are_rejected_with_the_rule(name, hparams, match):
    with pytest.raises(ConfigError, match=match):
        methods.create(name, **hparams)


class _ProbabilityHparams(Hparams):
    method = "toy"
    dropout: float = hparam(0.5, "a probability", range=(0.0, 1.0))


@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_a_probability_outside_zero_one_is_rejected(value):
    with pytest.raises(ConfigError, match=r"toy: dropout: must be in \[0.0, 1.0\] \(a probability\), got "):
        _ProbabilityHparams.build(dropout=value)
    assert _ProbabilityHparams.build(dropout=1).dropout == 1.0  # ints are accepted as floats


def test_direct_construction_validates_too():
    with pytest.raises(ConfigError):
        methods.hparams_class("gldl")(sigma=-4.0)


def test_a_duplicate_name_raises():
    existing = methods.method_class("gldl")
    with pytest.raises(ValueError, match="registered twice"):
        register("gldl")(existing)
    assert methods.method_class("gldl") is existing


def test_hparams_class_exposes_defaults_and_ranges_for_a_search():
    spec = methods.hparams_class("gldl").spec()
    assert spec["sigma"] == {"default": 4.0, "doc": spec["sigma"]["doc"], "range": (0.1, 20.0)}
    assert spec["target"]["choices"] == ("normalized", "literal")
    assert "bins of 3 degrees" in spec["sigma"]["doc"]


def test_dadl_presets_fill_values_and_explicit_values_win():
    biwi = methods.create("dadl", preset="biwi").hparams
    assert (biwi.sigma_yaw, biwi.sigma_pitch, biwi.sigma_roll, biwi.alpha, biwi.beta) == (0.35, 0.6, 0.3, 1.0, 2.0)
    aflw = methods.create("dadl", preset="aflw2000").hparams
    assert aflw == methods.create("dadl").hparams
    assert (aflw.sigma_yaw, aflw.sigma_pitch, aflw.sigma_roll, aflw.alpha, aflw.beta) == (1.0, 2.0, 0.5, 3.0, 3.0)
    assert methods.create("dadl", preset="biwi", alpha=0.5).hparams.alpha == 0.5
    with pytest.raises(ConfigError, match="did you mean 'biwi'"):
        methods.create("dadl", preset="biwii")
    with pytest.raises(ConfigError, match="preset"):
        methods.create("gldl", preset="biwi")  # only dadl has presets


def test_hparams_names_are_what_create_accepts():
    assert methods.hparams_names("dadl")[-1] == "preset"
    assert "preset" not in methods.hparams_names("gldl")
    for name in methods.available():
        fields = list(methods.hparams_class(name).model_fields)
        assert methods.hparams_names(name)[: len(fields)] == fields


def test_every_registered_method_is_a_member_of_the_method_union():
    assert sorted(HPARAMS) == methods.available()
    for name in methods.available():
        assert methods.hparams_class(name) is HPARAMS[name]


def test_each_hyperparameters_choices_are_what_its_type_accepts():
    for name, model in HPARAMS.items():
        for key, spec in model.spec().items():
            if "choices" not in spec:
                continue
            annotation = model.model_fields[key].annotation
            accepted = (False, True) if annotation is bool else typing.get_args(annotation)
            assert set(spec["choices"]) == set(accepted), f"{name}.{key}"
            assert spec["default"] in spec["choices"], f"{name}.{key}"
