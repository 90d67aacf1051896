"""The ``make_dataset`` fixture for every test in tests/data: pytest finds it here, so a test module takes
it as an argument instead of importing it (an import that only looks unused, then shadowed by the argument)."""

from datafixtures import make_dataset as make_dataset  # re-exported for pytest
