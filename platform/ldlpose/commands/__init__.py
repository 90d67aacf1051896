"""Subcommands of the ``ldlpose`` CLI (standard-library imports only at module level)."""
