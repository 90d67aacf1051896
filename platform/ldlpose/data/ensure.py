"""Data a run needs, made on first use where ldlpose can make it (facegen, synthhead).

Real datasets are never downloaded: a missing prepared folder of theirs is an error that names the
``ldlpose prepare`` command to run.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ldlpose.data import benchmarks
from ldlpose.data.shards import manifest_path

# First-use sizes: enough for the CPU examples to learn a useful model (about 1,000 distinct faces of 8
# views each; with 4,000 images a short run overfits the faces it has seen, see the quickstart space).
FIRST_USE_COUNTS = {"train": 8000, "val": 500, "test": 500}
GENERATED = ("facegen", "synthhead")  # the datasets ldlpose makes itself (ldlpose.data.sources.synth)


def _folder(root: Path, folder: str) -> Path:
    path = Path(folder).expanduser()
    return path if path.is_absolute() else root / path


def _needed_folders(run) -> list[Path]:
    root = Path(run.data.root).expanduser()
    folders = [_folder(root, run.data.train)] + ([_folder(root, run.data.val)] if run.data.val else [])
    folders += [benchmarks.get(name).path(root) for name in run.data.benchmarks]
    return folders


def ensure_training_data(run) -> None:
    """Generate facegen or synthhead under ``run.data.root`` if the run uses it and it is missing
    (never under a URI: data in object storage is prepared and uploaded by its owner); refuse a
    facegen folder that another version of the generator made."""
    from ldlpose.data.shards import read_manifest
    from ldlpose.data.sources.synth import check_generator
    from ldlpose.infra import storage

    if storage.is_uri(run.data.root):
        return
    root = Path(run.data.root).expanduser().resolve()
    needed = [p.resolve() for p in _needed_folders(run)]
    for path in needed:
        if manifest_path(path).is_file():
            check_generator(path, read_manifest(path))
    for name in GENERATED:
        top = root / name
        missing = [p for p in needed if p.parent == top and not manifest_path(p).is_file()]
        if not missing or (top.exists() and any(top.iterdir())):
            continue  # partially there: let the loaders name exactly what is missing rather than overwrite
        _generate(name, top, run.data.image_size)


def _generate(name: str, out: Path, image_size: int) -> None:
    from ldlpose.data import preparation, readers
    from ldlpose.data.sources import Settings

    print(f"[ldlpose] generating {name} {FIRST_USE_COUNTS} at {image_size} px into {out} (first use)",
          file=sys.stderr, flush=True)
    settings = Settings(workers=preparation.default_workers(), command="ensure_training_data")
    readers.get(name).run(out, settings, {**FIRST_USE_COUNTS, "size": image_size})
