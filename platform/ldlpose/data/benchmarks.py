"""Named evaluation benchmarks: which prepared folder, under which protocol, how to create the data.

A benchmark resolves to a folder under the data root (the ``root`` argument, else ``$LDLPOSE_DATA``,
else ``./ldlpose-data``: :func:`ldlpose.infra.locations.resolve_data_root`) and names its
:class:`~ldlpose.data.protocols.Protocol`: the crop recipe the folder must have been prepared with
(checked against the manifest), how a stored crop becomes the network input, the angle filter, the
split and the row count. The filter lives here, not in the data: AFLW2000 keeps all 2,000 rows on
disk and the ``aflw2000`` benchmarks evaluate the 1,969 with every |angle| <= 99 degrees
(docs/methods.md#aflw2000, #pitfalls 7). Each benchmark also names the training data of its
protocol, so a run can find both from the benchmark's name.

    >>> bench = get("aflw2000")
    >>> bench.protocol.name                   # 'hopenet-aflw2000'
    >>> test_dir = bench.resolve()            # DataError naming the `ldlpose prepare` command if absent
    >>> rows = bench.row_indices(test_dir)    # the rows that count
    >>> bench.identity(test_dir)              # {'protocol': 'hopenet-aflw2000', 'content_hash': 'sha256:...'}

Every score should carry :meth:`Benchmark.identity`: the same model scores differently under two
protocols, and on two preparations of the same protocol when their content hashes differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ldlpose.data.protocols import VIEWS, Protocol
from ldlpose.errors import ConfigError, DataError
from ldlpose.infra.locations import resolve_data_root
from ldlpose.infra.registry import Registry

__all__ = ["PROTOCOLS", "Benchmark", "Protocol", "available", "data_root", "get", "register"]


def data_root(root=None) -> Path:
    """``root`` if given, else ``$LDLPOSE_DATA``, else ``./ldlpose-data``; a URI (``s3://...``) is
    read through this node's local copy of it (ldlpose.infra.storage.local_copy)."""
    from ldlpose.infra import storage

    root = resolve_data_root(root)
    return storage.local_copy(root) if storage.is_uri(root) else Path(root)


@dataclass(frozen=True)
class Benchmark:
    """An evaluation set: ``folder`` (under the data root) evaluated under ``protocol``.

    ``train_folder``/``val_folder``: the protocol's training data (``val_folder`` None means hold
    out a subject-disjoint part of the training data).
    """

    name: str
    description: str
    folder: str
    protocol: Protocol
    train_folder: str | None = None
    val_folder: str | None = None

    @property
    def max_abs_angle_deg(self) -> float | None:
        """Rows count when yaw, pitch and roll all satisfy |angle| <= this (None: every row)."""
        return self.protocol.max_abs_angle_deg

    def path(self, root=None) -> Path:
        return data_root(root) / self.folder

    def resolve(self, root=None, folder: str | None = None) -> Path:
        """The prepared folder (``folder`` defaults to the test set), or DataError with the fix.

        The test folder must have been cropped with the protocol's recipe.
        """
        from ldlpose.data.shards import manifest_path, read_manifest

        path = data_root(root) / (folder or self.folder)
        if not manifest_path(path).is_file():
            raise DataError(f"benchmark {self.name!r} needs prepared data in {path}, which has no "
                            f"{manifest_path(path).name}; create it with: {self.prepare_command(root, folder)}")
        if folder is None:
            crop = read_manifest(path).get("crop", {}).get("name")
            if crop != self.protocol.crop:
                raise DataError(
                    f"benchmark {self.name!r} (protocol {self.protocol.name}) needs test faces cropped with "
                    f"recipe {self.protocol.crop!r}; {path} holds crop {crop!r}. Prepare it with: "
                    f"{self.prepare_command(root)} --overwrite")
        from ldlpose.data.sources.synth import check_generator

        check_generator(path, read_manifest(path))
        return path

    def prepare_command(self, root=None, folder: str | None = None) -> str:
        from ldlpose.data import readers

        top = (folder or self.folder).split("/")[0]
        return readers.prepare_command(top, data_root(root) / top)

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

    def identity(self, dataset_dir=None, root=None) -> dict[str, str]:
        """``{"protocol": name, "content_hash": ...}`` of the prepared test folder (from its manifest):
        what every score on this benchmark must carry."""
        from ldlpose.data.shards import read_manifest

        manifest = read_manifest(dataset_dir if dataset_dir is not None else self.resolve(root))
        return {"protocol": self.protocol.name, "content_hash": manifest["content_hash"]}


_FACEGEN = "facegen-v3"  # ldlpose.data.facegen.PROTOCOL (not imported here: facegen needs numpy)
_ALL_2000 = "1,969 of the official 2,000 (31 have an angle beyond 99, 9 of them wrapped past 180)"
PROTOCOLS = {p.name: p for p in (
    Protocol(_FACEGEN, "facegen-300w-lp-train", VIEWS["centre-square"], None,
             "facegen train / val / test, disjoint by identity", "every row of facegen/test (500 by default)",
             notes="ldlpose's built-in synthetic faces (the generator's version is the protocol's name); no paper"),
    Protocol("synth", "synthhead-full-image", VIEWS["centre-square"], None,
             "synthhead train / val / test, disjoint by subject", "every row of synthhead/test (500 by default)",
             notes="ldlpose's built-in synthetic heads; no paper"),
    Protocol("hopenet-aflw2000", "hopenet-aflw2000-test", VIEWS["centre-square"], 99.0,
             "train 300W-LP, test AFLW2000 (protocol 1)", _ALL_2000,
             ("HopeNet (Ruiz et al. 2018)", "Hybrid coarse-fine (Wang et al. 2019), HopeNet's loader"),
             "HopeNet's loader: every pt2d point kept (x = -1, y = 452 included), k = 0.2 margins, "
             "int() box, black outside the picture; Scale(224) + CenterCrop(224)"),
    Protocol("6drepnet-aflw2000", "hopenet-aflw2000-test", VIEWS["centre-square-0.875"], 99.0,
             "train 300W-LP, test AFLW2000 (protocol 1)", _ALL_2000, ("6DRepNet (Hempel et al. 2022)",),
             "HopeNet's crop, 6DRepNet's Resize(256) + CenterCrop(224)"),
    Protocol("fsanet-aflw2000", "fsanet-type1", VIEWS["whole"], 99.0,
             "train 300W-LP, test AFLW2000 (protocol 1)", _ALL_2000,
             ("FSA-Net (Yang et al. 2019) and the methods its paper re-trained (SSR-Net-MD, ...)",),
             "FSA-Net's TYY_create_db_type1.py: positive points, ad = 0.6, clipped, whole crop resized"),
    Protocol("rankpose-aflw2000", "rankpose-aflw2000-test", VIEWS["centre-square"], 99.0,
             "train 300W-LP, test AFLW2000 (protocol 1)", _ALL_2000, ("RankPose (Dai et al. 2020)",),
             "RankPose's loader: square of 1.4 max(w, h) around the pt3d_68 box, black outside; "
             "SmallestMaxSize(224) + CenterCrop(224) (cv2 bilinear there, PIL bilinear here)"),
    Protocol("fsanet-aflw2000-npz", "fsanet-npz", VIEWS["whole"], 99.0,
             "train 300W-LP, test AFLW2000 (protocol 1)", _ALL_2000, ("FSA-Net (Yang et al. 2019)",),
             "FSA-Net's own AFLW2000.npz: its type-1 crops already resized to 64 x 64 by cv2 (BGR, converted)"),
    Protocol("fsanet-biwi-p1", "fsanet-biwi-mtcnn", VIEWS["whole"], 99.0, "train 300W-LP, test BIWI (protocol 1)",
             "the frames of FSA-Net's BIWI_noTrack.npz (MTCNN detections) with all |angle| <= 99",
             ("FSA-Net (Yang et al. 2019)",),
             "MTCNN box enlarged by 0.4 on each side, frames without a detection dropped; 6DRepNet "
             "evaluates the same npz (made at 256 px) through Resize(256) + CenterCrop(224) instead"),
    Protocol("biwi-head-centre", "biwi-head-centre", VIEWS["centre-square"], 99.0,
             "train 300W-LP, test BIWI (protocol 1, every frame)",
             "every raw BIWI frame (about 15.7k) with all |angle| <= 99",
             notes="ldlpose's own: a 300 mm square at the annotated head centre, no face detector; no paper"),
    Protocol("biwi-p2-persons", "biwi-head-centre", VIEWS["centre-square"], None,
             "BIWI protocol 2, split by person: about 70 % of the 24 videos train, the rest test, no person "
             "on both sides", "every frame of the test persons' videos (8 or 7 of 24 videos)",
             notes="ldlpose's person-disjoint variant of FSA-Net's 70/30 video split (see docs/benchmarks.md)"),
    Protocol("fsanet-biwi-p2", "fsanet-biwi-mtcnn", VIEWS["whole"], None,
             "BIWI protocol 2 as FSA-Net's BIWI_train.npz / BIWI_test.npz: 16 / 8 videos, unseeded split",
             "every row of BIWI_test.npz",
             ("FSA-Net (Yang et al. 2019)",),
             "split by video, not by person (BIWI's 24 videos show 20 people); the protocol-2 rows "
             "tabled by DADL, TriNet and 6DRepNet come from 16/8 splits of this kind, each unseeded"),
)}
"""Every protocol a benchmark names, by name (the table in docs/benchmarks.md)."""

_REGISTRY: Registry[Benchmark] = Registry("benchmark")


def register(benchmark: Benchmark) -> Benchmark:
    return _REGISTRY.add(benchmark.name, benchmark)


def get(name: str) -> Benchmark:
    return _REGISTRY.get(name)


def available() -> list[str]:
    return _REGISTRY.names()


for _name, _description, _folder, _protocol, _train, _val in (
    ("facegen", "facegen test split (built in; no download; the quickstart's benchmark), every row",
     "facegen/test", _FACEGEN, "facegen/train", "facegen/val"),
    ("synth", "synthhead test split (built in; no download), every row", "synthhead/test", "synth",
     "synthhead/train", "synthhead/val"),
    ("aflw2000", "protocol 1: train 300W-LP, test AFLW2000 with HopeNet's crop and input", "aflw2000",
     "hopenet-aflw2000", "300w-lp", None),
    ("aflw2000-6drepnet", "protocol 1: train 300W-LP, test AFLW2000 with HopeNet's crop and 6DRepNet's input",
     "aflw2000", "6drepnet-aflw2000", "300w-lp", None),
    ("aflw2000-fsanet", "protocol 1: train 300W-LP, test AFLW2000 with FSA-Net's crop and input",
     "aflw2000-fsanet", "fsanet-aflw2000", "300w-lp", None),
    ("aflw2000-rankpose", "protocol 1: train 300W-LP, test AFLW2000 with RankPose's pt3d_68 square crop",
     "aflw2000-rankpose", "rankpose-aflw2000", "300w-lp", None),
    ("aflw2000-fsanet-npz", "protocol 1: train 300W-LP, test FSA-Net's AFLW2000.npz as published",
     "aflw2000-fsanet-npz", "fsanet-aflw2000-npz", "300w-lp", None),
    ("biwi", "protocol 1: train 300W-LP, test BIWI as FSA-Net's BIWI_noTrack.npz", "biwi-p1", "fsanet-biwi-p1",
     "300w-lp", None),
    ("biwi-raw", "protocol 1: train 300W-LP, test every raw BIWI frame (head-centre crop)", "biwi-raw",
     "biwi-head-centre", "300w-lp", None),
    ("biwi-p2", "protocol 2: BIWI split by person (raw videos), every test row", "biwi-p2/test",
     "biwi-p2-persons", "biwi-p2/train", None),
    ("biwi-p2-fsanet", "protocol 2: FSA-Net's BIWI_train/test.npz (16/8 videos), every test row",
     "biwi-p2-fsanet/test", "fsanet-biwi-p2", "biwi-p2-fsanet/train", None),
):
    register(Benchmark(_name, _description, _folder, PROTOCOLS[_protocol], _train, _val))
del _name, _description, _folder, _protocol, _train, _val
