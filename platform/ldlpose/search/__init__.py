"""Search: search-space YAML (space) and its execution on Ray Tune with Optuna (tuning)."""
