"""Which of facegen's ingredients a dataset is drawn with.

The default is the current protocol. Each switch turns one ingredient back to what the version before
it drew (facegen-v1 for the first five, facegen-v2 for the last two),
so that ``bench/sim2real.py --ablate NAME`` measures what that ingredient buys on real faces.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from ldlpose.errors import unknown

__all__ = ["FULL", "INGREDIENTS", "Recipe"]


@dataclass(frozen=True)
class Recipe:
    # Backgrounds with the 1/f spectrum and muted colours of photographs (plain walls, textures,
    # out-of-focus rooms) instead of synthhead's saturated gradients and discs.
    natural_backgrounds: bool = True
    # Eyes as a 64-pixel photograph shows them: little white, a dark iris and lash line, heavy brows.
    human_eyes: bool = True
    # Cheeks flush with the face: v1's round cheek bumps drew circles no real face has.
    smooth_cheeks: bool = True
    # Skin tones spread as in face photo collections (most light to medium), not uniformly.
    photo_skin_tones: bool = True
    # Hair coloured as in photographs (mostly dark) and, more often long, falling beside the cheeks.
    photo_hair: bool = True
    # The face turned up by FRONTAL_PITCH_DEG about the ears, so that pitch 0 is a face looking where
    # 300W-LP's and AFLW2000's 3DMM fits put pitch 0 (facegen.face.FRONTAL_PITCH_DEG says how it was found).
    frontal_pitch: bool = True
    # AFLW2000's test crop simulated with the face where AFLW2000-3D's pictures put it (frame_aflw):
    # facegen-v2 spread faces over the picture and framed them a little smaller.
    aflw_placement: bool = True

    def without(self, name: str) -> Recipe:
        """This recipe with ingredient ``name`` turned off."""
        if name not in INGREDIENTS:
            raise unknown("facegen ingredient", name, INGREDIENTS)
        return replace(self, **{name: False})

    def as_dict(self) -> dict[str, bool]:
        return asdict(self)


INGREDIENTS = tuple(f.name for f in fields(Recipe))
FULL = Recipe()  # every ingredient: the current protocol
