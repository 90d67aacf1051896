"""FSA-Net's ``.npz`` files: ``image`` (N x S x S x 3 uint8, **BGR** from cv2) and ``pose``
(N x 3, **[yaw, pitch, roll] in degrees**), docs/methods.md#fsa-net-npz and #pitfalls, 8.

The images are already FSA-Net's crops (300W-LP subsets and AFLW2000: landmark box enlarged by 0.6
of its size on each side; BIWI: MTCNN box enlarged by 0.4), so each stored row is the whole npz
image converted to RGB and its box is ``(0, 0, S, S)`` in npz pixels. The files keep no file names
or identities, so each row is its own subject (``<file stem>#<index>``): a "subject-disjoint" split
of such data is a row split.

The image array is streamed out of the zip a chunk at a time (works for ``np.savez`` and
``np.savez_compressed``), so a multi-gigabyte npz never sits in memory whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ldlpose.data import preparation, records
from ldlpose.data.records import BadSample, Problem
from ldlpose.data.shards import ShardWriter
from ldlpose.data.sources import Settings
from ldlpose.errors import DataError

CHUNK = 256  # images per task (64 x 64 x 3 x 256 = 3 MB)

FSANET_CROP = {
    "name": "fsanet-npz",
    "description": "as stored in the npz: FSA-Net type-1 crop (pt2d box, ad = 0.6 on each side) for "
                   "300W-LP/AFLW2000, MTCNN box with ad = 0.4 for BIWI; resized to S x S",
    "box": "(0, 0, S, S) in npz image pixels",
}
SUBJECT_RULE = "one subject per row ('<npz stem>#<index>'): FSA-Net npz files keep no identities"


class _ImageStream:
    """Header and chunked reader for the ``image.npy`` member of an npz (zip) file."""

    def __init__(self, zf, name: str):
        self.file = zf.open(name)
        version = np.lib.format.read_magic(self.file)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(self.file)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(self.file)
        else:
            raise ValueError(f"unsupported .npy version {version}")
        if fortran or dtype != np.uint8 or len(shape) != 4 or shape[3] != 3:
            raise ValueError(f"'image' must be a C-ordered uint8 array N x S x S x 3, "
                             f"got {dtype} {shape}{' (Fortran order)' if fortran else ''}")
        self.shape = shape

    def read(self, rows: int) -> np.ndarray:
        need = rows * int(np.prod(self.shape[1:]))
        data = bytearray()
        while len(data) < need:
            block = self.file.read(need - len(data))
            if not block:
                raise ValueError(f"'image' ends early: {len(data)} of {need} bytes read")
            data += block
        return np.frombuffer(bytes(data), dtype=np.uint8).reshape(rows, *self.shape[1:])


def npz_tasks(path: Path, target: str, dataset: str, options: records.ImageOptions) -> Iterator[preparation.Task]:
    """Tasks for one npz file, or a single problem task when the file itself is unusable."""
    import zipfile

    key = path.name
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if not {"image.npy", "pose.npy"} <= names:
                raise ValueError(f"expected arrays 'image' and 'pose', found {sorted(n[:-4] for n in names)}")
            with zf.open("pose.npy") as f:
                pose = np.lib.format.read_array(f).astype(np.float64)
            stream = _ImageStream(zf, "image.npy")
            if pose.ndim != 2 or pose.shape[1] != 3 or len(pose) != stream.shape[0]:
                raise ValueError(f"'pose' must be N x 3 with N = {stream.shape[0]} images, got {pose.shape}")
            for start in range(0, len(pose), CHUNK):
                images = stream.read(min(CHUNK, len(pose) - start))
                payload = (images, pose[start:start + len(images)], start, key, dataset, options)
                yield preparation.Task(target, payload, items=len(images))
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        # Rows read before the damage are kept; the file is reported from where it failed.
        yield preparation.Task(target, Problem(key, "image", f"unreadable npz: {err}"))


def read_chunk(payload: tuple) -> list:
    """Worker entry point: BGR npz images to RGB rows."""
    images, poses, start, key, dataset, options = payload
    stem = key.rsplit(".", 1)[0]
    out: list[dict | Problem] = []
    for i, (bgr, pose) in enumerate(zip(images, poses)):
        row_key = f"{key}#{start + i}"
        try:
            img = _rgb_image(bgr)
            records.check_angles(*pose)  # pose is already [yaw, pitch, roll] in degrees
            out.append(records.make_row(img, tuple(pose), subject=f"{stem}#{start + i}", source=dataset,
                                        key=row_key, box=(0, 0, img.width, img.height), options=options))
        except BadSample as bad:
            out.append(Problem(row_key, bad.kind, str(bad)))
    return out


def _rgb_image(bgr: np.ndarray):
    from PIL import Image

    return Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1]), mode="RGB")


def find_npz(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    files = sorted(source.glob("*.npz")) if source.is_dir() else []
    if not files:
        raise DataError(f"no .npz files at {source}; --source must be an FSA-Net npz file or a folder of them")
    return files


def prepare_npz(files: dict[str, list[Path]], out_dirs: dict[str, Path], dataset: str,
                settings: Settings, *, crop: dict | None = None, extra: dict | None = None) -> dict[str, dict]:
    """Prepare npz files into one dataset per target (``files`` and ``out_dirs`` share their keys)."""
    writers = {t: ShardWriter(out_dirs[t], dataset=dataset, image_format=settings.image.format,
                              shard_rows=settings.shard_rows, overwrite=settings.overwrite) for t in out_dirs}
    tasks = (task for t, paths in files.items() for p in paths
             for task in npz_tasks(p, t, dataset, settings.image))
    preparation.run(read_chunk, tasks, writers, workers=settings.workers)
    return {
        t: w.close(source={"dataset": dataset, "files": [str(p.resolve()) for p in files[t]]},
                   crop=crop or FSANET_CROP, image=settings.image.as_dict(), subject_rule=SUBJECT_RULE,
                   filters={"stored": "every row with finite |angle| <= 180"}, extra=extra,
                   command=settings.command)
        for t, w in writers.items()
    }


def prepare_fsanet_npz(out_dir: Path, settings: Settings, *, source: Path) -> dict[str, dict]:
    """The ``fsanet-npz`` reader: one npz file, or every npz in a folder, into one dataset."""
    files = find_npz(Path(source))
    return prepare_npz({"": files}, {"": Path(out_dir)}, "fsanet-npz", settings)
