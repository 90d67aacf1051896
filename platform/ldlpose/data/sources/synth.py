"""The built-in generated datasets, written as ``train``, ``val``, ``test``: facegen and synthhead.

* ``facegen`` (:mod:`ldlpose.data.facegen`): faces framed and photographed like 300W-LP's training
  crops; the quickstart's data, and the benchmark whose models work on real faces.
* ``synthhead`` (:mod:`ldlpose.data.synthhead`): whole cartoon heads, small in the frame; kept
  runnable so that results made with it can be reproduced and compared.

Sample ``i`` of a split does not depend on how the index range is chunked, so workers generate
disjoint ranges in parallel and the shards are identical for any ``--workers``. Each image is
stored whole (it is already the network's view of the face): ``box`` is the full image and
``face_*`` the face's box (the landmark box for facegen, the rendered head's box for synthhead).
The manifest records the generator, its version and every option, so a folder made by another
version is known (:func:`check_generator`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ldlpose.data import preparation, records
from ldlpose.data.records import BadSample, Problem
from ldlpose.data.shards import ShardWriter
from ldlpose.data.sources import Settings
from ldlpose.errors import ConfigError, DataError, unknown

__all__ = ["GENERATED", "check_generator", "prepare_facegen", "prepare_synthhead", "write_facegen"]

CHUNK = 100
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class _Generated:
    """What differs between the generated datasets: how a chunk is rendered and how it is described."""

    dataset: str
    read_chunk: Callable[[tuple], list]
    crop: dict
    subject_rule: str


def _rows(samples, dataset: str, options, face_box) -> list:
    from PIL import Image

    out: list[dict | Problem] = []
    for sample in samples:
        try:
            img = Image.fromarray(sample.image, mode="RGB")
            out.append(records.make_row(img, tuple(sample.angles_deg), subject=sample.subject, source=dataset,
                                        key=sample.key, box=(0, 0, img.width, img.height),
                                        face_box=face_box(sample), options=options))
        except BadSample as bad:
            out.append(Problem(sample.key, bad.kind, str(bad)))
    return out


def _landmark_box(sample) -> tuple[float, float, float, float]:
    xy = sample.landmarks
    return float(xy[:, 0].min()), float(xy[:, 1].min()), float(xy[:, 0].max()), float(xy[:, 1].max())


def read_synthhead_chunk(payload: tuple) -> list:
    """Worker entry point: render synthhead samples ``start .. start + count - 1`` of one split."""
    from ldlpose.data import synthhead

    split, start, count, size, seed, generator, options = payload
    samples = synthhead.generate(split, count, size=size, seed=seed, occluders=generator["occluders"], start=start)
    return _rows(samples, "synthhead", options, lambda s: s.box)


def read_facegen_chunk(payload: tuple) -> list:
    """Worker entry point: render facegen samples ``start .. start + count - 1`` of one split."""
    from ldlpose.data import facegen

    split, start, count, size, seed, generator, options = payload
    samples = facegen.generate(split, count, size=size, seed=seed, start=start,
                               recipe=facegen.Recipe(**generator["ingredients"]))
    return _rows(samples, "facegen", options, _landmark_box)


GENERATED = {
    "synthhead": _Generated("synthhead", read_synthhead_chunk,
                            {"name": "synthhead-full-image", "box": "the whole rendered image"},
                            "synthhead identity (sample // images_per_identity)"),
    "facegen": _Generated("facegen", read_facegen_chunk,
                          {"name": "facegen-300w-lp-train",
                           "box": "300W-LP's training crop of the 68 landmarks (or AFLW2000's test crop of a "
                                  "simulated picture), centred square"},
                          "facegen identity (sample // images_per_identity)"),
}


def _check(dataset: str, counts: dict[str, int], size: int, seed: int) -> dict[str, int]:
    """Fail on bad arguments here, once, rather than in every worker; the splits to write."""
    for split in counts:
        if split not in SPLITS:
            raise unknown(f"{dataset} split", split, SPLITS)
    checks = [(f"--{s} count", n, 0) for s, n in counts.items()] + [("--size", size, 16), ("--seed", seed, 0)]
    for name, value, low in checks:
        if value < low:
            raise ConfigError(f"{dataset} {name} must be >= {low}, got {value}")
    if not any(counts.values()):
        raise ConfigError(f"{dataset} needs at least one of --train, --val, --test above 0")
    return {s: n for s, n in counts.items() if n > 0}


def _write(kind: _Generated, out_dir: Path, settings: Settings, counts: dict[str, int], size: int, seed: int,
           generator: dict) -> dict[str, dict]:
    counts = _check(kind.dataset, counts, size, seed)
    writers = {s: ShardWriter(Path(out_dir) / s, dataset=kind.dataset, image_format=settings.image.format,
                              shard_rows=settings.shard_rows, overwrite=settings.overwrite) for s in counts}
    tasks = [preparation.Task(s, (s, i, min(CHUNK, n - i), size, seed, generator, settings.image),
                              items=min(CHUNK, n - i))
             for s, n in counts.items() for i in range(0, n, CHUNK)]
    preparation.run(kind.read_chunk, tasks, writers, workers=settings.workers, total=sum(counts.values()))
    return {
        s: w.close(source={"dataset": kind.dataset, "split": s, "count": counts[s],
                           "generator": {**generator, "size": size, "seed": seed}},
                   crop=kind.crop, image=settings.image.as_dict(), subject_rule=kind.subject_rule,
                   filters={"stored": "every sample"}, command=settings.command)
        for s, w in writers.items()
    }


def prepare_synthhead(out_dir: Path, settings: Settings, *, train: int = 2000, val: int = 500, test: int = 500,
                      size: int = 64, seed: int = 0, no_occluders: bool = False) -> dict[str, dict]:
    """The ``synthhead`` reader: ``out_dir/<split>`` for every split with a positive count; manifests by split."""
    from ldlpose.data import synthhead

    generator = {"occluders": not no_occluders, "images_per_identity": synthhead.IMAGES_PER_IDENTITY,
                 "pose": "PoseDistribution() default"}
    return _write(GENERATED["synthhead"], out_dir, settings, {"train": train, "val": val, "test": test},
                  size, seed, generator)


def prepare_facegen(out_dir: Path, settings: Settings, *, train: int = 8000, val: int = 500, test: int = 500,
                    size: int = 64, seed: int = 0) -> dict[str, dict]:
    """The ``facegen`` reader: ``out_dir/<split>`` for every split with a positive count; manifests by split."""
    return write_facegen(out_dir, settings, {"train": train, "val": val, "test": test}, size=size, seed=seed)


def write_facegen(out_dir: Path, settings: Settings, counts: dict[str, int], *, size: int = 64, seed: int = 0,
                  recipe=None) -> dict[str, dict]:
    """facegen's splits with ``recipe`` (:class:`ldlpose.data.facegen.Recipe`; default: every ingredient,
    the protocol), recorded in the manifest: the ablations of ``bench/sim2real.py`` turn ingredients off."""
    from ldlpose.data import facegen

    generator = {"protocol": facegen.PROTOCOL, "images_per_identity": facegen.IMAGES_PER_IDENTITY,
                 "ingredients": (recipe or facegen.Recipe()).as_dict()}
    return _write(GENERATED["facegen"], out_dir, settings, counts, size, seed, generator)


def check_generator(folder: Path, manifest: dict) -> None:
    """Refuse a facegen folder that another version of the generator made: training on it, or testing
    on it, would mix two protocols under one name."""
    from ldlpose.data import facegen

    source = manifest.get("source") or {}
    if source.get("dataset") != "facegen":
        return
    made_by = (source.get("generator") or {}).get("protocol")
    if made_by != facegen.PROTOCOL:
        out = folder.parent if folder.name in SPLITS else folder
        raise DataError(f"{folder}: made by {made_by or 'an unversioned facegen'}, but this ldlpose generates "
                        f"{facegen.PROTOCOL}; its images are not what the {facegen.PROTOCOL} benchmark means. "
                        f"Generate it again: ldlpose prepare facegen --out {out} --overwrite")
