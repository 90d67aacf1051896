"""``train.accel``, the GPU fast paths, checked on the CPU: each switch runs the real training loop
and ends within float rounding of the run without it, checkpoints keep their format, and bad values
are errors naming the key. What each switch buys is measured by bench/gpu.sh, on a GPU."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_run

from ldlpose import methods
from ldlpose.config import AccelConfig, run_config_from_dict
from ldlpose.errors import ConfigError, LdlposeError
from ldlpose.models import build_model
from ldlpose.train import accel
from ldlpose.train.checkpoints import load_checkpoint
from ldlpose.train.loop import unwrap
from ldlpose.train.run import fit

CPU, CUDA = torch.device("cpu"), torch.device("cuda")  # a device object needs no GPU


def test_auto_means_on_for_cuda_and_off_on_the_cpu():
    defaults = AccelConfig()
    assert accel.resolve(defaults, CPU) == accel.Accel(channels_last=False, cudnn_benchmark=False, compile_mode=None)
    assert accel.resolve(defaults, CUDA) == accel.Accel(channels_last=True, cudnn_benchmark=True, compile_mode=None)
    assert accel.resolve(defaults, CUDA).names == "channels_last+cudnn_benchmark"
    assert accel.resolve(defaults, CPU).names == "none"
    forced = AccelConfig(channels_last=True, cudnn_benchmark=False, compile=True)
    assert accel.resolve(forced, CPU) == accel.Accel(channels_last=True, cudnn_benchmark=False, compile_mode="default")
    off = accel.resolve(AccelConfig(channels_last=False, compile="reduce-overhead"), CUDA)
    assert (off.channels_last, off.compile_mode, off.names) == (False, "reduce-overhead",
                                                                "cudnn_benchmark+compile:reduce-overhead")


@pytest.mark.parametrize(("section", "message"), [
    ({"channels_last": "yes"}, r"train\.accel\.channels_last: must be one of 'auto', true, false, got 'yes'$"),
    ({"cudnn_benchmark": 1}, r"train\.accel\.cudnn_benchmark: must be one of 'auto', true, false, got 1$"),
    ({"compile": "reduce_overhead"}, (r"train\.accel\.compile: must be one of false, true, 'default', "
                                      r"'reduce-overhead', 'max-autotune', got 'reduce_overhead' "
                                      r"\(did you mean 'reduce-overhead'\?\)$")),
    ({"compile": 0}, r"train\.accel\.compile: must be one of false, true, .*got 0$"),
    ({"channel_last": True}, r"train\.accel\.channel_last: unknown key \(did you mean 'channels_last'\?\)"),
])
def test_bad_values_are_errors_naming_the_file_and_key(section, message):
    with pytest.raises(ConfigError, match=r"^run\.yaml: " + message):
        run_config_from_dict({"train": {"accel": section}}, file="run.yaml")


def test_yaml_on_and_off_are_the_booleans_and_the_section_round_trips():
    import yaml

    section = yaml.safe_load("channels_last: on\ncudnn_benchmark: off\ncompile: max-autotune")
    run = run_config_from_dict({"train": {"accel": section}})
    assert run.train.accel == AccelConfig(channels_last=True, cudnn_benchmark=False, compile="max-autotune")
    assert run.to_dict()["train"]["accel"] == {"channels_last": True, "cudnn_benchmark": False,
                                               "compile": "max-autotune"}
    assert run_config_from_dict(run.to_dict()) == run  # a stored run config (checkpoint, trial) reloads
    assert run_config_from_dict({}).train.accel == AccelConfig(channels_last="auto", cudnn_benchmark="auto",
                                                               compile=False)


def _channels_last(t: torch.Tensor) -> bool:
    return t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()


def test_channels_last_changes_the_layout_not_the_outputs():
    method = methods.create("gldl")
    torch.manual_seed(0)
    plain = build_model(method, "shufflenet_v2_x0_5").eval()
    torch.manual_seed(0)
    fast = accel.to_memory_format(build_model(method, "shufflenet_v2_x0_5"),
                                  accel.resolve(AccelConfig(channels_last=True), CPU)).eval()
    conv = fast.backbone.conv1[0]
    seen = []
    conv.register_forward_pre_hook(lambda module, args: seen.append(_channels_last(args[0])))
    assert _channels_last(conv.weight)
    images = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(fast(images), plain(images), atol=1e-4, rtol=1e-4)
    assert seen == [True]  # the network was handed channels-last images
    assert all(v.is_contiguous() for v in accel.dense(fast.state_dict()).values())


# --- the training loop with each switch, against the same run without it --------------------------

def _run(synth_root, **section):
    return tiny_run(synth_root, train__epochs=2, data__max_train_samples=32, train__accel=section)


@pytest.fixture(scope="module")
def baseline(synth_root, tmp_path_factory):
    return fit(_run(synth_root), storage_path=str(tmp_path_factory.mktemp("accel")), name="baseline")


@pytest.fixture
def keep_cudnn_flag(monkeypatch):
    """A switch sets a process-wide flag; the tests after this one see it as it was."""
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", torch.backends.cudnn.benchmark)


def _assert_same_numbers(outcome, baseline) -> None:
    """Equal up to float rounding: the fast paths reorder arithmetic (other kernels, fused operations),
    so after 4 steps the loss and the MAEs differ in their last digits, not more."""
    assert [h["epoch"] for h in outcome_history(outcome)] == [1, 2]
    assert outcome.metrics["train_loss"] == pytest.approx(baseline.metrics["train_loss"], rel=0.01)
    for key in ("val_mae", "selected_val_mae", "selected_synth_mae", "selected_synth_geodesic"):
        assert outcome.metrics[key] == pytest.approx(baseline.metrics[key], abs=0.05), key
    assert outcome.metrics["selected_epoch"] == baseline.metrics["selected_epoch"]


def outcome_history(outcome) -> list[dict]:
    return load_checkpoint(outcome.checkpoint_path)["history"]


def _assert_same_checkpoint_format(outcome, baseline) -> None:
    """Same keys (no ``_orig_mod.`` from torch.compile), shapes and contiguous layout; loadable into a
    plain network as export and predict load it."""
    ours, theirs = load_checkpoint(outcome.checkpoint_path), load_checkpoint(baseline.checkpoint_path)
    assert {k: v.shape for k, v in ours["model"].items()} == {k: v.shape for k, v in theirs["model"].items()}
    assert all(v.is_contiguous() for v in ours["model"].values())
    build_model(methods.create("gldl"), "shufflenet_v2_x0_5").load_state_dict(ours["model"], strict=True)


@pytest.mark.slow
@pytest.mark.parametrize("switch", ["channels_last", "cudnn_benchmark"])
def test_each_switch_trains_to_the_numbers_of_the_run_without_it(switch, synth_root, baseline, tmp_path,
                                                                  keep_cudnn_flag):
    seen: list[tuple[bool, bool]] = []  # (a convolution's input is channels-last, cuDNN autotuning on)

    def record(module, args):
        if isinstance(module, torch.nn.Conv2d):
            seen.append((_channels_last(args[0]), torch.backends.cudnn.benchmark))

    hook = torch.nn.modules.module.register_module_forward_pre_hook(record)
    try:
        outcome = fit(_run(synth_root, **{switch: True}), storage_path=str(tmp_path), name=switch)
    finally:
        hook.remove()
    # ShuffleNet's channel shuffle (a view and a transpose) hands some convolutions a plain tensor
    # again; channels-last or not, it is the same network.
    assert any(s[0] for s in seen) == (switch == "channels_last")
    assert {s[1] for s in seen} == {switch == "cudnn_benchmark"}
    _assert_same_numbers(outcome, baseline)
    _assert_same_checkpoint_format(outcome, baseline)


@pytest.mark.slow
def test_compile_trains_to_the_numbers_of_the_run_without_it(synth_root, baseline, tmp_path):
    """The suite's one compile (a training graph and an evaluation graph)."""
    from torch._dynamo.utils import counters  # Dynamo's own tally of the graphs it compiled

    graphs = counters["stats"]["unique_graphs"]
    outcome = fit(_run(synth_root, compile=True), storage_path=str(tmp_path), name="compiled")
    assert counters["stats"]["unique_graphs"] > graphs  # the loop ran compiled
    _assert_same_numbers(outcome, baseline)
    _assert_same_checkpoint_format(outcome, baseline)


def test_unwrap_reaches_the_network_under_compile_and_its_state_keeps_its_keys():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten())
    wrapped = torch.compile(net)  # lazy: nothing is compiled until it is called
    assert unwrap(wrapped) is net
    assert list(unwrap(wrapped).state_dict()) == ["0.weight", "0.bias"]


def test_compile_without_a_compiler_fails_before_training_saying_what_to_do(synth_root, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("CXX", raising=False)
    with pytest.raises(LdlposeError, match=r"train\.accel\.compile: torch\.compile on cpu needs a C\+\+ compiler "
                                           r"\(\$CXX or one of g\+\+, clang\+\+, c\+\+ on PATH\), found none: "
                                           r"install one or set train\.accel\.compile: false"):
        fit(_run(synth_root, compile=True), storage_path=str(tmp_path), name="no-compiler")
    assert not list((tmp_path / "no-compiler").rglob("checkpoint_*"))  # it failed before the first epoch
