"""Shared machinery of the bin methods (HopeNet, GLDL, DADL, Hybrid, WHENet).

Their head is one softmax over angle bins per named part; the angle is decoded as the expectation
over bin centres (``decode="center"``, recommended) or left edges (``"edge"``, the papers'
``3 * E[i] - 99``; docs/methods.md#bins). Every scheme used here is symmetric about 0, so reversing the bins
negates a distribution's angle: the flip reverses the yaw and roll parts and keeps pitch (exact for
centre decoding; edge decoding is half a bin low, so its mirror decodes a whole bin off).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol, cast

from ldlpose._lazy import LazyModule
from ldlpose.geometry import BinScheme
from ldlpose.methods._base import ANGLES, Method

if TYPE_CHECKING:
    import torch
    import torch.nn.functional as F
else:  # torch loads on first use (ldlpose._lazy)
    torch = LazyModule("torch")
    F = LazyModule("torch.nn.functional")

_MIRRORED = ("yaw", "roll")  # the angles a horizontal flip negates
_FLOOR = 1e-12  # probability floor when a target is turned into logits (log 0 is -inf)


def bin_coordinate(scheme: BinScheme, angles_deg: torch.Tensor, center: str) -> torch.Tensor:
    """Where a label distribution is centred, in bin units (bin i's centre is i)."""
    if center == "bin":
        return scheme.index(angles_deg).to(angles_deg.dtype)
    return scheme.continuous_index(angles_deg)


def squared_bin_distance(scheme: BinScheme, angles_deg: torch.Tensor, center: str) -> torch.Tensor:
    """(N, K) squared distance, in bins, from each bin to the centre of each sample's label."""
    bins = torch.arange(scheme.num_bins, dtype=angles_deg.dtype, device=angles_deg.device)
    return (bins - bin_coordinate(scheme, angles_deg, center)[:, None]) ** 2


def gaussian(scheme: BinScheme, angles_deg: torch.Tensor, sigma_bins: float, center: str) -> torch.Tensor:
    """Gaussian label distribution over the bins, normalised by its sum over the bins
    (docs/methods.md#gaussian-labels)."""
    return torch.softmax(-squared_bin_distance(scheme, angles_deg, center) / (2 * sigma_bins**2), dim=-1)


def one_hot(scheme: BinScheme, angles_deg: torch.Tensor) -> torch.Tensor:
    """(N, K) one-hot of each angle's bin (out-of-range angles clamp to the end bins)."""
    return F.one_hot(scheme.index(angles_deg), scheme.num_bins).to(angles_deg.dtype)


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Batch mean of -sum(target * log softmax(logits)); the usual CE when target is one-hot."""
    return -(target.to(logits) * torch.log_softmax(logits, dim=-1)).sum(dim=-1).mean()


def kl_divergence(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Batch mean of KL(target || softmax(logits)) in nats."""
    return F.kl_div(torch.log_softmax(logits, dim=-1), target.to(logits), reduction="batchmean")


# The bin methods' hyperparameters: each chooses how its bins decode (``decode``).
class BinHparams(Protocol):
    """What the bin methods' hyperparameter models share (each declares it in its own module)."""

    @property
    def decode(self) -> str: ...  # a property: the models are frozen, and each narrows it to a Literal


class BinMethod(Method):
    """A method whose outputs are per-part logits over the bins of :attr:`schemes`."""

    @property
    @abc.abstractmethod
    def schemes(self) -> dict[str, BinScheme]:
        """Part name -> bins, in output order. "yaw", "pitch" and "roll" are the decoded parts; the
        name of any other part starts with the angle it belongs to (e.g. "yaw_66")."""

    @property
    def layout(self) -> dict[str, slice]:
        layout, start = {}, 0
        for key, scheme in self.schemes.items():
            layout[key] = slice(start, start + scheme.num_bins)
            start += scheme.num_bins
        return layout

    @property
    def target_resolution_deg(self) -> float:
        """Half the widest decoded bin: one-hot (or bin-centred) targets decode to bin centres."""
        return max(self.schemes[a].width for a in ANGLES) / 2

    def probabilities(self, outputs: torch.Tensor) -> dict[str, torch.Tensor]:
        return {key: torch.softmax(part, dim=-1) for key, part in self.split(outputs).items()}

    def decode(self, outputs: torch.Tensor) -> torch.Tensor:
        return self.decode_distributions(self.probabilities(outputs))

    def decode_distributions(self, distributions: Mapping[str, torch.Tensor]) -> torch.Tensor:
        decode = cast(BinHparams, self.hparams).decode
        return torch.stack([self.schemes[a].expectation(distributions[a], decode) for a in ANGLES], dim=-1)

    def flip_outputs(self, outputs: torch.Tensor) -> torch.Tensor:
        parts = self.split(outputs).items()
        return torch.cat([part.flip(-1) if key.startswith(_MIRRORED) else part for key, part in parts], dim=1)

    def outputs_for(self, angles_deg: torch.Tensor) -> torch.Tensor:
        targets = self.reference_targets(angles_deg)
        return torch.cat([targets[key].clamp_min(_FLOOR).log() for key in self.layout], dim=1)

    def one_hot_targets(self, angles_deg: torch.Tensor) -> dict[str, torch.Tensor]:
        return {a: one_hot(self.schemes[a], angles_deg[:, i]) for i, a in enumerate(ANGLES)}
