"""The procedural head: parts, identities and accessories, in head units.

The head frame is camera-like: x toward the subject's left (the image's right when the face looks at
the camera), y down, z away from the camera; the face looks toward -z. One head unit is the skull's
half height; the head centre (the origin) is at eye level in the middle of the skull.

Every identity draws from its own generator seeded by (seed, split, identity), so the same index
in another split is another face.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

__all__ = [
    "HEAD_PARTS", "SPLITS", "Ellipsoid", "Identity", "Part", "make_identity", "rng_for", "sample_extras",
]

SPLITS = ("train", "val", "test")
IDENTITY_STREAM, SAMPLE_STREAM = 1, 2


def rng_for(seed: int, split: str, index: int, stream: int) -> np.random.Generator:
    """The generator of one identity or sample: independent of every other index and split."""
    return np.random.default_rng([seed, SPLITS.index(split), index, stream])


class Part(enum.IntEnum):
    """Per-pixel part ids returned by :func:`render`. Left and right are the subject's."""

    BACKGROUND = 0
    SKIN = 1
    NOSE = 2
    EAR = 3
    EYE_LEFT = 4
    EYE_RIGHT = 5
    IRIS = 6
    BROW = 7
    LIPS = 8
    HAIR = 9
    NECK = 10
    BODY = 11
    OCCLUDER = 12


HEAD_PARTS = (Part.SKIN, Part.NOSE, Part.EAR, Part.EYE_LEFT, Part.EYE_RIGHT, Part.HAIR)


@dataclass(frozen=True)
class Ellipsoid:
    """``center + rot @ diag(axes) @ u`` for unit vectors ``u``, in head units (skull half height 1).

    ``attached`` parts turn with the head; the others (neck, body, occluders) stay in the camera
    frame, placed relative to the head centre. ``texture`` scales the surface pattern.
    """

    part: Part
    center: tuple[float, float, float]
    axes: tuple[float, float, float]
    colour: tuple[float, float, float]
    rot: tuple[float, float] = (0.0, 0.0)  # degrees about x, then about z (the part's own tilt)
    attached: bool = True
    shine: float = 0.0
    texture: float = 0.04


@dataclass(frozen=True)
class Identity:
    """One synthetic subject: its name, its index within the split, and its parts."""

    name: str
    index: int
    parts: tuple[Ellipsoid, ...]
    skin: tuple[float, float, float]


_HAIR_COLOURS = ((0.08, 0.06, 0.05), (0.25, 0.15, 0.08), (0.45, 0.3, 0.15), (0.75, 0.6, 0.35),
                 (0.5, 0.2, 0.08), (0.6, 0.6, 0.6))
_IRIS_COLOURS = ((0.25, 0.15, 0.08), (0.2, 0.35, 0.55), (0.25, 0.4, 0.25), (0.08, 0.06, 0.05))


def make_identity(split: str, index: int, *, seed: int = 0) -> Identity:
    """Subject ``index`` of ``split``: skull, jaw, nose, ears, eyes, brows, lips, hair, neck, body."""
    rng = rng_for(seed, split, index, IDENTITY_STREAM)
    u = rng.uniform
    skin = tuple(np.array((0.95, 0.78, 0.66)) * u(0.38, 1.0) * (1 + u(-0.06, 0.06, 3)))
    hair = tuple(np.array(_HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))]) * u(0.8, 1.2))
    skull = ((0.0, -0.1, 0.05), (u(0.72, 0.84), u(0.92, 1.0), u(0.86, 0.96)))
    jaw = ((0.0, u(0.3, 0.4), -0.16), (u(0.52, 0.64), u(0.52, 0.62), u(0.6, 0.66)))

    def front(x: float, y: float) -> float:  # features sit on the face's surface
        return min(_front_z(c, a, x, y) for c, a in (skull, jaw))

    parts = [Ellipsoid(Part.SKIN, *skull, skin), Ellipsoid(Part.SKIN, *jaw, skin)]
    ny, mouth_y = u(0.1, 0.18), u(0.55, 0.63)
    nose_axes, lips_axes = (u(0.09, 0.13), u(0.22, 0.3), u(0.2, 0.28)), (u(0.15, 0.22), 0.045, 0.07)
    parts.append(Ellipsoid(Part.NOSE, (0.0, ny, front(0.0, ny) + 0.04), nose_axes, _shade_of(skin, 0.97),
                           rot=(u(-30, -15), 0.0), texture=0.02))  # tilted: the tip juts forward
    parts.append(Ellipsoid(Part.LIPS, (0.0, mouth_y, front(0.0, mouth_y) + 0.04), lips_axes,
                           _shade_of(skin, (0.85, 0.55, 0.55)), shine=0.3))
    parts += _eyes_brows_ears(rng, front, skull[1][0], skin, hair)
    parts += _hair(rng, skull, hair)
    clothes = tuple(u(0.05, 0.95, 3))
    parts.append(Ellipsoid(Part.NECK, (0.0, 1.0, 0.3), (0.36, 0.75, 0.36), skin, attached=False))
    parts.append(Ellipsoid(Part.BODY, (0.0, 2.15, 0.6), (1.7, 0.8, 0.8), clothes, attached=False))
    return Identity(name=f"synth-{split}-{index:05d}", index=index, parts=tuple(parts), skin=skin)


def _shade_of(colour, factor) -> tuple[float, float, float]:
    return tuple(np.asarray(colour) * factor)


def _eyes_brows_ears(rng: np.random.Generator, front, skull_width: float, skin, hair) -> list[Ellipsoid]:
    """Both eyes (sclera and iris), brows and ears; ``side`` +1 is the subject's left (+x)."""
    u = rng.uniform
    ex, ey, er = u(0.26, 0.32), u(-0.08, 0.0), u(0.1, 0.12)
    iris = _shade_of(_IRIS_COLOURS[rng.integers(len(_IRIS_COLOURS))], u(0.8, 1.2))
    brow_y, brow_tilt, brow_h, ear_h = ey - er * u(1.3, 1.7), u(0.0, 12.0), u(0.025, 0.045), u(0.2, 0.27)
    parts = []
    for side, eye_part in ((1.0, Part.EYE_LEFT), (-1.0, Part.EYE_RIGHT)):
        x = side * ex
        ez = front(x, ey) + 0.6 * er  # the front 40 % of the eyeball shows
        parts += [
            Ellipsoid(eye_part, (x, ey, ez), (er,) * 3, (0.93, 0.92, 0.9), shine=0.5, texture=0),
            Ellipsoid(Part.IRIS, (x, ey, ez - er * 0.62), (er * 0.5,) * 3, iris, shine=0.8, texture=0),
            Ellipsoid(Part.BROW, (x, brow_y, front(x, brow_y) + 0.02), (0.15, brow_h, 0.05), hair,
                      rot=(0.0, side * brow_tilt)),  # outer ends lower
            Ellipsoid(Part.EAR, (side * (skull_width - 0.04), ey + 0.12, 0.1), (0.07, ear_h, 0.14),
                      _shade_of(skin, 0.93)),
        ]
    return parts


def _front_z(center, axes, x: float, y: float) -> float:
    """Depth of an ellipsoid's camera-facing surface at head-frame (x, y); +inf where it misses."""
    r = 1.0 - ((x - center[0]) / axes[0]) ** 2 - ((y - center[1]) / axes[1]) ** 2
    return center[2] - axes[2] * np.sqrt(r) if r > 0 else float("inf")


def _hair(rng: np.random.Generator, skull, colour) -> list[Ellipsoid]:
    """A cap over the skull (the hairline sits where it emerges from the skin), maybe long hair."""
    style = rng.choice(3, p=(0.12, 0.5, 0.38))  # bald, short, long
    if style == 0:
        return []
    (cx, cy, cz), (ax, ay, az) = skull
    grow = rng.uniform(0.03, 0.08)
    # Barely wider than the skull and pushed back, so the temples and the face's sides show.
    cap = Ellipsoid(Part.HAIR, (cx, cy - rng.uniform(0.06, 0.14), cz + rng.uniform(0.14, 0.24)),
                    (ax + 0.02, ay + grow, az + grow), colour, shine=0.15, texture=0.25)
    if style == 1:
        return [cap]
    # Long hair: a mass behind the skull hanging to the neck, rigid with the head (no gravity).
    back = Ellipsoid(Part.HAIR, (0.0, 0.4, 0.5), (ax + 0.06, rng.uniform(0.75, 1.0), 0.45), colour,
                     shine=0.15, texture=0.25)
    return [cap, back]


def sample_extras(rng: np.random.Generator, identity: Identity) -> tuple[Ellipsoid, ...]:
    """Occluders in front of the face (hands, objects; 35 %) and glasses (12 %)."""
    extras = []
    if rng.random() < 0.35:
        for _ in range(rng.integers(1, 3)):
            colour = identity.skin if rng.random() < 0.4 else tuple(rng.uniform(0.05, 0.95, 3))
            extras.append(Ellipsoid(
                Part.OCCLUDER, (rng.uniform(-0.9, 0.9), rng.uniform(-0.5, 1.1), -rng.uniform(1.3, 1.8)),
                (rng.uniform(0.15, 0.5), rng.uniform(0.15, 0.6), 0.15), colour,
                rot=(0.0, rng.uniform(-90, 90)), attached=False, shine=0.2))
    if rng.random() < 0.12:
        eyes = [p for p in identity.parts if p.part in (Part.EYE_LEFT, Part.EYE_RIGHT)]
        dark = tuple(rng.uniform(0.0, 0.25, 3))
        for eye in eyes:
            x, y, z = eye.center
            extras.append(Ellipsoid(Part.OCCLUDER, (x, y, z - eye.axes[0] - 0.05), (0.16, 0.11, 0.02), dark,
                                    shine=0.9, texture=0))
    return tuple(extras)
