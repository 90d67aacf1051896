"""A human head of ellipsoids with human proportions, and its 68 landmarks (300W-LP's scheme).

Head frame as synthhead's (:mod:`ldlpose.data.synthhead.head`): x toward the subject's left, y down,
z away from the camera, the face looking toward -z; one unit is about half the head's height
(crown to chin about 2.15), the origin at eye level in the middle of the skull.

Unlike synthhead, the face is built to be seen close up, as a 300W-LP crop shows it: a forehead,
cheeks and a jaw that narrow to a chin, a nose bridge and tip that stand out of the face, eyelids
that give the eyes their almond shape, dark sockets, two lips and a mouth that opens, ears at eye
to nose level. Identities vary every proportion; expressions open the mouth and close the eyes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ldlpose.data.facegen.landmarks import landmarks_68, surface_depth
from ldlpose.data.facegen.recipe import FULL, Recipe
from ldlpose.data.synthhead.head import Ellipsoid, Part, rng_for
from ldlpose.data.synthhead.raster import head_matrix

__all__ = ["Face", "make_face"]

IDENTITY_STREAM = 11  # facegen's own streams: never the same draws as synthhead's
# The built face, posed at the labels of annotated real faces, fits their 68 landmarks best when
# turned up by about this much first: the mean face's landmarks against AFLW2000's pt3d_68 on the 16
# test pairs of ../shared/realdata/aflw2000 (never the 400 dev pairs): mean normalised error 0.0573
# upright, 0.0522 turned up 5 degrees, and worse again 2-4 degrees further either way except +2
# (bench/facegen_calibration.py). The ellipsoids are built upright by eye; the labels' pitch 0 is
# the 3DMM's frontal pose.
FRONTAL_PITCH_DEG = 5.0
_HAIR = ((0.06, 0.05, 0.04), (0.18, 0.11, 0.06), (0.35, 0.22, 0.12), (0.6, 0.45, 0.25),
         (0.75, 0.62, 0.4), (0.45, 0.16, 0.06), (0.55, 0.55, 0.55), (0.85, 0.85, 0.85))
_PHOTO_HAIR = (0.3, 0.25, 0.15, 0.1, 0.1, 0.04, 0.04, 0.02)  # _HAIR's colours as often as in photographs
_IRIS = ((0.22, 0.13, 0.06), (0.15, 0.28, 0.45), (0.22, 0.32, 0.2), (0.07, 0.05, 0.04))
_SKIN = np.array((0.96, 0.76, 0.64))


@dataclass(frozen=True)
class Face:
    """One identity: its parts (head frame), its 68 landmarks (68, 3) and its colours."""

    name: str
    index: int
    parts: tuple[Ellipsoid, ...]
    landmarks: np.ndarray
    skin: tuple[float, float, float]
    hair: tuple[float, float, float]


@dataclass(frozen=True)
class _Shape:
    """The proportions one identity draws (head units)."""

    half_width: float  # cheek to cheek, at eye level
    chin_y: float
    jaw_width: float  # half width at the mouth
    face_z: float  # depth of the forehead's front
    eye_x: float
    eye_r: float
    brow_y: float
    nose_len: float
    nose_out: float
    mouth_y: float
    mouth_w: float


def _draw_shape(rng: np.random.Generator) -> _Shape:
    u = rng.uniform
    return _Shape(half_width=u(0.66, 0.78), chin_y=u(0.95, 1.12), jaw_width=u(0.42, 0.56), face_z=u(-0.84, -0.76),
                  eye_x=u(0.26, 0.31), eye_r=u(0.095, 0.115), brow_y=u(-0.24, -0.17), nose_len=u(0.34, 0.46),
                  nose_out=u(0.16, 0.28), mouth_y=u(0.62, 0.72), mouth_w=u(0.17, 0.24))


def _skin(rng: np.random.Generator, photo_tones: bool) -> tuple[float, float, float]:
    # Photo collections (300W-LP, AFLW) hold mostly light to medium skin: a skewed draw, still reaching
    # the darkest tones; v1 drew every tone equally often.
    tone = 1.05 - 0.75 * rng.beta(1.3, 3.0) if photo_tones else rng.uniform(0.3, 1.05)
    warm = np.array((1.0, 0.92 + 0.06 * rng.random(), 0.85 + 0.1 * rng.random()))
    return tuple(np.clip(_SKIN * tone * warm * (1 + rng.uniform(-0.05, 0.05, 3)), 0, 1))


def _shade(colour, factor) -> tuple[float, float, float]:
    return tuple(np.clip(np.asarray(colour) * factor, 0, 1))


def _base(s: _Shape, skin, smooth_cheeks: bool) -> list[Ellipsoid]:
    """Skull, forehead, jaw and chin (and v1's cheek bumps): the surface features sit on."""
    w, z = s.half_width, s.face_z
    cheeks = [] if smooth_cheeks else [
        Ellipsoid(Part.SKIN, (side * (w - 0.32), 0.2, z + 0.4), (0.22, 0.2, 0.22), skin) for side in (1, -1)]
    return [
        Ellipsoid(Part.SKIN, (0.0, -0.12, 0.12), (w + 0.04, 1.0, 0.96), skin),
        Ellipsoid(Part.SKIN, (0.0, -0.3, z + 0.45), (w - 0.1, 0.5, 0.45), skin),  # forehead
        Ellipsoid(Part.SKIN, (0.0, 0.36, -0.1), (s.jaw_width + 0.12, s.chin_y - 0.3, 0.7), skin),  # jaw
        Ellipsoid(Part.SKIN, (0.0, s.chin_y - 0.13, z + 0.3), (0.2, 0.14, 0.2), skin),  # chin
        *cheeks,
    ]


def _nose(s: _Shape, base: list[Ellipsoid], skin) -> list[Ellipsoid]:
    top, tip_y = -0.02, s.nose_len - 0.02
    bridge_z = surface_depth(base, 0.0, (top + tip_y) / 2)
    tone = _shade(skin, 1.03)
    tip_z = surface_depth(base, 0.0, tip_y) - s.nose_out
    return [
        Ellipsoid(Part.NOSE, (0.0, (top + tip_y) / 2, bridge_z - s.nose_out * 0.45),
                  (0.07, (tip_y - top) / 2 + 0.02, s.nose_out * 0.5), tone, rot=(-18.0, 0.0), texture=0.02),
        Ellipsoid(Part.NOSE, (0.0, tip_y, tip_z + 0.09), (0.085, 0.075, 0.09), tone, shine=0.25, texture=0.02),
        *[Ellipsoid(Part.NOSE, (side * 0.085, tip_y + 0.02, tip_z + 0.17), (0.065, 0.06, 0.08), _shade(skin, 0.96),
                    texture=0.02) for side in (1, -1)],
    ]


@dataclass(frozen=True)
class _EyeLook:
    """How much of the eye shows and how dark it is (radii in eye radii, colours as factors)."""

    sclera: tuple[float, float, float]
    iris_r: float
    upper_lid_y: float  # the upper lid's centre, below the eye's centre by this (negative: above)
    lower_lid_y: float
    lash: bool  # a dark line along the upper lid's edge
    brow_h: tuple[float, float]  # half height range
    brow_dark: tuple[float, float]  # hair colour factor range for the brow


# v1: a cartoon's big white eyes and light brows. Human: at 64 pixels a real eye is a dark almond under
# a dark brow, with a sliver of white.
_CARTOON_EYE = _EyeLook((0.92, 0.9, 0.87), 0.48, -1.05, 1.15, False, (0.025, 0.05), (0.6, 1.0))
_HUMAN_EYE = _EyeLook((0.74, 0.7, 0.66), 0.6, -0.88, 1.02, True, (0.035, 0.065), (0.35, 0.75))


def _eyes(rng: np.random.Generator, s: _Shape, base: list[Ellipsoid], skin, hair, closed: float,
          look: _EyeLook) -> list[Ellipsoid]:
    """Sclera, iris and pupil, lids that make the almond, a dark socket, a brow; both sides."""
    iris = _shade(_IRIS[rng.integers(len(_IRIS))], rng.uniform(0.8, 1.2) * (0.7 if look.lash else 1.0))
    brow_h, brow_tilt, socket = rng.uniform(*look.brow_h), rng.uniform(-4, 12), rng.uniform(0.7, 0.9)
    dark = rng.uniform(*look.brow_dark)
    brow_colour = _shade(hair, dark) if np.mean(hair) < 0.5 else _shade(skin, 0.55 * dark / look.brow_dark[1])
    sclera = _shade(look.sclera, rng.uniform(0.9, 1.05))
    r, parts = s.eye_r, []
    for side, part in ((1.0, Part.EYE_LEFT), (-1.0, Part.EYE_RIGHT)):
        x = side * s.eye_x
        surface = surface_depth(base, x, 0.0)
        ez = surface + 0.45 * r
        lid = ez - 0.02
        upper_y = r * (look.upper_lid_y + 1.0 * closed)  # lowered by ``closed`` (0 open, 1 shut)
        parts += [
            Ellipsoid(Part.SKIN, (x, 0.0, surface + 0.02), (r * 1.9, r * 1.35, 0.04), _shade(skin, socket),
                      texture=0.02),
            Ellipsoid(part, (x, 0.0, ez), (r * 1.05, r, r), sclera, shine=0.5, texture=0),
            Ellipsoid(Part.IRIS, (x, 0.0, ez - r * 0.6), (r * look.iris_r,) * 3, iris, shine=0.8, texture=0),
            Ellipsoid(Part.IRIS, (x, 0.0, ez - r * 0.86), (r * 0.2,) * 3, (0.02, 0.02, 0.02), shine=0.9, texture=0),
            Ellipsoid(Part.SKIN, (x, upper_y, lid), (r * 1.25, r * 0.75, r * 1.05), _shade(skin, 0.92), texture=0.02),
            Ellipsoid(Part.SKIN, (x, r * look.lower_lid_y, lid), (r * 1.2, r * 0.55, r * 1.0), _shade(skin, 0.95),
                      texture=0.02),
            Ellipsoid(Part.BROW, (x + side * 0.03, s.brow_y, surface_depth(base, x, s.brow_y) + 0.03),
                      (0.16, brow_h, 0.05),
                      brow_colour, rot=(0.0, side * brow_tilt), texture=0.2),
        ]
        if look.lash:  # just below the upper lid's edge, in front of the eyeball
            parts.append(Ellipsoid(Part.BROW, (x, upper_y + r * 0.72, lid - 0.01), (r * 1.12, r * 0.1, r * 0.97),
                                   _shade(hair, 0.3), texture=0))
    return parts


def _mouth(s: _Shape, base: list[Ellipsoid], skin, opening: float) -> list[Ellipsoid]:
    y, w = s.mouth_y, s.mouth_w
    z = surface_depth(base, 0.0, y)
    lips = _shade(skin, (0.86, 0.6, 0.6))
    return [
        Ellipsoid(Part.LIPS, (0.0, y - 0.03, z + 0.025), (w, 0.04, 0.06), lips, shine=0.3, texture=0.02),
        Ellipsoid(Part.LIPS, (0.0, y + 0.04 + opening, z + 0.03), (w * 0.88, 0.05, 0.06), lips, shine=0.35,
                  texture=0.02),
        Ellipsoid(Part.LIPS, (0.0, y + 0.005 + opening / 2, z + 0.045), (w * 0.85, 0.012 + opening / 2, 0.04),
                  (0.12, 0.04, 0.04), texture=0),  # the dark gap between the lips
    ]


def _ears(s: _Shape, skin) -> list[Ellipsoid]:
    return [Ellipsoid(Part.EAR, (side * (s.half_width + 0.02), 0.18, 0.18), (0.08, 0.26, 0.15), _shade(skin, 0.94),
                      rot=(0.0, side * -8.0)) for side in (1, -1)]


def _hair(rng: np.random.Generator, s: _Shape, colour, framing: bool) -> list[Ellipsoid]:
    """Bald, short, short with a fringe, long over the ears, or tied back. ``framing``: long hair
    (more common) falls beside the cheeks, where it frames a face seen from the front."""
    style = rng.choice(5, p=(0.06, 0.26, 0.2, 0.38, 0.1) if framing else (0.1, 0.3, 0.2, 0.28, 0.12))
    if style == 0:
        return []
    w, grow = s.half_width, rng.uniform(0.03, 0.12)
    line = rng.uniform(0.08, 0.2)  # how far back the hairline sits
    cap = Ellipsoid(Part.HAIR, (0.0, -0.2 - rng.uniform(0.0, 0.1), 0.12 + line), (w + 0.06, 1.0 + grow, 0.96 + grow),
                    colour, shine=0.15, texture=0.25)
    out = [cap]
    if style in (2, 3) and rng.random() < 0.7:  # fringe over the forehead
        out.append(Ellipsoid(Part.HAIR, (0.0, -0.6 + rng.uniform(0.0, 0.15), s.face_z + 0.25),
                             (w - 0.05, 0.3, 0.3), colour, rot=(0.0, rng.uniform(-20, 20)), texture=0.25))
    if style == 3:  # long: over the ears, down past the jaw
        length, forward = rng.uniform(0.8, 1.6), rng.uniform(0.0, 0.3) if framing else 0.0
        out += [Ellipsoid(Part.HAIR, (side * (w + 0.02 - forward * 0.3), 0.2 + length / 2, 0.25 - forward),
                          (0.2, 0.4 + length / 2, 0.55), colour, shine=0.1, texture=0.25) for side in (1, -1)]
        out.append(Ellipsoid(Part.HAIR, (0.0, 0.4 + length / 2, 0.55), (w + 0.1, 0.5 + length / 2, 0.4), colour,
                             texture=0.25))
    if style == 4:  # tied back: a bun
        out.append(Ellipsoid(Part.HAIR, (0.0, -0.5, 1.05), (0.3, 0.3, 0.25), colour, texture=0.25))
    return out


def _facial_hair(rng: np.random.Generator, s: _Shape, base: list[Ellipsoid], colour) -> list[Ellipsoid]:
    if rng.random() > 0.18:
        return []
    out = [Ellipsoid(Part.HAIR, (0.0, s.mouth_y - 0.1, surface_depth(base, 0.0, s.mouth_y - 0.1) + 0.04),
                     (s.mouth_w + 0.03, 0.05, 0.06), colour, texture=0.3)]  # moustache
    if rng.random() < 0.6:  # beard: the jaw's lower part, a little proud of the skin
        out.append(Ellipsoid(Part.HAIR, (0.0, 0.62, -0.08), (s.jaw_width + 0.13, s.chin_y - 0.44, 0.71),
                             colour, texture=0.3))
    return out


def make_face(split: str, index: int, *, seed: int = 0, recipe: Recipe = FULL) -> Face:
    """Identity ``index`` of ``split``: shape, skin, hair, expression, and its 68 landmarks."""

    rng = rng_for(seed, split, index, IDENTITY_STREAM)
    s, skin = _draw_shape(rng), _skin(rng, recipe.photo_skin_tones)
    # Photo collections: mostly black and brown hair, some blond, little grey; v1 drew each colour equally.
    weights = _PHOTO_HAIR if recipe.photo_hair else None
    hair = _shade(_HAIR[rng.choice(len(_HAIR), p=weights)], rng.uniform(0.8, 1.2))
    opening = rng.choice([0.0, rng.uniform(0.01, 0.12)], p=[0.7, 0.3])
    closed = rng.choice([0.0, rng.uniform(0.2, 0.9)], p=[0.85, 0.15])
    base = _base(s, skin, recipe.smooth_cheeks)
    look = _HUMAN_EYE if recipe.human_eyes else _CARTOON_EYE
    parts = base + _nose(s, base, skin) + _eyes(rng, s, base, skin, hair, closed, look)
    parts += _mouth(s, base, skin, opening)
    parts += _ears(s, skin) + _hair(rng, s, hair, recipe.photo_hair) + _facial_hair(rng, s, base, hair)
    parts += [Ellipsoid(Part.NECK, (0.0, 1.15, 0.3), (0.4, 0.8, 0.4), _shade(skin, 0.9), attached=False),
              Ellipsoid(Part.BODY, (0.0, 2.35, 0.6), (1.8, 0.85, 0.8), tuple(rng.uniform(0.05, 0.95, 3)),
                        attached=False, texture=0.1)]
    landmarks = landmarks_68(s, base, opening)
    if recipe.frontal_pitch:
        parts, landmarks = _pitched(parts, landmarks, FRONTAL_PITCH_DEG)
    return Face(name=f"facegen-{split}-{index:05d}", index=index, parts=tuple(parts),
                landmarks=landmarks, skin=skin, hair=hair)


def _pitched(parts: list[Ellipsoid], landmarks: np.ndarray, degrees: float) -> tuple[list[Ellipsoid], np.ndarray]:
    """The head's parts and landmarks turned up by ``degrees`` of pitch in the head frame (the parts
    that do not turn with the head stay). A part's own tilt composes exactly when it has no turn
    about z; brows, ears and fringes (at most 20 degrees about z) are off by under 2 degrees."""
    turn = head_matrix(np.array([0.0, degrees, 0.0]))[0]
    out = [replace(p, center=tuple(turn @ np.asarray(p.center)), rot=(p.rot[0] - degrees, p.rot[1]))
           if p.attached else p for p in parts]
    return out, landmarks @ turn.T
