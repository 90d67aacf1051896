"""Search: the YAML space (space), its Optuna side (optuna_space), the Tune driver (tuning), the MLflow
callback (callback), finished trials rebuilt from stored state (trials), seed confirmation (confirm),
Ray workarounds (ray_compat) and ``ldlpose search`` end to end (driver)."""
