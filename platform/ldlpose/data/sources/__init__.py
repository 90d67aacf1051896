"""Readers that turn public head-pose datasets into prepared shards (the ``ldlpose prepare`` back end).

* :mod:`.landmarks` — 300W-LP and AFLW2000 folders (``*.jpg`` + ``*.mat``).
* :mod:`.fsanet` — FSA-Net's ``.npz`` files (BGR images, [yaw, pitch, roll] degrees), BIWI included.
* :mod:`.biwi` — the raw BIWI Kinect folders (``NN/frame_*_rgb.png``, ``*_pose.txt``, ``rgb.cal``).
* :mod:`.synth` — the procedural heads of :mod:`ldlpose.data.synthhead`.

Each reader's prepare function has the one signature of :mod:`ldlpose.data.readers`
(``prepare(out_dir, settings, **options) -> {target: manifest}``) and is registered there with its
name, arguments and default folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ldlpose.data.records import ImageOptions


@dataclass(frozen=True)
class Settings:
    """What every preparation shares: workers, shard size, image encoding, overwrite, provenance."""

    workers: int = 1
    shard_rows: int = 4096
    image: ImageOptions = field(default_factory=ImageOptions)
    overwrite: bool = False
    command: str | None = None
