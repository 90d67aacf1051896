"""Environment variables set for a while: for libraries that read their settings at call time."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

__all__ = ["temporarily"]


@contextlib.contextmanager
def temporarily(**values: str) -> Iterator[None]:
    """``values`` in ``os.environ`` meanwhile; afterwards what was there before (or nothing)."""
    old = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
