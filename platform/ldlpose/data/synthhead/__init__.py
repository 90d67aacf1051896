"""synthhead: a procedural 3-D head rendered with exact pose labels (the built-in benchmark).

**Labels** follow :mod:`ldlpose.geometry` (docs/methods.md#euler-conventions): yaw, pitch, roll in degrees;
positive yaw turns the face toward the image's left, positive pitch tilts it up, positive roll
tilts it clockwise in the image.

**Head frame.** The head is modelled in a camera-like frame: x toward the subject's left (the
image's right when the face looks at the camera), y down, z away from the camera; the face looks
toward -z. A pose turns head points by ``M = F R_img F`` with ``F = diag(1, 1, -1)`` and
``R_img = geometry.image_matrix(angles)``. ``F`` only converts between this frame and R_img's,
whose third axis points out of the picture; ``M`` is a proper rotation. So the projections of the
head's own left (+x), down (+y) and front (-z, where the nose points) unit axes are exactly
``geometry.axis_endpoints_2d`` (the tests check this, and check the rendered nose against it).

**Rendering.** Orthographic projection (weak perspective, as 300W-LP's 3DMM fits) and per-pixel
ray casting of a union of ellipsoids with numpy: a pixel's ray meets an ellipsoid where a quadratic
in depth has a root, and the nearest hit wins. Ambient + Lambertian + a little specular shading,
per-part colours, a texture fixed to the head's surface, random backgrounds and optional occluders.
Sizes up to 128 px are supersampled 2x per axis against aliasing.

**Modules.** ``head`` builds identities (the parts of a head, in head units) and accessories;
``raster`` renders a :class:`Scene`; this module samples scenes and yields labelled samples.

**Determinism.** Sample ``i`` of a split draws from its own generator seeded by (seed, split, i),
and identity ``j`` (shape, skin, hair, clothes) from (seed, split, j), so a sample is the same
whatever range or process generates it, and no identity is shared between splits.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ldlpose.data.synthhead.head import (
    SAMPLE_STREAM,
    SPLITS,
    Ellipsoid,
    Identity,
    Part,
    make_identity,
    rng_for,
    sample_extras,
)
from ldlpose.data.synthhead.raster import Scene, head_matrix, render_scene
from ldlpose.errors import ConfigError, unknown

__all__ = [
    "IMAGES_PER_IDENTITY", "SPLITS", "Ellipsoid", "Identity", "Part", "PoseDistribution", "Scene",
    "SynthSample", "generate", "head_matrix", "make_identity", "render", "render_scene", "sample_scene",
]

IMAGES_PER_IDENTITY = 8  # several views per subject, so RankPose-style same-subject pairs exist


@dataclass(frozen=True)
class PoseDistribution:
    """How poses are drawn, per angle (yaw, pitch, roll), in degrees.

    ``kind="truncnorm"``: a zero-mean normal of ``std_deg`` truncated to ``[-limit, +limit]``;
    ``kind="uniform"``: uniform on ``[-limit, +limit]``. The default resembles 300W-LP: yaw spread
    broadly over +/-90 (its synthesised profile views), pitch and roll concentrated near 0 within
    +/-60 and +/-45.
    """

    limits_deg: tuple[float, float, float] = (90.0, 60.0, 45.0)
    std_deg: tuple[float, float, float] = (45.0, 20.0, 15.0)
    kind: str = "truncnorm"

    def __post_init__(self) -> None:
        if self.kind not in ("truncnorm", "uniform"):
            raise unknown("pose distribution kind", self.kind, ("truncnorm", "uniform"))
        for name, values in (("limits_deg", self.limits_deg), ("std_deg", self.std_deg)):
            if len(values) != 3 or not all(0 < v < float("inf") for v in values):
                raise ConfigError(f"PoseDistribution.{name} must be three positive degrees "
                                  f"(yaw, pitch, roll), got {values}")

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """One (3,) pose in degrees, yaw/pitch/roll."""
        if self.kind == "uniform":
            return np.array([rng.uniform(-lim, lim) for lim in self.limits_deg])
        # Rejection keeps the truncated shape exact; acceptance is high for pose-like limits.
        out = []
        for std, lim in zip(self.std_deg, self.limits_deg):
            value = rng.normal(0.0, std)
            while abs(value) > lim:
                value = rng.normal(0.0, std)
            out.append(value)
        return np.array(out)


@dataclass(frozen=True)
class SynthSample:
    """One labelled image; ``box`` is the head's (x0, y0, x1, y1) in pixels (skull, hair, ears,
    face), which may reach past the image border when the head is cut by it."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    angles_deg: np.ndarray  # (3,) yaw, pitch, roll in the platform convention
    subject: str  # e.g. "synth-train-00042"; never shared between splits
    key: str  # e.g. "train/000123"; unique per sample
    box: tuple[float, float, float, float] | None = None


def sample_scene(split: str, index: int, identity: Identity, *, seed: int = 0,
                 pose: PoseDistribution | None = None, occluders: bool = True) -> Scene:
    """The random scene of sample ``index``: pose, framing, lighting, occluders, noise seed."""
    rng = rng_for(seed, split, index, SAMPLE_STREAM)
    angles = (pose or PoseDistribution()).sample(rng)
    light = np.array([rng.uniform(-1, 1), rng.uniform(-1, 0.6), -rng.uniform(0.4, 1.5)])
    # Framed like a 300W-LP face crop: the head centre (eye level) sits a little above the middle.
    center = (0.5 + rng.uniform(-0.06, 0.06), 0.42 + rng.uniform(-0.05, 0.05))
    return Scene(
        angles_deg=angles, identity=identity, center=center, scale=rng.uniform(0.26, 0.34),
        light=tuple(light / np.linalg.norm(light)), ambient=rng.uniform(0.25, 0.5),
        diffuse=rng.uniform(0.5, 0.85), tint=tuple(1 + rng.uniform(-0.12, 0.12, 3)),
        extras=sample_extras(rng, identity) if occluders else (), noise_seed=int(rng.integers(2**31)),
    )


def generate(split: str, count: int, *, size: int = 64, seed: int = 0,
             pose: PoseDistribution | None = None, occluders: bool = True, start: int = 0,
             images_per_identity: int = IMAGES_PER_IDENTITY) -> Iterator[SynthSample]:
    """Samples ``start .. start + count - 1`` of ``split`` ("train", "val" or "test").

    Sample ``i`` shows identity ``i // images_per_identity``; it is identical whatever ``start``
    or chunking produced it, so ranges can be generated by parallel processes.
    """
    _check_generate_args(split, count, size, seed, start, images_per_identity)  # now, not at next()
    return _generate(split, range(start, start + count), size, seed, pose, occluders, images_per_identity)


def _generate(split: str, indices: range, size: int, seed: int, pose: PoseDistribution | None,
              occluders: bool, images_per_identity: int) -> Iterator[SynthSample]:
    identity: Identity | None = None
    for index in indices:
        subject = index // images_per_identity
        if identity is None or identity.index != subject:
            identity = make_identity(split, subject, seed=seed)
        scene = sample_scene(split, index, identity, seed=seed, pose=pose, occluders=occluders)
        image, _, box = render_scene(scene, size)
        yield SynthSample(image=image, angles_deg=scene.angles_deg, subject=identity.name,
                          key=f"{split}/{index:06d}", box=box)


def _check_generate_args(split: str, count: int, size: int, seed: int, start: int, per_id: int) -> None:
    if split not in SPLITS:
        raise unknown("synthhead split", split, SPLITS)
    for name, value, low in (("count", count, 0), ("size", size, 8), ("seed", seed, 0),
                             ("start", start, 0), ("images_per_identity", per_id, 1)):
        if not isinstance(value, (int, np.integer)) or value < low:
            raise ConfigError(f"synthhead {name} must be an integer >= {low}, got {value!r}")


def render(angles_deg: np.ndarray, *, size: int = 64, identity: Identity | None = None,
           return_parts: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Render poses (N, 3) of one identity in a canonical scene: head centre at the image centre,
    0.3 * size pixels per head unit, light from the front, plain grey background, no occluders.

    Returns (N, size, size, 3) uint8 images and, with ``return_parts``, (N, size, size) uint8
    :class:`Part` ids per pixel.
    """
    identity = identity or make_identity("train", 0)
    outs = [render_scene(Scene(angles_deg=a, identity=identity), size)
            for a in np.asarray(angles_deg, dtype=np.float64).reshape(-1, 3)]
    images = np.stack([o[0] for o in outs])
    return (images, np.stack([o[1] for o in outs])) if return_parts else images
