"""What every registered method must satisfy; a new method is covered by being registered.

Each method runs with its defaults (the recommended variant) and, where it has one, with its
``faithful`` settings (shapes, loss and determinism only: faithful decodings are biased by design).
"""

import itertools
import subprocess
import sys

import pydantic
import pytest
import torch

import ldlpose.methods as methods
from ldlpose.errors import ConfigError
from ldlpose.geometry import flip_angles

NAMES = methods.available()
VARIANTS = [pytest.param(name, {}, id=name) for name in NAMES] + [
    pytest.param(name, dict(methods.method_class(name).faithful), id=f"{name}-faithful")
    for name in NAMES
    if methods.method_class(name).faithful
]
EDGE_MARGIN_DEG = 40.0  # Gaussian labels (sigma 4 bins = 12 degrees) are biased near the range ends


def sample_angles(method, n=64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    lo = torch.tensor([low + EDGE_MARGIN_DEG for low, _ in method.valid_range_deg])
    hi = torch.tensor([high - EDGE_MARGIN_DEG for _, high in method.valid_range_deg])
    return lo + (hi - lo) * torch.rand(n, 3, generator=gen)


def make_batch(angles):
    return {"angles_deg": angles, "subject": torch.arange(len(angles)) // 2}  # consecutive pairs


def wrapped_error(a, b):
    return torch.remainder(a - b + 180.0, 360.0) - 180.0


def test_every_method_module_registers_its_method_and_the_run_config_accepts_it():
    """Adding a method is one module and its import line: each public module of ``ldlpose.methods``
    registers one method, whose hyperparameter model the run config's ``method`` section accepts."""
    import pkgutil

    from ldlpose.config import run_config_from_dict
    from ldlpose.config.hparams import HPARAMS, SECTIONS

    modules = {m.name for m in pkgutil.iter_modules(methods.__path__) if not m.name.startswith("_")}
    registered = {methods.method_class(name).__module__.rsplit(".", 1)[1] for name in NAMES}
    assert registered == modules, "a method module that registers nothing, or one not imported by ldlpose.methods"
    assert len(NAMES) == len(modules) >= 8  # the eight of docs/methods.md, at least
    assert NAMES == HPARAMS.names() == sorted(SECTIONS)
    for name in NAMES:
        run = run_config_from_dict({"method": {"name": name}})
        assert run.method.name == name and type(run.method.hparams) is methods.hparams_class(name)


@pytest.mark.parametrize("name", NAMES)
def test_hyperparameters_are_documented_frozen_and_valid(name):
    cls = methods.hparams_class(name)
    defaults = cls()
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        defaults.__setattr__("x", 1)
    for field, spec in cls.spec().items():
        assert spec["doc"], f"{name}.{field} has no doc"
        assert ("range" in spec) != ("choices" in spec), f"{name}.{field}"
        assert spec["default"] == getattr(defaults, field)
    faithful = methods.method_class(name).faithful
    assert set(faithful) <= set(cls.model_fields)
    assert methods.create(name, **defaults.to_dict()).hparams == defaults  # round trip of a resolved config


@pytest.mark.parametrize("name, hparams", VARIANTS)
def test_layout_tiles_the_outputs_and_head_produces_them(name, hparams):
    method = methods.create(name, **hparams)
    slices = sorted(method.layout.values(), key=lambda s: s.start)
    assert slices[0].start == 0 and slices[-1].stop == method.num_outputs
    assert all(a.stop == b.start for a, b in itertools.pairwise(slices))
    out = method.head(16)(torch.randn(5, 16))
    assert out.shape == (5, method.num_outputs)
    assert method.decode(out).shape == (5, 3)
    assert isinstance(method.needs_pairs, bool)


# Outputs a faithful mode leaves untrained on purpose, as the released code does.
UNTRAINED = {("hybrid", "roll_2"): {"roll_bug": True}}  # the released roll loss adds pitch's 2-bin CE


@pytest.mark.parametrize("name, hparams", VARIANTS)
def test_loss_is_finite_and_reaches_every_output(name, hparams):
    method = methods.create(name, **hparams)
    angles = sample_angles(method, n=16)
    outputs = (method.outputs_for(angles) + torch.randn(16, method.num_outputs)).requires_grad_()
    loss, parts = method.loss(outputs, make_batch(angles))
    assert loss.ndim == 0 and torch.isfinite(loss)
    for key, value in parts.items():
        assert not torch.is_tensor(value) or not value.requires_grad, key
        assert torch.isfinite(torch.as_tensor(value)), key
    loss.backward()
    assert torch.isfinite(outputs.grad).all()
    for key, part in method.layout.items():
        switch = UNTRAINED.get((name, key))
        if switch is not None and all(hparams.get(k) == v for k, v in switch.items()):
            assert outputs.grad[:, part].abs().sum() == 0, f"{key} should be untrained under {switch}"
        else:
            assert outputs.grad[:, part].abs().sum() > 0, f"no gradient reaches {key}"


@pytest.mark.parametrize("name", NAMES)
def test_decoding_own_targets_recovers_the_angles(name):
    method = methods.create(name)
    angles = sample_angles(method, n=200, seed=1)
    tolerance = method.target_resolution_deg + 1e-3 if method.target_resolution_deg else 0.5
    decoded = method.decode(method.outputs_for(angles))
    assert wrapped_error(decoded, angles).abs().max() <= tolerance
    if method.has_distributions:
        for key, dist in method.reference_targets(angles).items():
            assert (dist >= 0).all() and torch.allclose(dist.sum(-1), torch.ones(len(angles))), key
        bias = methods.expectation_bias(name, angles)
        assert wrapped_error(bias, 0.0).abs().max() <= tolerance


@pytest.mark.parametrize("name", NAMES)
def test_flipped_outputs_decode_to_flipped_angles(name):
    method = methods.create(name)
    angles = sample_angles(method, n=32, seed=2)
    outputs = method.outputs_for(angles) + 0.3 * torch.randn(32, method.num_outputs)
    flipped = method.flip_outputs(outputs)
    assert flipped.shape == outputs.shape
    error = wrapped_error(method.decode(flipped), flip_angles(method.decode(outputs)))
    assert error.abs().max() < 1e-3


@pytest.mark.parametrize("name, hparams", VARIANTS)
def test_methods_are_deterministic(name, hparams):
    first, second = methods.create(name, **hparams), methods.create(name, **hparams)
    assert first.hparams == second.hparams
    torch.manual_seed(3)
    head_a = first.head(8)
    torch.manual_seed(3)
    head_b = second.head(8)
    for a, b in zip(head_a.parameters(), head_b.parameters()):
        assert torch.equal(a, b)
    angles = sample_angles(first, n=8, seed=4)
    outputs = torch.randn(8, first.num_outputs, generator=torch.Generator().manual_seed(5))
    batch = make_batch(angles)
    assert torch.equal(first.loss(outputs, batch)[0], second.loss(outputs, batch)[0])
    assert torch.equal(first.decode(outputs), second.decode(outputs))
    assert torch.equal(first.flip_outputs(outputs), second.flip_outputs(outputs))


def test_only_rankpose_needs_pairs():
    assert [name for name in NAMES if methods.create(name).needs_pairs] == ["rankpose"]


@pytest.mark.parametrize("name", [n for n in NAMES if not methods.method_class(n).has_distributions])
def test_expectation_bias_refuses_methods_without_distributions(name):
    with pytest.raises(ConfigError, match="no label distribution"):
        methods.expectation_bias(name, torch.zeros(1, 3))


def test_wrong_output_shape_is_reported():
    method = methods.create("hopenet")
    with pytest.raises(ValueError, match=r"\(N, 198\)"):
        method.decode(torch.zeros(2, 197))


def test_importing_methods_does_not_import_torch_ray_or_mlflow_until_a_method_computes():
    """Loading a config imports every method module (their hyperparameter models live there)."""
    code = ("import sys, ldlpose.methods as m; print(sorted({'torch', 'ray', 'mlflow'} & set(sys.modules)));"
            "m.create('rankpose').head(4); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "True"]
