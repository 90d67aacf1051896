"""What a run's data is, asked in one place: its manifests, its benchmarks' identities, its validation
rows' identity and a few sample images.

The search (its driver, the trials' finalisation, registration), ``ldlpose train``'s record and the
consoles ask these questions of one :class:`RunData`, made from a run config's ``data`` section,
which resolves the data root once (a URI root: this node's local copy of it, made on first use).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ldlpose.data import benchmarks
from ldlpose.data.shards import read_manifest


class DataSection(Protocol):
    """The fields of a run config's ``data`` section that say which data a run reads."""

    root: str
    train: str
    val: str | None
    val_fraction: float
    benchmarks: list[str]
    max_abs_angle_deg: float | None
    max_eval_samples: int | None


@dataclass(frozen=True)
class RunData:
    """The data of one run config (``section``, its ``data``) under its resolved ``root``."""

    section: DataSection
    root: Path

    @classmethod
    def of(cls, section: DataSection) -> RunData:
        return cls(section, benchmarks.data_root(section.root))

    def folder(self, folder: str) -> Path:
        """A prepared folder named in the config: relative to the data root, or absolute."""
        path = Path(folder).expanduser()
        return path if path.is_absolute() else self.root / path

    def manifests(self) -> dict[str, dict]:
        """The manifests of the data a run reads: ``train``, ``val`` (when a folder) and each benchmark."""
        d = self.section
        folders = {"train": self.folder(d.train), **({"val": self.folder(d.val)} if d.val else {})}
        folders.update({name: benchmarks.get(name).path(self.root) for name in d.benchmarks})
        return {name: read_manifest(folder) for name, folder in folders.items()}

    def benchmark_identities(self) -> dict[str, dict]:
        """Per benchmark: its protocol name, the prepared data's content hash and row count, which every
        score on it carries (tags on trial runs and registered versions)."""
        result = {}
        for name in self.section.benchmarks:
            bench = benchmarks.get(name)
            folder = bench.resolve(self.root)
            result[name] = {**bench.identity(folder), "rows": int(read_manifest(folder)["rows"])}
        return result

    def validation_split(self) -> dict:
        """What identifies the validation rows a run is selected on: ``{"name", "rows", "content_hash"}``.

        The hash covers the prepared data's own content hash and the exact row indices (after the angle
        filter, the subject split and ``data.max_eval_samples``): two runs are comparable on validation
        exactly when their hashes agree.
        """
        from ldlpose.data.splits import VAL_SPLIT_SEED, rows_within, split_by_subject

        d = self.section
        folder = self.folder(d.val if d.val else d.train)
        if d.val:
            rows = (rows_within(folder, d.max_abs_angle_deg) if d.max_abs_angle_deg is not None
                    else np.arange(int(read_manifest(folder)["rows"])))
            name = d.val
        else:
            kept = rows_within(folder, d.max_abs_angle_deg) if d.max_abs_angle_deg is not None else None
            rows = split_by_subject(folder, d.val_fraction, VAL_SPLIT_SEED, indices=kept)[1]
            name = f"{d.train} (subject-disjoint {d.val_fraction:g}, split seed {VAL_SPLIT_SEED})"
        if d.max_eval_samples is not None and d.max_eval_samples < len(rows):
            rows = rows[np.linspace(0, len(rows) - 1, d.max_eval_samples).round().astype(int)]
        identity = json.dumps([read_manifest(folder).get("content_hash"), np.asarray(rows).tolist()])
        return {"name": name, "rows": len(rows), "content_hash": hashlib.sha256(identity.encode()).hexdigest()}

    def eval_samples(self, count: int = 32) -> dict[str, tuple[list, np.ndarray]]:
        """A few images per benchmark (uint8 RGB, true angles) for the trials' plots."""
        from ldlpose.data.shards import sample_rows

        data = {}
        for name in self.section.benchmarks:
            bench = benchmarks.get(name)
            folder = bench.resolve(self.root)
            data[name] = sample_rows(folder, count, rows=bench.row_indices(folder))
        return data
