"""Small file helpers shared by the data and tracking layers (standard library only)."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path


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
    partial = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        partial.write_text(json.dumps(cache, indent=0, sort_keys=True))
        os.replace(partial, path)  # atomic: a concurrent reader sees the old cache or the new one
    except OSError:
        partial.unlink(missing_ok=True)
