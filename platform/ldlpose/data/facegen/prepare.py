"""Write facegen splits as prepared folders (Parquet shards + manifest), like ``ldlpose prepare synthhead``.

Not registered as an ``ldlpose prepare`` reader yet (the quickstart still trains on synthhead); the
sim2real bench calls :func:`prepare_facegen` directly. The folders say ``facegen`` and the protocol
version in their manifest, so they are never mistaken for synthhead's.
"""

from __future__ import annotations

from pathlib import Path

from ldlpose.data import preparation, records
from ldlpose.data.records import BadSample, Problem
from ldlpose.data.shards import ShardWriter
from ldlpose.data.sources import Settings
from ldlpose.errors import ConfigError

CHUNK = 100


def read_chunk(payload: tuple) -> list:
    """Worker entry point: render samples ``start .. start + count - 1`` of one split."""
    from PIL import Image

    from ldlpose.data import facegen

    split, start, count, size, seed, options = payload
    out: list[dict | Problem] = []
    for sample in facegen.generate(split, count, size=size, seed=seed, start=start):
        try:
            img = Image.fromarray(sample.image, mode="RGB")
            xy = sample.landmarks
            face = (float(xy[:, 0].min()), float(xy[:, 1].min()), float(xy[:, 0].max()), float(xy[:, 1].max()))
            out.append(records.make_row(img, tuple(sample.angles_deg), subject=sample.subject, source="facegen",
                                        key=sample.key, box=(0, 0, img.width, img.height), face_box=face,
                                        options=options))
        except BadSample as bad:
            out.append(Problem(sample.key, bad.kind, str(bad)))
    return out


def prepare_facegen(out_dir: Path, settings: Settings, *, train: int = 8000, val: int = 500, test: int = 500,
                    size: int = 64, seed: int = 0) -> dict[str, dict]:
    """``out_dir/<split>`` for every split with a positive count; manifests by split."""
    from ldlpose.data import facegen

    counts = {s: n for s, n in {"train": train, "val": val, "test": test}.items() if n > 0}
    if not counts or size < 16 or seed < 0:
        raise ConfigError(f"facegen needs a positive count, size >= 16 and seed >= 0; got {counts}, {size}, {seed}")
    writers = {s: ShardWriter(Path(out_dir) / s, dataset="facegen", image_format=settings.image.format,
                              shard_rows=settings.shard_rows, overwrite=settings.overwrite) for s in counts}
    tasks = [preparation.Task(s, (s, i, min(CHUNK, n - i), size, seed, settings.image), items=min(CHUNK, n - i))
             for s, n in counts.items() for i in range(0, n, CHUNK)]
    preparation.run(read_chunk, tasks, writers, workers=settings.workers, total=sum(counts.values()))
    generator = {"protocol": facegen.PROTOCOL, "size": size, "seed": seed,
                 "images_per_identity": facegen.IMAGES_PER_IDENTITY}
    return {
        s: w.close(source={"dataset": "facegen", "split": s, "count": counts[s], "generator": generator},
                   crop={"name": "facegen-300w-lp-train", "box": "hopenet_300wlp of the 68 landmarks, centred square"},
                   image=settings.image.as_dict(), subject_rule="facegen identity (sample // images_per_identity)",
                   filters={"stored": "every sample"}, command=settings.command)
        for s, w in writers.items()
    }
