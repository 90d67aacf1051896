"""Ray's start-up chatter: which token messages are dropped, and when everything shows again."""

from __future__ import annotations

import logging

import pytest

from ldlpose.cli import main
from ldlpose.infra import ray_cluster

ENABLED = ("Token authentication is enabled for this Ray cluster. Set RAY_AUTH_MODE=disabled to opt out. "
           "For more information, see https://docs.ray.io/en/latest/ray-security/token-auth.html")
GENERATED = "Generated new authentication token and saved to /home/me/.ray/auth_token"
DISABLED = ("Token authentication is disabled for this Ray cluster. Anyone with network access to the cluster "
            "can run arbitrary code and access its data.")


def _logged(quiet: bool, caplog) -> list[str]:
    """What reaches the handlers when Ray's token set-up logger says its three things (Ray 2.60's texts)."""
    logger = logging.getLogger(ray_cluster._TOKEN_LOGGER)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=ray_cluster._TOKEN_LOGGER), ray_cluster._token_chatter_hidden(quiet):
        logger.warning(ENABLED)
        logger.info(GENERATED)
        logger.warning(DISABLED)
    return [r.getMessage() for r in caplog.records]


def test_only_the_token_default_is_dropped_and_only_when_quiet(caplog):
    # A cluster without authentication is a real problem for the run: that warning always shows.
    assert _logged(True, caplog) == [DISABLED]
    assert _logged(False, caplog) == [ENABLED, GENERATED, DISABLED]
    assert not logging.getLogger(ray_cluster._TOKEN_LOGGER).filters  # removed once ray.init returned


@pytest.mark.parametrize(("value", "debug"), [("debug", True), (" DEBUG ", True), ("info", False), ("", False)])
def test_ldlpose_log_debug_brings_everything_back(monkeypatch, value, debug):
    monkeypatch.setenv(ray_cluster.LOG_ENV, value)
    assert ray_cluster.debug_logs() is debug


def test_ldlpose_log_debug_acts_as_verbose_and_mlflow_stays_quiet_otherwise(monkeypatch):
    """The command sees --verbose under LDLPOSE_LOG=debug; MLflow's level is set for the command only."""
    import os
    import sys
    import types

    import ldlpose.cli

    seen = []
    probe = types.ModuleType("ldlpose_probe_command", "A subcommand that records what it was given.")
    probe.add_arguments = lambda parser: parser.add_argument("--verbose", action="store_true")  # type: ignore[attr-defined]
    probe.run = lambda args: seen.append((args.verbose, os.environ.get("MLFLOW_LOGGING_LEVEL"))) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, probe.__name__, probe)
    monkeypatch.setattr(ldlpose.cli, "COMMANDS", {"probe": probe.__name__})
    monkeypatch.delenv("MLFLOW_LOGGING_LEVEL", raising=False)
    monkeypatch.setenv(ray_cluster.LOG_ENV, "debug")
    assert main(["probe"]) == 0
    monkeypatch.setenv(ray_cluster.LOG_ENV, "")
    assert main(["probe"]) == 0
    assert main(["probe", "--verbose"]) == 0
    assert seen == [(True, None), (False, "WARNING"), (True, None)]
    assert "MLFLOW_LOGGING_LEVEL" not in os.environ  # restored after the command
