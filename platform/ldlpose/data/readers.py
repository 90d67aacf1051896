"""The dataset readers ``ldlpose prepare`` knows: one registry, one interface.

A reader is one module with a prepare function of one signature,

    prepare(out_dir: Path, settings: Settings, **options) -> {target: manifest}

(``options`` are its own command-line arguments by their argparse names, ``target`` is "" for a
single output folder, else the sub-folder, e.g. "train"), plus one :func:`register` line saying its
name, its arguments, the folder under the data root it writes by default and the command line of
every standard folder it can make. ``ldlpose prepare`` builds its sub-commands from this registry and
the benchmarks build their "prepare it with ..." hints from it.

The built-in readers are registered at the end of this module rather than in their own modules, and
name their prepare function by ``"module:function"``: ``ldlpose --help`` builds every sub-command's
arguments and must not import numpy, pyarrow or PIL, which every reader module needs. A reader
defined elsewhere (a test, a plugin) can pass the function itself.

    >>> register(Reader("mine", "my folder of faces", my_module.prepare, (argument("--source", type=Path,
    ...                 required=True, help="the folder"),), folder="mine"))
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ldlpose.errors import ConfigError
from ldlpose.infra.registry import Registry

__all__ = ["Argument", "Reader", "argument", "available", "get", "prepare_command", "register"]


@dataclass(frozen=True)
class Argument:
    """One command-line argument of a reader: its flag and :meth:`argparse.ArgumentParser.add_argument`'s keywords."""

    flag: str
    options: Mapping = field(default_factory=dict)

    @property
    def dest(self) -> str:
        return self.options.get("dest") or self.flag.lstrip("-").replace("-", "_")


def argument(flag: str, **options) -> Argument:
    return Argument(flag, options)


@dataclass(frozen=True)
class Reader:
    """A registered dataset reader.

    ``prepare``: the function (or ``"module:function"``) with the one signature above.
    ``folder``: the folder under the data root that ``--out`` defaults to; a function (or
    ``"module:function"``) of the options where it depends on them (AFLW2000's crop, BIWI's files).
    ``folders``: every standard folder the reader makes, with the arguments that make it (placeholders
    in ``<>``), from which the benchmarks' hints are written. ``test_set``: stored losslessly by default.
    """

    name: str
    help: str
    prepare: Callable | str
    arguments: tuple[Argument, ...] = ()
    folder: str | Callable | None = None
    folders: Mapping[str, str] = field(default_factory=dict)
    test_set: bool = False

    def prepare_function(self) -> Callable:
        return _resolve(self.prepare)

    def default_folder(self, options: Mapping) -> str | None:
        """The folder under the data root this reader writes with ``options``; None if it has none."""
        if self.folder is None or (isinstance(self.folder, str) and ":" not in self.folder):
            return self.folder
        return _resolve(self.folder)(options)

    def run(self, out_dir: Path, settings, options: Mapping) -> dict[str, dict]:
        """Prepare into ``out_dir`` with the reader's own ``options`` (others are left out)."""
        own = {a.dest: options[a.dest] for a in self.arguments if a.dest in options}
        return self.prepare_function()(Path(out_dir), settings, **own)


def _resolve(target: Callable | str) -> Callable:
    if callable(target):
        return target
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


_REGISTRY: Registry[Reader] = Registry(
    "dataset reader", ordered=True,  # `ldlpose prepare --help` lists them in this module's order
    twice=lambda name, registered, new: f"dataset reader {name!r} is registered twice: {registered.prepare!r} "
                                        f"and {new.prepare!r}")


def register(reader: Reader) -> Reader:
    """Add a reader; a name registered twice raises, naming both."""
    if reader.name not in _REGISTRY:  # a duplicate name is the registry's error, naming both
        taken = {f: r.name for r in _REGISTRY.values() for f in r.folders}
        for folder in reader.folders:
            if folder in taken:
                raise ConfigError(f"dataset reader {reader.name!r}: folder {folder!r} is made by {taken[folder]!r} "
                                  "already")
    return _REGISTRY.add(reader.name, reader)


def unregister(name: str) -> None:
    """Remove a reader (tests that register an example one)."""
    _REGISTRY.remove(name)


def get(name: str) -> Reader:
    return _REGISTRY.get(name)


def available() -> list[str]:
    return _REGISTRY.names()


def prepare_command(folder: str, path) -> str:
    """The ``ldlpose prepare`` command that makes the standard ``folder`` (a top-level folder under the
    data root) at ``path``."""
    for reader in _REGISTRY.values():
        if folder in reader.folders:
            words = reader.folders[folder]
            return f"ldlpose prepare {reader.name} {words + ' ' if words else ''}--out {path}"
    made = sorted(f for r in _REGISTRY.values() for f in r.folders)
    raise ConfigError(f"no dataset reader makes the folder {folder!r}; readers make: {', '.join(made)}")


# The built-in readers ---------------------------------------------------------------------------

def _source(what: str) -> Argument:
    return argument("--source", type=Path, required=True, help=what)


_MARGIN = argument("--margin-k", type=float, help="crop margin: HopeNet's k (default 0.4 for 300W-LP, 0.2 for "
                                                  "AFLW2000), FSA-Net's ad (0.6) or RankPose's scale (1.4)")
_AFLW = "<AFLW2000 folder>"
_RAW_BIWI = "<folder with the BIWI videos 01..24>"

register(Reader("300w-lp", "official 300W-LP folder (AFW, AFW_Flip, HELEN, ...: *.jpg + *.mat)",
                "ldlpose.data.sources.landmarks:prepare_300wlp",
                (_source("the 300W-LP folder"), _MARGIN), folder="300w-lp",
                folders={"300w-lp": "--source <300W-LP folder>"}))
register(Reader("aflw2000", "official AFLW2000(-3D) folder (image*.jpg + *.mat)",
                "ldlpose.data.sources.landmarks:prepare_aflw2000",
                (_source("the AFLW2000 folder"), _MARGIN,
                 argument("--crop", choices=("hopenet", "fsanet", "rankpose"), default="hopenet",
                          help="AFLW2000 test crop: HopeNet/6DRepNet's loader (default; benchmarks aflw2000, "
                               "aflw2000-6drepnet), FSA-Net's (aflw2000-fsanet) or RankPose's (aflw2000-rankpose)")),
                folder="ldlpose.data.sources.landmarks:aflw2000_folder", test_set=True,
                folders={"aflw2000": f"--source {_AFLW}", "aflw2000-fsanet": f"--crop fsanet --source {_AFLW}",
                         "aflw2000-rankpose": f"--crop rankpose --source {_AFLW}"}))
register(Reader("biwi", "FSA-Net's BIWI_*.npz files, or the raw BIWI folders 01..24 (--protocol 1 or 2)",
                "ldlpose.data.sources.biwi:prepare_biwi",
                (_source("folder with BIWI_*.npz or video folders 01..24"),
                 argument("--protocol", type=int, choices=(1, 2), default=1,
                          help="1: all of BIWI as a test set; 2: 70/30 split into OUT/train and OUT/test "
                               "(raw videos: by person; npz: FSA-Net's own split)"),
                 argument("--split-seed", type=int, default=0, help="protocol-2 video split seed (raw folders)"),
                 argument("--box-mm", type=float, default=300.0, help="raw folders: crop side in mm (default 300)")),
                folder="ldlpose.data.sources.biwi:standard_folder", test_set=True,
                folders={"biwi-p1": "--protocol 1 --source <folder with FSA-Net's BIWI_noTrack.npz>",
                         "biwi-raw": f"--protocol 1 --source {_RAW_BIWI}",
                         "biwi-p2": f"--protocol 2 --source {_RAW_BIWI}",
                         "biwi-p2-fsanet": "--protocol 2 --source <folder with FSA-Net's BIWI_train.npz and "
                                           "BIWI_test.npz>"}))
register(Reader("fsanet-npz", "any npz in FSA-Net's format (BGR images, [yaw, pitch, roll] degrees)",
                "ldlpose.data.sources.fsanet:prepare_fsanet_npz",
                (_source("an npz file or a folder of them"),), test_set=True,
                folders={"aflw2000-fsanet-npz": "--source <FSA-Net's AFLW2000.npz>"}))
register(Reader("facegen", "the built-in synthetic faces (the quickstart's data), written as OUT/train, OUT/val, "
                "OUT/test", "ldlpose.data.sources.synth:prepare_facegen",
                (argument("--train", type=int, default=8000, help="training images (default 8000)"),
                 argument("--val", type=int, default=500, help="validation images (default 500)"),
                 argument("--test", type=int, default=500, help="test images (default 500)"),
                 argument("--size", type=int, default=64, help="image side in pixels (default 64)"),
                 argument("--seed", type=int, default=0, help="generator seed (default 0)")),
                folder="facegen", folders={"facegen": ""}))
register(Reader("synthhead", "the built-in synthetic heads of earlier versions (cartoon heads, small in the "
                "frame), written as OUT/train, OUT/val, OUT/test",
                "ldlpose.data.sources.synth:prepare_synthhead",
                (argument("--train", type=int, default=2000, help="training images (default 2000)"),
                 argument("--val", type=int, default=500, help="validation images (default 500)"),
                 argument("--test", type=int, default=500, help="test images (default 500)"),
                 argument("--size", type=int, default=64, help="image side in pixels (default 64)"),
                 argument("--seed", type=int, default=0, help="generator seed (default 0)"),
                 argument("--no-occluders", action="store_true", help="render without occluders")),
                folder="synthhead", folders={"synthhead": ""}))
