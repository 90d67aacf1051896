"""Replacing a prepared dataset's folder as a whole, so that an interruption never leaves half of one.

A preparation writes into a sibling folder ``.<name>.preparing-<pid>`` (same parent, so on the same
filesystem, where a rename is atomic) and swaps it in only once its manifest is written: the old
folder is renamed to ``.<name>.replaced-<pid>``, the new one to ``<name>``, then the old one is
deleted. Every step is flushed to the disk first (:mod:`ldlpose.infra.files`). Killed at any point,
the parent holds the old dataset or the new one under ``<name>``, or, for the instant between the
two renames, the complete old one under its ``replaced`` name; :func:`recover`, called by the next
preparation and by any read that finds ``<name>`` without a manifest, renames it back and removes
an unfinished ``preparing`` folder, saying so on stderr. Folders of a process that still runs on
this host are left alone: they are its work in progress.

Files of the old folder that its dataset does not own (``owned``: the manifest, the problem list,
the verification cache and the shards its manifest lists) are not deleted: they are hard-linked
(copied where links are refused) into the new folder before the swap, so they survive it. One whose
name the new dataset uses itself (say an unlisted ``part-00000.parquet``) is kept as
``<name>.kept-<pid>`` and the renaming is printed.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from ldlpose.errors import ConfigError
from ldlpose.infra.files import fsync_entry, fsync_tree

NEW, OLD = "preparing", "replaced"

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(f"ldlpose: {message}", file=sys.stderr, flush=True)


def sibling(out_dir: Path, kind: str, pid: int | None = None) -> Path:
    """The ``kind`` (:data:`NEW` or :data:`OLD`) folder of ``out_dir`` for process ``pid`` (default: this one)."""
    out_dir = Path(out_dir).absolute()
    return out_dir.parent / f".{out_dir.name}.{kind}-{os.getpid() if pid is None else pid}"


def leftovers(out_dir: Path, kind: str) -> list[Path]:
    """``kind`` folders of ``out_dir`` left by processes that no longer run here."""
    out_dir = Path(out_dir).absolute()
    found = []
    for path in sorted(out_dir.parent.glob(f".{out_dir.name}.{kind}-*")):
        pid = path.name.rsplit("-", 1)[1]
        if path.is_dir() and pid.isdigit() and not _running(int(pid)):
            found.append(path)
    return found


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def recover(out_dir: Path, is_complete: Callable[[Path], bool], log: Log = _stderr) -> None:
    """Put right what an interrupted replacement of ``out_dir`` left (see the module's docstring)."""
    out_dir = Path(out_dir)
    for backup in leftovers(out_dir, OLD):
        if is_complete(out_dir):  # the swap had happened: only the deletion of the old one was cut off
            shutil.rmtree(backup, ignore_errors=True)
            log(f"removed {backup}, the previous dataset of {out_dir} that an interrupted preparation replaced")
        elif not out_dir.exists() or not any(out_dir.iterdir()):
            if out_dir.exists():
                out_dir.rmdir()
            _rename(backup, out_dir)
            log(f"restored the previous dataset of {out_dir} from {backup.name}: a preparation that replaced it "
                "was interrupted between two renames")
        else:
            log(f"kept {backup} (an interrupted preparation's previous dataset of {out_dir}): {out_dir} holds "
                "files but no dataset; move one of them away and read or prepare again")
    for partial in leftovers(out_dir, NEW):
        shutil.rmtree(partial, ignore_errors=True)
        log(f"removed {partial}, an unfinished preparation of {out_dir} (interrupted before its data was complete)")


def fresh(out_dir: Path) -> Path:
    """An empty :data:`NEW` folder for this process to prepare ``out_dir`` in."""
    partial = sibling(out_dir, NEW)
    try:
        partial.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
    except OSError as err:
        raise ConfigError(f"cannot create {partial}: {err.strerror or err}; a preparation writes the new dataset "
                          f"beside {out_dir}, in {partial.parent}, and swaps it in when complete: make that folder "
                          "writable or choose another --out") from None
    return partial


def swap_in(partial: Path, out_dir: Path, owned: Iterable[str], log: Log = _stderr) -> None:
    """Make the complete folder ``partial`` the new ``out_dir``, keeping what the old one held beside
    its dataset (every entry not in ``owned``)."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        _carry_over(out_dir, partial, set(owned), log)
    fsync_tree(partial)
    if not out_dir.exists():
        _rename(partial, out_dir)
        return
    backup = sibling(out_dir, OLD)
    shutil.rmtree(backup, ignore_errors=True)
    _rename(out_dir, backup)
    _rename(partial, out_dir)
    shutil.rmtree(backup)


def _rename(source: Path, target: Path) -> None:
    os.replace(source, target)
    fsync_entry(Path(target).absolute().parent)


def _carry_over(old: Path, new: Path, owned: set[str], log: Log) -> None:
    for entry in sorted(old.iterdir()):
        if entry.name in owned:
            continue
        target = new / entry.name
        if target.exists() or target.is_symlink():
            target = new / f"{entry.name}.kept-{os.getpid()}"
            log(f"{entry} is not part of the dataset its manifest describes, and the new dataset uses its "
                f"name: kept as {out_name(old, target)}")
        _link(entry, target)


def out_name(out_dir: Path, staged: Path) -> Path:
    """Where ``staged`` (a path in the new folder) will be once swapped in."""
    return Path(out_dir) / staged.name


def _link(source: Path, target: Path) -> None:
    if source.is_symlink():
        os.symlink(os.readlink(source), target)
    elif source.is_dir():
        shutil.copytree(source, target, symlinks=True, copy_function=_link_file)
    else:
        _link_file(source, target)


def _link_file(source, target) -> None:
    try:
        os.link(source, target)
    except OSError:  # a filesystem without hard links
        shutil.copy2(source, target)


def discard(partial: Path) -> None:
    """Remove this process's unfinished folder after a failure: the old dataset stays as it was."""
    shutil.rmtree(partial, ignore_errors=True)
