"""Configuration: the run config (:mod:`.run`), each method's hyperparameters (:mod:`.hparams`), the
names a config is checked against (:mod:`.catalog`) and the strict loader and its error format
(:mod:`.schema`). Nothing here imports torch, Ray or MLflow, so that loading a config stays cheap.

The run config's names are re-exported here: ``ldlpose.config`` was one module before the package
was split by layer, and saved state (a search's pickled Tune state) still names its classes so.
"""

from ldlpose.config.run import (
    AccelConfig,
    AugmentConfig,
    DataConfig,
    ModelConfig,
    OptimizerConfig,
    ResourcesConfig,
    RunConfig,
    ScheduleConfig,
    TrainConfig,
    apply_overrides,
    check_name,
    check_selection_metric,
    load_run_config,
    read_yaml,
    run_config_from_dict,
)

__all__ = ["AccelConfig", "AugmentConfig", "DataConfig", "ModelConfig", "OptimizerConfig", "ResourcesConfig",
           "RunConfig", "ScheduleConfig", "TrainConfig", "apply_overrides", "check_name", "check_selection_metric",
           "load_run_config", "read_yaml", "run_config_from_dict"]
