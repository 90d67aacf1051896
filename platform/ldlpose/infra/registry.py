"""One registry for every extensible kind: LDL methods, backbones, dataset readers and benchmarks.

A registry maps names to entries, filled by explicit imports (each kind's own module registers its
entries). A name registered twice raises, naming both entries where the kind says how; an unknown
name raises :class:`~ldlpose.errors.ConfigError` listing the known names and the closest match.
The lists of names that configs are checked against are read from here, never copied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from ldlpose.errors import ConfigError, unknown

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Entries of one ``kind`` by name.

    ``twice(name, registered, new)`` words the error for a duplicate (default: "<kind> <name> is
    registered twice"), raised as ``error``; ``ordered`` keeps the registration order in
    :meth:`names` (default: sorted).
    """

    def __init__(self, kind: str, *, error: type[Exception] = ConfigError,
                 twice: Callable[[str, T, T], str] | None = None, ordered: bool = False):
        self.kind, self._error, self._twice, self._ordered = kind, error, twice, ordered
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        if name in self._entries:
            message = (self._twice(name, self._entries[name], entry) if self._twice
                       else f"{self.kind} {name!r} is registered twice")
            raise self._error(message)
        self._entries[name] = entry
        return entry

    def remove(self, name: str) -> None:
        """Forget ``name`` if it is there (tests that register an example entry)."""
        self._entries.pop(name, None)

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise unknown(self.kind, name, self._entries)
        return self._entries[name]

    def names(self) -> list[str]:
        return list(self._entries) if self._ordered else sorted(self._entries)

    def values(self) -> list[T]:
        return [self._entries[n] for n in self.names()]

    def items(self) -> list[tuple[str, T]]:
        return [(n, self._entries[n]) for n in self.names()]

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
