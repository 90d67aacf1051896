"""The prepared-dataset format: a folder of Parquet shards and a manifest (see ``docs/data.md``).

A prepared dataset is a folder holding ``part-00000.parquet``, ``part-00001.parquet``, ... (at most
``shard_rows`` rows each) and ``_manifest.json``, written last, so a folder without a manifest is an
interrupted preparation. The manifest and ``_problems.jsonl`` start with ``_`` because Parquet
dataset readers (pyarrow, pandas, Ray Data) skip such files: ``pandas.read_parquet(folder)`` reads
the rows. Folders written before carry ``manifest.json`` and ``problems.jsonl`` and still load here.
One row per face::

    image                         binary   JPEG or PNG bytes of the loosely cropped face, RGB
    yaw, pitch, roll              float64  degrees, platform convention (ldlpose.geometry); may exceed
                                           180 (wrapped fits, flagged in the manifest)
    subject                       string   identity id (subject-disjoint splits, RankPose pairs)
    source                        string   dataset name given to `ldlpose prepare`
    key                           string   the original file (and index inside it)
    box_x0, box_y0, box_x1, box_y1 float32 the stored crop in original-image pixels
    face_x0, ..., face_y1         float32  tight face box (landmarks) in original pixels, NaN if unknown
    width, height                 int32    size of the stored image in pixels

The manifest's ``content_hash`` (sha256 over the shards' own hashes, in order) identifies the data
a run used; :func:`verify` recomputes it. Every read checks each shard against its hash in the
manifest first (:func:`shard_paths`), so a damaged or modified shard is an error naming it rather
than a Parquet error or, worse, silently different rows under the recorded hash; ``_verified.json``
beside the manifest remembers the shards already verified by (name, size, mtime), so a shard is
hashed once, not on every read (bench/trial_cost.py measures what the check adds to a trial).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ldlpose import __version__
from ldlpose.data import staging
from ldlpose.data.records import IMAGE_FORMATS, Problem, beyond_wrap
from ldlpose.errors import ConfigError, DataError
from ldlpose.infra.files import mismatched_files, sha256_file, write_durably

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "SCHEMA",
    "ShardWriter",
    "manifest_path",
    "read_labels",
    "read_manifest",
    "read_table",
    "shard_paths",
    "verify",
]

FORMAT = "ldlpose-headpose-shards"
FORMAT_VERSION = 1
MANIFEST = "_manifest.json"
PROBLEMS = "_problems.jsonl"
VERIFIED = "_verified.json"  # shards already checked against the manifest (a cache; see shard_paths)
LEGACY_MANIFEST, LEGACY_PROBLEMS = "manifest.json", "problems.jsonl"  # format 1 folders written before
MAX_PROBLEMS_IN_MANIFEST = 1000  # all of them go to _problems.jsonl
MAX_FLAGGED_KEYS = 1000
ROW_GROUP_ROWS = 512

_BOX = ["box_x0", "box_y0", "box_x1", "box_y1"]
_FACE = ["face_x0", "face_y0", "face_x1", "face_y1"]
SCHEMA = pa.schema(
    [("image", pa.binary())]
    + [(name, pa.float64()) for name in ("yaw", "pitch", "roll")]
    + [(name, pa.string()) for name in ("subject", "source", "key")]
    + [(name, pa.float32()) for name in _BOX + _FACE]
    + [("width", pa.int32()), ("height", pa.int32())]
)
LABEL_COLUMNS = ["yaw", "pitch", "roll", "subject", "key"]


def _content_hash(shards: list[dict]) -> str:
    lines = "".join(f"{s['file']} {s['rows']} {s['sha256']}\n" for s in shards)
    return "sha256:" + hashlib.sha256(lines.encode()).hexdigest()


class ShardWriter:
    """Streams rows into ``part-NNNNN.parquet`` files and writes the manifest on :meth:`close`.

    Holds at most one row group in memory. Writes into a sibling folder and swaps it in for
    ``out_dir`` only when :meth:`close` has written the manifest (:mod:`ldlpose.data.staging`), so
    ``out_dir`` always holds a complete dataset, the old one or the new one. Refuses a folder that
    already holds a prepared dataset unless ``overwrite``, which replaces only the files of the old
    dataset (its manifest's shards, manifest and problem list); other files in the folder survive.
    """

    def __init__(self, out_dir, *, dataset: str, image_format: str = "jpeg", shard_rows: int = 4096,
                 overwrite: bool = False):
        if image_format not in IMAGE_FORMATS:
            raise ConfigError(f"image format must be one of {IMAGE_FORMATS}, got {image_format!r}")
        if shard_rows < 1:
            raise ConfigError(f"shard rows must be >= 1, got {shard_rows}")
        self.out_dir = Path(out_dir)
        self.dataset, self.image_format, self.shard_rows = dataset, image_format, shard_rows
        staging.recover(self.out_dir, _is_complete)
        _claim(self.out_dir, overwrite)
        self._dir = staging.fresh(self.out_dir)
        self._buffer: list[dict] = []
        self._writer: pq.ParquetWriter | None = None
        self._shards: list[dict] = []
        self._rows_in_shard = 0
        self._problems_file = open(self._dir / PROBLEMS, "w")  # noqa: SIM115 (open across writes; close() closes it)
        self.problems: list[Problem] = []  # the first MAX_PROBLEMS_IN_MANIFEST
        self.problem_counts: Counter[str] = Counter()
        self.rows = 0
        self._subjects: set[str] = set()
        self._angle_min = [math.inf] * 3
        self._angle_max = [-math.inf] * 3
        self._within_99 = 0
        self._beyond_180: list[str] = []  # keys of rows whose angles wrapped past 180 degrees
        self.beyond_180 = 0

    def add(self, row: dict) -> None:
        self._buffer.append(row)
        self.rows += 1
        self._subjects.add(row["subject"])
        angles = (row["yaw"], row["pitch"], row["roll"])
        self._angle_min = [min(a, b) for a, b in zip(self._angle_min, angles)]
        self._angle_max = [max(a, b) for a, b in zip(self._angle_max, angles)]
        self._within_99 += all(abs(a) <= 99.0 for a in angles)
        if beyond_wrap(angles):
            self.beyond_180 += 1
            if len(self._beyond_180) < MAX_FLAGGED_KEYS:
                self._beyond_180.append(row["key"])
        if len(self._buffer) >= min(ROW_GROUP_ROWS, self.shard_rows - self._rows_in_shard):
            self._flush()

    def add_problem(self, problem: Problem) -> None:
        self.problem_counts[problem.kind] += 1
        if len(self.problems) < MAX_PROBLEMS_IN_MANIFEST:
            self.problems.append(problem)
        self._problems_file.write(json.dumps(problem.as_dict()) + "\n")

    def _flush(self) -> None:
        if not self._buffer:
            return
        if self._writer is None:
            name = f"part-{len(self._shards):05d}.parquet"
            self._shards.append({"file": name, "rows": 0})
            # Images are already compressed; zstd only pays off on the other columns.
            compression = {field.name: ("NONE" if field.name == "image" else "ZSTD") for field in SCHEMA}
            self._writer = pq.ParquetWriter(self._dir / name, SCHEMA, compression=compression)
        table = pa.Table.from_pylist(self._buffer, schema=SCHEMA)
        self._writer.write_table(table, row_group_size=len(self._buffer))
        self._shards[-1]["rows"] += len(self._buffer)
        self._rows_in_shard += len(self._buffer)
        self._buffer = []
        if self._rows_in_shard >= self.shard_rows:
            self._close_shard()

    def _close_shard(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self._shards[-1]["sha256"] = sha256_file(self._dir / self._shards[-1]["file"])
            self._rows_in_shard = 0

    def close(self, *, source: dict, crop: dict, image: dict, subject_rule: str,
              filters: dict | None = None, extra: dict | None = None, command: str | None = None) -> dict:
        """Finish the last shard, write ``_manifest.json`` and swap the new folder in; returns the manifest."""
        self._flush()
        self._close_shard()
        self._problems_file.close()
        if self.rows == 0:
            raise DataError(
                f"no rows were prepared for {self.dataset} into {self.out_dir}: "
                f"{sum(self.problem_counts.values())} source files failed ({dict(self.problem_counts)}); "
                f"see {self._dir / PROBLEMS} (removed by the next preparation); {self.out_dir} is unchanged"
            )
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "dataset": self.dataset,
            "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "ldlpose_version": __version__,
            "command": command,
            "source": source,
            "image": image,
            "crop": crop,
            "subject_rule": subject_rule,
            "filters": filters or {},
            "rows": self.rows,
            "subjects": len(self._subjects),
            "angles_deg": {
                "order": "yaw, pitch, roll (degrees, ldlpose.geometry convention)",
                "min": self._angle_min,
                "max": self._angle_max,
                "rows_all_within_99": self._within_99,
                "rows_beyond_180": self.beyond_180,
                "keys_beyond_180": self._beyond_180,
            },
            "errors": {
                "count": sum(self.problem_counts.values()),
                "by_kind": dict(sorted(self.problem_counts.items())),
                "items": [p.as_dict() for p in self.problems],
                "complete_list": PROBLEMS,
            },
            "shards": self._shards,
            "content_hash": _content_hash(self._shards),
            **(extra or {}),
        }
        write_durably(self._dir / MANIFEST, json.dumps(manifest, indent=2) + "\n")
        staging.swap_in(self._dir, self.out_dir, _owned(self.out_dir))
        return manifest

    def abort(self) -> None:
        """Close files after a failure and remove the unfinished folder; ``out_dir`` stays as it was."""
        if self._writer is not None:
            self._writer.close()
        self._problems_file.close()
        staging.discard(self._dir)


_OWNED_NAMES = (MANIFEST, PROBLEMS, VERIFIED, LEGACY_MANIFEST, LEGACY_PROBLEMS)


def _owned(out_dir: Path) -> set[str]:
    """The files of the dataset in ``out_dir`` that a new one replaces: its fixed names and the
    shards its manifest lists (nothing else, however it is named)."""
    try:
        shards = {s["file"] for s in json.loads(manifest_path(out_dir).read_text())["shards"]}
    except (OSError, ValueError, KeyError, TypeError):  # no readable manifest: no listed shards
        shards = set()
    return set(_OWNED_NAMES) | shards


def _is_complete(out_dir: Path) -> bool:
    return manifest_path(out_dir).is_file()


def _claim(out_dir: Path, overwrite: bool) -> None:
    if not out_dir.is_dir():
        return
    old = sorted(out_dir.glob("part-*.parquet")) + [p for p in map(out_dir.joinpath, _OWNED_NAMES) if p.exists()]
    if old and not overwrite:
        raise ConfigError(
            f"{out_dir} already holds a prepared dataset ({len(old)} files such as {old[0].name}); "
            "choose another --out or pass --overwrite to replace it"
        )


def manifest_path(dataset_dir) -> Path:
    """``_manifest.json`` of the folder, or ``manifest.json`` in a folder written before it had the ``_``."""
    path = Path(dataset_dir) / MANIFEST
    legacy = Path(dataset_dir) / LEGACY_MANIFEST
    return legacy if not path.is_file() and legacy.is_file() else path


def read_manifest(dataset_dir) -> dict:
    """The manifest of a prepared dataset, or DataError saying what is wrong with the folder."""
    path = manifest_path(dataset_dir)
    if not path.is_file():  # perhaps a preparation was killed while it swapped the folders
        staging.recover(Path(dataset_dir), _is_complete)
        path = manifest_path(dataset_dir)
    if not path.is_file():
        hint = (" (it has shards but no manifest: the preparation did not finish; run it again)"
                if list(Path(dataset_dir).glob("part-*.parquet")) else "")
        raise DataError(f"{dataset_dir} is not a prepared dataset: {path} is missing{hint}; "
                        "create it with `ldlpose prepare`")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"cannot read {path}: {err}") from err
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise DataError(
            f"{path} has format {manifest.get('format')!r} version {manifest.get('format_version')!r}; "
            f"this ldlpose reads {FORMAT!r} version {FORMAT_VERSION}: prepare the data again"
        )
    return manifest


def shard_paths(dataset_dir, manifest: dict | None = None) -> list[Path]:
    """The shards of a prepared dataset, in manifest order, each checked against its manifest hash
    (shards verified before are not read again: :data:`VERIFIED`); DataError naming every missing or
    damaged shard."""
    manifest = manifest or read_manifest(dataset_dir)
    paths = _listed_shards(dataset_dir, manifest)
    expected = {path: s["sha256"] for path, s in zip(paths, manifest["shards"]) if s.get("sha256")}
    bad = mismatched_files(expected, manifest_path(dataset_dir).with_name(VERIFIED))
    if bad:
        raise DataError(f"{dataset_dir}: {len(bad)} of {len(paths)} shards do not match their sha256 in "
                        f"{manifest_path(dataset_dir).name} (damaged or modified since preparation): "
                        f"{', '.join(p.name for p in bad)}; prepare the dataset again (ldlpose prepare "
                        "... --overwrite) or restore those files")
    return paths


def _listed_shards(dataset_dir, manifest: dict) -> list[Path]:
    paths = [Path(dataset_dir) / s["file"] for s in manifest["shards"]]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise DataError(f"{dataset_dir}: shards listed in the manifest are missing: {missing[:3]}")
    return paths


def read_table(dataset_dir, columns: list[str] | None = None) -> pa.Table:
    """All rows of a prepared dataset (only ``columns`` if given), in manifest order."""
    manifest = read_manifest(dataset_dir)
    tables = [pq.read_table(p, columns=columns, schema=SCHEMA) for p in shard_paths(dataset_dir, manifest)]
    table = pa.concat_tables(tables)
    if table.num_rows != manifest["rows"]:
        raise DataError(f"{dataset_dir}: shards hold {table.num_rows} rows, the manifest says "
                        f"{manifest['rows']}; the folder was modified: prepare it again")
    return table


def read_labels(dataset_dir) -> dict[str, np.ndarray]:
    """Small per-row columns without images: ``angles_deg`` (N, 3) float64, ``subject``, ``key``."""
    table = read_table(dataset_dir, columns=LABEL_COLUMNS)
    angles = np.stack([table.column(c).to_numpy() for c in ("yaw", "pitch", "roll")], axis=1)
    return {
        "angles_deg": angles.astype(np.float64),
        "subject": np.asarray(table.column("subject").to_pylist(), dtype=object),
        "key": np.asarray(table.column("key").to_pylist(), dtype=object),
    }


def verify(dataset_dir) -> str:
    """Recompute every shard's hash; returns the content hash or raises DataError on a mismatch."""
    manifest = read_manifest(dataset_dir)
    for shard, path in zip(manifest["shards"], _listed_shards(dataset_dir, manifest)):
        if sha256_file(path) != shard["sha256"]:
            raise DataError(f"{path} does not match its hash in the manifest; the shard was modified")
    expected = _content_hash(manifest["shards"])
    if expected != manifest["content_hash"]:
        raise DataError(f"{dataset_dir}: manifest content_hash does not match its shard list")
    return expected


def sample_rows(dataset_dir, count: int, rows=None) -> tuple[list, np.ndarray]:
    """Up to ``count`` evenly spaced rows (of ``rows``, default all) as decoded RGB images and angles.

    Returns ``(images, angles_deg)``: a list of (H, W, 3) uint8 arrays (sizes may differ) and an
    (N, 3) float array of yaw/pitch/roll in degrees. For plots and spot checks, not for training.
    """
    import io

    from PIL import Image

    labels = read_labels(dataset_dir)
    rows = np.arange(len(labels["angles_deg"])) if rows is None else np.asarray(rows)
    picked = rows[np.linspace(0, len(rows) - 1, min(count, len(rows))).round().astype(int)] if len(rows) else rows
    table = read_table(dataset_dir, columns=["image"]).take(pa.array(picked, type=pa.int64()))
    images = [np.asarray(Image.open(io.BytesIO(b.as_py())).convert("RGB")) for b in table.column("image")]
    return images, labels["angles_deg"][picked].astype(np.float64)
