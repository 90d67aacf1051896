"""Data a run needs, made on first use where ldlpose can make it (synthhead).

Real datasets are never downloaded: a missing prepared folder of theirs is an error that names the
``ldlpose prepare`` command to run.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ldlpose.data import benchmarks
from ldlpose.data.shards import manifest_path

# First-use sizes: enough for the CPU examples to learn a useful model (about 1,000 distinct heads of 8
# views each; with 4,000 images a short run overfits the heads it has seen, see the quickstart space),
# about 50 s to render on 2 cores.
SYNTHHEAD_COUNTS = {"train": 8000, "val": 500, "test": 500}


def _folder(root: Path, folder: str) -> Path:
    path = Path(folder).expanduser()
    return path if path.is_absolute() else root / path


def _needed_folders(run) -> list[Path]:
    root = Path(run.data.root).expanduser()
    folders = [_folder(root, run.data.train)] + ([_folder(root, run.data.val)] if run.data.val else [])
    folders += [benchmarks.get(name).path(root) for name in run.data.benchmarks]
    return folders


def ensure_training_data(run) -> None:
    """Generate synthhead under ``run.data.root`` if the run uses it and it is missing (never
    under a URI: data in object storage is prepared and uploaded by its owner)."""
    from ldlpose.infra import storage

    if storage.is_uri(run.data.root):
        return
    root = Path(run.data.root).expanduser().resolve()
    synth = root / "synthhead"
    missing = [p for p in _needed_folders(run) if not manifest_path(p.resolve()).is_file()]
    if not any(p.resolve().parent == synth for p in missing):
        return
    if synth.exists() and any(synth.iterdir()):
        return  # partially there: let the loaders name exactly what is missing rather than overwrite
    from ldlpose.data import preparation, readers
    from ldlpose.data.sources import Settings

    image_size = run.data.image_size
    print(f"[ldlpose] generating synthhead {SYNTHHEAD_COUNTS} at {image_size} px into {synth} (first use)",
          file=sys.stderr, flush=True)
    settings = Settings(workers=preparation.default_workers(), command="ensure_training_data")
    readers.get("synthhead").run(synth, settings, {**SYNTHHEAD_COUNTS, "size": image_size})
