"""The interface every LDL method implements (see the package docstring for the conventions)."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from ldlpose._lazy import LazyModule
from ldlpose.methods._hparams import Hparams as BaseHparams

if TYPE_CHECKING:
    import torch
    from torch import nn
else:  # torch loads on first use (ldlpose._lazy)
    torch = LazyModule("torch")
    nn = LazyModule("torch.nn")

ANGLES = ("yaw", "pitch", "roll")
Batch = Mapping[str, "torch.Tensor"]  # strings: naming the type must not import torch
LossParts = dict[str, "torch.Tensor"]


class Method(abc.ABC):
    """A head layout, its loss, its decoding and its label distributions, for one method."""

    name: ClassVar[str] = ""  # set by the registry
    Hparams: ClassVar[type[BaseHparams]] = BaseHparams  # each method sets its own
    hparams: BaseHparams  # an instance of the method's Hparams; subclasses say which
    needs_pairs: ClassVar[bool] = False
    has_distributions: ClassVar[bool] = True
    faithful: ClassVar[Mapping[str, Any]] = {}
    """Hyperparameters that reproduce the paper or reference code (the defaults are the recommended variant)."""
    valid_range_deg: ClassVar[tuple[tuple[float, float], ...]] = ((-99.0, 99.0),) * 3
    """Per yaw/pitch/roll, the angles the outputs can represent."""

    def __init__(self, hparams: BaseHparams | None = None) -> None:
        self.hparams = hparams if hparams is not None else self.Hparams()
        assert isinstance(self.hparams, self.Hparams), f"{self.name} takes {self.Hparams.__name__}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.hparams!r})"

    # --- head -----------------------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def layout(self) -> dict[str, slice]:
        """Name -> slice of the output vector, in order, covering it without gaps."""

    @property
    def num_outputs(self) -> int:
        return max(s.stop for s in self.layout.values())

    def head(self, in_features: int) -> nn.Module:
        """Maps a backbone's pooled (N, in_features) feature to the (N, num_outputs) outputs."""
        return nn.Linear(in_features, self.num_outputs)

    def split(self, outputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """The outputs cut into the named parts of :attr:`layout`."""
        if outputs.ndim != 2 or outputs.shape[1] != self.num_outputs:
            raise ValueError(
                f"{self.name} expects outputs of shape (N, {self.num_outputs}), got {tuple(outputs.shape)}"
            )
        return {key: outputs[:, part] for key, part in self.layout.items()}

    # --- training and inference -----------------------------------------------------------------

    @abc.abstractmethod
    def loss(self, outputs: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, LossParts]:
        """Scalar loss and its named, unweighted, detached parts."""

    @abc.abstractmethod
    def decode(self, outputs: torch.Tensor) -> torch.Tensor:
        """(N, 3) yaw/pitch/roll in degrees."""

    @abc.abstractmethod
    def targets(self, angles_deg: torch.Tensor) -> dict[str, torch.Tensor]:
        """What the method trains towards for (N, 3) angles in degrees. (ASG's also take the predicted
        bandwidths; code for every method calls :meth:`reference_targets`.)"""

    @abc.abstractmethod
    def flip_outputs(self, outputs: torch.Tensor) -> torch.Tensor:
        """The outputs for the horizontally mirrored image: decode(flip) == flip_angles(decode).
        Flip test-time augmentation (ldlpose.evaluation.harness.flip_tta_outputs) maps a mirror's outputs
        back with it."""

    @abc.abstractmethod
    def outputs_for(self, angles_deg: torch.Tensor) -> torch.Tensor:
        """Outputs reproducing the method's own targets for these angles (logits = log targets): what the
        conformance suite (tests/methods) decodes and flips without a trained network."""

    # --- label distributions (methods with has_distributions) -----------------------------------

    @property
    def target_resolution_deg(self) -> float:
        """How far decoding the method's own targets may fall from the angle: 0 where targets are
        centred on the exact angle, half a bin where they sit on bins."""
        return 0.0

    def reference_targets(self, angles_deg: torch.Tensor) -> dict[str, torch.Tensor]:
        """The targets without per-sample extras (used by outputs_for and expectation_bias)."""
        return self.targets(angles_deg)

    def decode_distributions(self, distributions: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(N, 3) angles in degrees that the given probability distributions decode to."""
        raise NotImplementedError(f"{self.name} has no label distributions")


def batch_angles(batch: Batch) -> torch.Tensor:
    """The (N, 3) ground-truth yaw/pitch/roll of a batch, checked."""
    if "angles_deg" not in batch:
        raise ValueError(f"a batch must carry 'angles_deg' (N, 3); it has {sorted(batch)}")
    angles = batch["angles_deg"]
    if angles.ndim != 2 or angles.shape[1] != 3:
        raise ValueError(f"batch['angles_deg'] must have shape (N, 3), got {tuple(angles.shape)}")
    return angles


def mse_deg2(pred_deg: torch.Tensor, true_deg: torch.Tensor) -> torch.Tensor:
    """Batch-mean squared error in degrees^2, summed over the angles (the columns)."""
    return ((pred_deg - true_deg.to(pred_deg)) ** 2).mean(dim=0).sum()


def tensor_sum(terms: Iterable[torch.Tensor]) -> torch.Tensor:
    """``sum(terms)``, typed as the tensor it is for one term or more (the built-in's start, 0, is an int)."""
    total = sum(terms)
    assert isinstance(total, torch.Tensor), "no terms to sum"
    return total


def detached(parts: Mapping[str, torch.Tensor]) -> LossParts:
    return {key: value.detach() for key, value in parts.items()}
