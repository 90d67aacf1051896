"""facegen: synthetic faces framed and photographed like 300W-LP's training crops (protocol facegen-v3).

synthhead (:mod:`ldlpose.data.synthhead`) draws whole cartoon heads small in the frame; a network
trained on it answers real faces worse than a constant (bench/sim2real.py). facegen keeps its
renderer and label convention but changes what the network sees:

* **framing**: every head carries the 68 landmarks of 300W-LP's scheme; the image is the face crop
  of 300W-LP's training recipe (:func:`ldlpose.data.crops.hopenet_300wlp`, k drawn in [0.2, 0.4] as
  HopeNet draws it per sample, every landmark kept as HopeNet's released loader keeps them), then
  the centred square of that crop that the training input view takes. Some pictures end inside the
  crop, which then carries black borders as AFLW2000's test crop does where it leaves the picture;
  half the samples are framed as AFLW2000's test crop frames its pictures (:func:`frame_aflw`);
* **faces** with human proportions seen close up (:mod:`ldlpose.data.facegen.face`), turned so that
  pitch 0 is the 3DMM's frontal pose that 300W-LP's and AFLW2000's labels measure from;
* **photography**: varied light, colour casts, greyscale, blur, noise, JPEG, occluders;
* **poses** spread like 300W-LP's: yaw to +-90, pitch and roll mostly within +-30, up to +-45.

Labels are exact in :mod:`ldlpose.geometry`'s convention (the same head frame and rotation as
synthhead: ``synthhead.head_matrix``). Sample ``i`` of a split depends only on (seed, split, i).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ldlpose.data import crops
from ldlpose.data.facegen.face import Face, make_face
from ldlpose.data.facegen.photo import EVERYWHERE, Photo, develop, edge_inside, natural_background, sample_photo
from ldlpose.data.facegen.recipe import FULL, INGREDIENTS, Recipe
from ldlpose.data.synthhead import PoseDistribution
from ldlpose.data.synthhead.head import SPLITS, Identity, rng_for, sample_extras
from ldlpose.data.synthhead.raster import Scene, head_matrix, render_scene
from ldlpose.errors import ConfigError, unknown

__all__ = ["IMAGES_PER_IDENTITY", "INGREDIENTS", "POSES", "PROTOCOL", "FaceSample", "Framing", "Recipe", "frame",
           "generate", "make_face", "project_landmarks", "render_face", "render_parts"]

PROTOCOL = "facegen-v3"  # the name of the facegen benchmark's protocol (ldlpose.data.benchmarks)
IMAGES_PER_IDENTITY = 8
SAMPLE_STREAM = 12
AFLW_FRAMING = 0.5  # the share of samples framed as AFLW2000's test crop frames its pictures
POSES = PoseDistribution(limits_deg=(90.0, 45.0, 45.0), std_deg=(45.0, 15.0, 12.0))


@dataclass(frozen=True)
class FaceSample:
    """One labelled crop; ``landmarks`` (68, 2) in the crop's pixels (x right, y down)."""

    image: np.ndarray  # (size, size, 3) uint8
    angles_deg: np.ndarray  # yaw, pitch, roll
    subject: str
    key: str
    landmarks: np.ndarray


@dataclass(frozen=True)
class Framing:
    """The square window (head units, origin at the head centre's projection) the image shows."""

    x0: float
    y0: float
    side: float


def project_landmarks(face: Face, angles_deg) -> np.ndarray:
    """(68, 2) projections of the landmarks in head units (orthographic), x right, y down."""
    return (head_matrix(angles_deg)[0] @ face.landmarks.T).T[:, :2]


def frame(points: np.ndarray, k: float) -> Framing:
    """300W-LP's training crop of the landmark box (every point kept), then its centred square."""
    face_box = (points[:, 0].min(), points[:, 1].min(), points[:, 0].max(), points[:, 1].max())
    x0, y0, x1, y1 = crops.hopenet_300wlp(k).expand(face_box)
    side = min(x1 - x0, y1 - y0)
    return Framing(x0 + (x1 - x0 - side) / 2, y0 + (y1 - y0 - side) / 2, side)


def frame_aflw(rng: np.random.Generator, points: np.ndarray,
               placement: bool = True) -> tuple[Framing, tuple[float, float, float, float]]:
    """AFLW2000's test crop of a simulated picture. AFLW2000-3D's pictures are 450-pixel squares
    cut around the face: on the 16 pairs of ``../shared/realdata/aflw2000`` the 68 landmarks' box
    spans 0.33-0.51 of the side, its centre at 0.40-0.59 across and 0.57-0.64 down. Most pictures
    (86 %, 1,718 of AFLW2000's 2,000) have a missing landmark stored as (x, y) = (-1, 452), which
    the test crop keeps, so the box reaches the picture's left and bottom edges. Returns the
    framing and the picture's extent in crop fractions."""
    low, high = points.min(axis=0), points.max(axis=0)
    size, where = ((0.33, 0.52), ((0.4, 0.57), (0.6, 0.65))) if placement else ((0.3, 0.6), ((0.3, 0.3), (0.7, 0.65)))
    width = (high - low).max() / rng.uniform(*size)  # the picture's side in head units
    centre = (low + high) / 2 - rng.uniform(*where) * width  # the picture's corner
    box_points = points
    if rng.random() < 0.86:
        box_points = np.vstack([points, centre + np.array([-1.0, 452.0]) / 450 * width])
    face_box = (*box_points.min(axis=0), *box_points.max(axis=0))
    x0, y0, x1, y1 = crops.hopenet_aflw2000().expand(face_box)
    side = min(x1 - x0, y1 - y0)
    framing = Framing(x0 + (x1 - x0 - side) / 2, y0 + (y1 - y0 - side) / 2, side)
    corner = (centre - [framing.x0, framing.y0]) / side
    return framing, (corner[0], corner[1], corner[0] + width / side, corner[1] + width / side)


def render_parts(face: Face, angles_deg, framing: Framing, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Plain render (grey background, frontal light, no effects): image and per-pixel ``Part`` ids."""
    identity = Identity(face.name, face.index, face.parts, face.skin)
    center = (-framing.x0 / framing.side, -framing.y0 / framing.side)
    scene = Scene(np.asarray(angles_deg, float), identity, center=center, scale=1 / framing.side)
    image, parts, _ = render_scene(scene, size)
    return image, parts


def render_face(face: Face, angles_deg, framing: Framing, size: int, photo: Photo | None = None,
                extras: tuple = ()) -> np.ndarray:
    """(size, size, 3) uint8 image of ``face`` at ``angles_deg`` in ``framing``; ``photo`` None: plain
    grey background, frontal light, no effects."""
    if photo is None:
        return render_parts(face, angles_deg, framing, size)[0]
    identity = Identity(face.name, face.index, face.parts, face.skin)
    center = (-framing.x0 / framing.side, -framing.y0 / framing.side)
    scene = Scene(np.asarray(angles_deg, float), identity, center=center, scale=1 / framing.side,
                  light=photo.light, ambient=photo.ambient, diffuse=photo.diffuse, tint=photo.tint,
                  extras=extras, noise_seed=photo.noise_seed,
                  background=natural_background(np.random.default_rng(photo.noise_seed + 2), size)
                  if photo.natural else None)
    return develop(render_scene(scene, size)[0], photo)


def generate(split: str, count: int, *, size: int = 64, seed: int = 0, start: int = 0,
             images_per_identity: int = IMAGES_PER_IDENTITY, recipe: Recipe = FULL) -> Iterator[FaceSample]:
    """Samples ``start .. start + count - 1`` of ``split``; sample ``i`` shows identity
    ``i // images_per_identity`` and is the same whatever range produced it."""
    if split not in SPLITS:
        raise unknown("facegen split", split, SPLITS)
    for name, value, low in (("count", count, 0), ("size", size, 16), ("seed", seed, 0), ("start", start, 0),
                             ("images_per_identity", images_per_identity, 1)):
        if not isinstance(value, (int, np.integer)) or value < low:
            raise ConfigError(f"facegen {name} must be an integer >= {low}, got {value!r}")
    return _generate(split, range(start, start + count), size, seed, images_per_identity, recipe)


def _generate(split: str, indices: range, size: int, seed: int, per_identity: int,
              recipe: Recipe) -> Iterator[FaceSample]:
    face: Face | None = None
    for index in indices:
        if face is None or face.index != index // per_identity:
            face = make_face(split, index // per_identity, seed=seed, recipe=recipe)
        yield sample(face, split, index, size=size, seed=seed, recipe=recipe)


def sample(face: Face, split: str, index: int, *, size: int, seed: int, recipe: Recipe = FULL) -> FaceSample:
    """Sample ``index``: its pose, crop margin, photograph and occluders, rendered."""
    rng = rng_for(seed, split, index, SAMPLE_STREAM)
    angles = POSES.sample(rng)
    points = project_landmarks(face, angles)
    if rng.random() < AFLW_FRAMING:
        framing, picture = frame_aflw(rng, points, recipe.aflw_placement)
    else:
        framing = frame(points, rng.uniform(0.2, 0.4))
        inside = (points - [framing.x0, framing.y0]) / framing.side
        picture = edge_inside(rng, inside) if rng.random() < 0.2 else EVERYWHERE
    photo = sample_photo(rng, picture, natural=recipe.natural_backgrounds)
    extras = sample_extras(rng, Identity(face.name, face.index, face.parts, face.skin)) if rng.random() < 0.5 else ()
    image = render_face(face, angles, framing, size, photo, extras)
    pixels = (points - [framing.x0, framing.y0]) / framing.side * size
    return FaceSample(image=image, angles_deg=angles, subject=face.name, key=f"{split}/{index:06d}", landmarks=pixels)
