"""The synthetic benchmark: :func:`ldlpose.data.synthhead.generate` into ``train``, ``val``, ``test``.

Sample ``i`` of a split does not depend on how the index range is chunked, so workers generate
disjoint ranges in parallel and the shards are identical for any ``--workers``. Each image is
stored whole (it is already framed like a loose face crop): ``box`` is the full image and
``face_*`` the rendered head's box (which may reach past the border when the head is cut).
"""

from __future__ import annotations

from pathlib import Path

from ldlpose.data import preparation, records
from ldlpose.data.records import BadSample, Problem
from ldlpose.data.shards import ShardWriter
from ldlpose.data.sources import Settings
from ldlpose.errors import ConfigError, unknown

CHUNK = 100


def read_chunk(payload: tuple) -> list:
    """Worker entry point: render samples ``start .. start + count - 1`` of one split."""
    from PIL import Image

    from ldlpose.data import synthhead

    split, start, count, size, seed, occluders, options = payload
    out: list[dict | Problem] = []
    for sample in synthhead.generate(split, count, size=size, seed=seed, occluders=occluders, start=start):
        try:
            img = Image.fromarray(sample.image, mode="RGB")
            out.append(records.make_row(img, tuple(sample.angles_deg), subject=sample.subject,
                                        source="synthhead", key=sample.key, box=(0, 0, img.width, img.height),
                                        face_box=sample.box, options=options))
        except BadSample as bad:
            out.append(Problem(sample.key, bad.kind, str(bad)))
    return out


def _check(counts: dict[str, int], size: int, seed: int) -> None:
    """Fail on bad arguments here, once, rather than in every worker."""
    from ldlpose.data import synthhead

    for split in counts:
        if split not in synthhead.SPLITS:
            raise unknown("synthhead split", split, synthhead.SPLITS)
    checks = [(f"--{s} count", n, 0) for s, n in counts.items()] + [("--size", size, 8), ("--seed", seed, 0)]
    for name, value, low in checks:
        if value < low:
            raise ConfigError(f"synthhead {name} must be >= {low}, got {value}")
    if not any(counts.values()):
        raise ConfigError("synthhead needs at least one of --train, --val, --test above 0")


def prepare_synthhead(out_dir: Path, settings: Settings, *, train: int = 2000, val: int = 500, test: int = 500,
                      size: int = 64, seed: int = 0, no_occluders: bool = False) -> dict[str, dict]:
    """The ``synthhead`` reader: ``out_dir/<split>`` for every split with a positive count; manifests by split."""
    from ldlpose.data import synthhead

    counts, occluders = {"train": train, "val": val, "test": test}, not no_occluders
    _check(counts, size, seed)
    counts = {s: n for s, n in counts.items() if n > 0}
    writers = {s: ShardWriter(Path(out_dir) / s, dataset="synthhead", image_format=settings.image.format,
                              shard_rows=settings.shard_rows, overwrite=settings.overwrite) for s in counts}
    tasks = [preparation.Task(s, (s, i, min(CHUNK, n - i), size, seed, occluders, settings.image),
                              items=min(CHUNK, n - i))
             for s, n in counts.items() for i in range(0, n, CHUNK)]
    preparation.run(read_chunk, tasks, writers, workers=settings.workers, total=sum(counts.values()))
    generator = {"size": size, "seed": seed, "occluders": occluders,
                 "images_per_identity": synthhead.IMAGES_PER_IDENTITY, "pose": "PoseDistribution() default"}
    return {
        s: w.close(source={"dataset": "synthhead", "split": s, "count": counts[s], "generator": generator},
                   crop={"name": "synthhead-full-image", "box": "the whole rendered image"},
                   image=settings.image.as_dict(), subject_rule="synthhead identity (sample // images_per_identity)",
                   filters={"stored": "every sample"}, command=settings.command)
        for s, w in writers.items()
    }
