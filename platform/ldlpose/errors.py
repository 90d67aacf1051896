"""The exceptions users see. Messages state the rule, the actual value and the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class LdlposeError(Exception):
    """Base of every error ldlpose raises for a user to act on."""


class ConfigError(LdlposeError, ValueError):
    """A configuration value (YAML key, hyperparameter, CLI option) is unknown, mistyped or invalid."""


class DataError(LdlposeError):
    """Input data is missing, unreadable or inconsistent."""


def closest(name: str, choices: Iterable[str]) -> str:
    """A ' (did you mean X?)' hint for a misspelt ``name``, or '' when nothing is close."""
    match = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


def unknown(kind: str, name: str, choices: Iterable[str]) -> ConfigError:
    """The error for an unknown name: lists what is accepted and the closest match."""
    choices = sorted(choices)
    return ConfigError(f"unknown {kind} {name!r}{closest(name, choices)}; accepted: {', '.join(choices)}")
