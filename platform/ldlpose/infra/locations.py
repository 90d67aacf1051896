"""Where prepared data and results live when nobody says: the one place that decides.

Both follow one rule: the value given explicitly (a CLI option, ``data.root`` in a config, a keyword
argument) wins; else the environment variable; else the default folder in the working directory.

======================  =================  ===================  ====================================
location                explicit           environment          default
======================  =================  ===================  ====================================
data root               ``data.root``,     ``LDLPOSE_DATA``     ``ldlpose-data``
                        ``--data-root``
results (``--storage``) ``--storage``      ``LDLPOSE_STORAGE``  ``ldlpose-results``
======================  =================  ===================  ====================================

A config that sets ``data.root`` has set it explicitly, even to ``ldlpose-data``: the environment
applies only to configs that leave the key out (the shipped configs do, so that ``LDLPOSE_DATA``
moves all of them at once). The value is resolved when the config is loaded, so the resolved config
that is written next to the results and to MLflow names the folder that was used.

The resolvers are pure: they read the environment and return a string, they never touch the disk.
A URI (anything that starts with a scheme and ``://``, e.g. ``s3://bucket/prefix``) comes back
exactly as given; a local path only has ``~`` expanded and stays relative if it was, so that
messages show what the user wrote. This module imports the standard library only (the CLI reads
its defaults at ``--help`` time).
"""

from __future__ import annotations

import os
import re

__all__ = ["DATA_ENV", "DEFAULT_DATA_ROOT", "DEFAULT_STORAGE", "STORAGE_ENV", "is_uri", "redact",
           "resolve_data_root", "resolve_storage", "without_credentials"]

DATA_ENV = "LDLPOSE_DATA"
DEFAULT_DATA_ROOT = "ldlpose-data"
STORAGE_ENV = "LDLPOSE_STORAGE"
DEFAULT_STORAGE = "ldlpose-results"

# Two characters at least before "://", so that a Windows drive ("C:/...") is never taken for a scheme.
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")
# The user part of a URI anywhere in a text: scheme, user, optional ":password", "@". The user part
# ends at the last "@" before the host (a password may hold an unencoded "@"; never "/", "?", "#",
# whitespace or a quote, which end the authority or the text around it).
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:/?#@\s'\"]*)"
                       r"(?::(?P<password>[^/?#\s'\"]*))?@(?=[^@/?#\s'\"]*(?:[/?#\s'\"]|$))")


def is_uri(location) -> bool:
    """``s3://...``, ``gs://...``, ``file:///...``: a location that must not be treated as a local path."""
    return isinstance(location, str) and bool(_SCHEME.match(location))


def resolve_data_root(value=None) -> str:
    """The data root: ``value`` if given, else ``$LDLPOSE_DATA``, else ``ldlpose-data``."""
    return _resolve(value, DATA_ENV, DEFAULT_DATA_ROOT)


def resolve_storage(value=None) -> str:
    """Where search state, checkpoints and results go: ``value``, else ``$LDLPOSE_STORAGE``, else
    ``ldlpose-results``."""
    return _resolve(value, STORAGE_ENV, DEFAULT_STORAGE)


def _resolve(value, env: str, default: str) -> str:
    # An empty string (an unset option, `LDLPOSE_DATA=`) counts as not given.
    chosen = next(v for v in (value, os.environ.get(env), default) if v is not None and str(v) != "")
    chosen = os.fspath(chosen)
    return chosen if is_uri(chosen) else os.path.expanduser(chosen)


def redact(text: str) -> str:
    """``text`` with the password of every URI in it replaced by ``***`` (``postgresql://u:***@db/x``,
    ``s3://key:***@bucket``), fit to print, log, tag or store: what ldlpose shows of a URI anywhere.

    The user name stays (it tells which account was used); a URI without a password is unchanged.
    """
    return _USERINFO.sub(lambda m: m.group(0) if m.group("password") is None
                         else f"{m.group('scheme')}{m.group('user')}:***@", str(text))


def without_credentials(uri: str) -> str:
    """``uri`` without its user part where that part holds a password: what may travel to another
    machine (a Ray job's command line), whose own environment supplies the credentials
    (``MLFLOW_TRACKING_USERNAME``/``PASSWORD``, ``PGPASSWORD`` or ``~/.pgpass``, ``AWS_*``).

    A PostgreSQL URI keeps its user name, which libpq cannot take from the environment of a URI
    that names one; every other scheme loses the whole user part (an S3 key id without its secret,
    or an HTTP user without a password, would only fail).
    """
    def strip(m: re.Match) -> str:
        if m.group("password") is None:
            return m.group(0)
        keep = m.group("scheme").lower().startswith("postgres")
        return f"{m.group('scheme')}{m.group('user')}@" if keep else m.group("scheme")
    return _USERINFO.sub(strip, str(uri))
