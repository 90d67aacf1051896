"""Named evaluation benchmarks: which prepared folder, which rows count, how to create the data.

A benchmark resolves to a folder under the data root (the ``root`` argument, else ``$LDLPOSE_DATA``,
else ``./ldlpose-data``). Its filter lives here, not in the data: AFLW2000 keeps all 2,000 rows on
disk and the ``aflw2000`` benchmark evaluates the 1,969 with every |angle| <= 99 degrees (spec 4.2,
pitfall 7), as HopeNet, FSA-Net, 6DRepNet and RankPose do. Each benchmark also names the training
data of its protocol, so a run can find both from the benchmark's name.

    >>> bench = get("aflw2000")
    >>> test_dir = bench.resolve()            # DataError naming the `ldlpose prepare` command if absent
    >>> rows = bench.row_indices(test_dir)    # the rows that count
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ldlpose.errors import ConfigError, DataError, unknown

__all__ = ["Benchmark", "available", "data_root", "get", "register"]

DATA_ENV = "LDLPOSE_DATA"
DEFAULT_ROOT = "ldlpose-data"


def data_root(root=None) -> Path:
    """``root`` if given, else ``$LDLPOSE_DATA``, else ``./ldlpose-data``."""
    return Path(root if root is not None else os.environ.get(DATA_ENV) or DEFAULT_ROOT)


@dataclass(frozen=True)
class Benchmark:
    """An evaluation set: ``folder`` (under the data root) and the rows that count.

    ``max_abs_angle_deg``: keep rows whose yaw, pitch and roll all satisfy |angle| <= this (None:
    every row). ``train_folder``/``val_folder``: the protocol's training data (``val_folder`` None
    means hold out a subject-disjoint part of the training data).
    """

    name: str
    description: str
    folder: str
    max_abs_angle_deg: float | None = None
    train_folder: str | None = None
    val_folder: str | None = None

    def path(self, root=None) -> Path:
        return data_root(root) / self.folder

    def resolve(self, root=None, folder: str | None = None) -> Path:
        """The prepared folder (``folder`` defaults to the test set), or DataError with the fix."""
        from ldlpose.data.shards import MANIFEST

        folder = folder or self.folder
        path = data_root(root) / folder
        if not (path / MANIFEST).is_file():
            top = folder.split("/")[0]
            raise DataError(
                f"benchmark {self.name!r} needs prepared data in {path}, which has no {MANIFEST}; "
                f"create it with: {PREPARE_COMMANDS[top].format(path=data_root(root) / top)}"
            )
        return path

    def resolve_train(self, root=None) -> Path:
        if self.train_folder is None:
            raise ConfigError(f"benchmark {self.name!r} defines no training data")
        return self.resolve(root, self.train_folder)

    def keep(self, angles_deg):
        """Boolean mask (numpy) of the rows that count, from (N, 3) angles in degrees."""
        import numpy as np

        angles = np.asarray(angles_deg, dtype=np.float64)
        if self.max_abs_angle_deg is None:
            return np.ones(len(angles), dtype=bool)
        return (np.abs(angles) <= self.max_abs_angle_deg).all(axis=1)  # <=, as the reference scripts

    def row_indices(self, dataset_dir=None, root=None):
        """Indices (numpy int64) of the rows of the prepared test folder that count."""
        import numpy as np

        from ldlpose.data.shards import read_labels

        labels = read_labels(dataset_dir if dataset_dir is not None else self.resolve(root))
        return np.flatnonzero(self.keep(labels["angles_deg"])).astype(np.int64)


# How to create each top-level folder under the data root.
PREPARE_COMMANDS = {
    "synthhead": "ldlpose prepare synthhead --out {path}",
    "aflw2000": "ldlpose prepare aflw2000 --source <AFLW2000 folder> --out {path}",
    "300w-lp": "ldlpose prepare 300w-lp --source <300W-LP folder> --out {path}",
    "biwi-p1": "ldlpose prepare biwi --protocol 1 --source <folder with BIWI_noTrack.npz or the BIWI "
               "videos 01..24> --out {path}",
    "biwi-p2": "ldlpose prepare biwi --protocol 2 --source <folder with BIWI_train.npz and BIWI_test.npz "
               "or the BIWI videos 01..24> --out {path}",
}

_REGISTRY: dict[str, Benchmark] = {}


def register(benchmark: Benchmark) -> Benchmark:
    if benchmark.name in _REGISTRY:
        raise ConfigError(f"benchmark {benchmark.name!r} is registered twice")
    _REGISTRY[benchmark.name] = benchmark
    return benchmark


def get(name: str) -> Benchmark:
    if name not in _REGISTRY:
        raise unknown("benchmark", name, _REGISTRY)
    return _REGISTRY[name]


def available() -> list[str]:
    return sorted(_REGISTRY)


register(Benchmark(
    name="synth",
    description="synthhead test split (built in; no download), every row",
    folder="synthhead/test",
    train_folder="synthhead/train",
    val_folder="synthhead/val",
))
register(Benchmark(
    name="aflw2000",
    description="protocol 1: train 300W-LP, test AFLW2000 rows with all |angle| <= 99 (1,969 of 2,000)",
    folder="aflw2000",
    max_abs_angle_deg=99.0,
    train_folder="300w-lp",
))
register(Benchmark(
    name="biwi",
    description="protocol 1: train 300W-LP, test BIWI (FSA-Net's BIWI_noTrack) rows with all |angle| <= 99",
    folder="biwi-p1",
    max_abs_angle_deg=99.0,
    train_folder="300w-lp",
))
register(Benchmark(
    name="biwi-p2",
    description="protocol 2: BIWI 70/30 split by video (16 train, 8 test), every test row",
    folder="biwi-p2/test",
    train_folder="biwi-p2/train",
))
