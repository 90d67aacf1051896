"""Small file helpers shared by the data and tracking layers (standard library only)."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path


def fsync_tree(path: Path) -> None:
    """Flush ``path`` (a file, or a folder with every file and folder under it) to the disk.

    A rename is atomic but not durable by itself: after a power cut the new name can point at a
    file whose blocks never reached the disk. Flushing the content first, then the folder that
    holds the new name, makes "renamed into place" mean "complete on disk".
    """
    path = Path(path)
    if path.is_symlink():  # what it points at is not ours to flush
        return
    if path.is_dir():
        for child in path.iterdir():
            fsync_tree(child)
    fsync_entry(path)


def fsync_entry(path: Path) -> None:
    """Flush one file or folder (a folder: the names in it, not the files they name)."""
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on a folder; the data itself was flushed
        if not path.is_dir():
            raise
    finally:
        os.close(fd)


def replace_durably(partial: Path, target: Path) -> None:
    """Flush ``partial`` (file or folder) to the disk, rename it to ``target`` and flush the folder
    holding both, so that ``target`` is either the old one or the complete new one, also after a
    crash. A folder ``target`` must not exist (``os.replace`` renames a folder only onto an empty one)."""
    fsync_tree(partial)
    os.replace(partial, target)
    fsync_entry(Path(target).parent)


def write_durably(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it (:func:`replace_durably`):
    a reader sees the old file or the new one, never a part of it."""
    path = Path(path)
    partial = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        partial.write_text(text)
        replace_durably(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (shards and checkpoints can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def mismatched_files(expected: dict[Path, str], cache_path: Path) -> list[Path]:
    """The files of ``expected`` (path -> hex sha256) whose content has another hash, in order.

    Hashing every shard on every read would cost a full read of the data per process; instead a
    file whose name, size and modification time ``cache_path`` records as verified with the
    expected hash is not read again, so only new or changed files are hashed. The cache is shared by
    processes (written whole, then renamed into place) and is only a cache: a read-only folder, or a
    cache that cannot be read, means hashing again, never an error.
    """
    cache = _read_cache(cache_path)
    bad, changed = [], False
    for path, sha256 in expected.items():
        stat = path.stat()
        stamp = [stat.st_size, stat.st_mtime_ns, sha256]
        if cache.get(path.name) == stamp:
            continue
        if sha256_file(path) != sha256:
            bad.append(path)
            continue
        cache[path.name], changed = stamp, True
    if changed:
        _write_cache(cache_path, cache)
    return bad


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(path: Path, cache: dict) -> None:
    try:  # a concurrent reader sees the old cache or the new one
        write_durably(path, json.dumps(cache, indent=0, sort_keys=True))
    except OSError:
        pass  # only a cache: a read-only folder means hashing again next time
