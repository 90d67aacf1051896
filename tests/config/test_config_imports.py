"""Loading a run config or a search space is cheap: it imports neither torch nor Ray (nor MLflow,
Optuna), because the hyperparameter models and the names a config is checked against are torch-free."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

LOAD_EVERYTHING = """
import sys
from pathlib import Path
from ldlpose.config import load_run_config
from ldlpose.search.space import load_search_space
repo = Path(sys.argv[1])
configs = sorted((repo / "configs").glob("*.yaml"))
spaces = sorted((repo / "search_spaces").glob("*.yaml"))
assert configs and spaces
for path in configs:
    load_run_config(path)
for path in spaces:
    load_search_space(path).run_config({})
heavy = sorted(m for m in ("torch", "ray", "mlflow", "optuna") if m in sys.modules)
print(len(configs), len(spaces), heavy)
"""


def test_loading_every_shipped_config_and_space_imports_neither_torch_nor_ray(tmp_path):
    done = subprocess.run([sys.executable, "-c", LOAD_EVERYTHING, str(REPO)], capture_output=True, text=True,
                          check=False, timeout=120, env={"LDLPOSE_DATA": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    configs, spaces, heavy = done.stdout.split(" ", 2)
    assert int(configs) >= 2 and int(spaces) >= 2
    assert heavy.strip() == "[]", f"loading configs imported {heavy.strip()}"


def test_the_names_a_config_is_checked_against_are_read_from_the_registries():
    import pytest

    from ldlpose import metrics
    from ldlpose.config import catalog, run_config_from_dict
    from ldlpose.errors import ConfigError
    from ldlpose.inference import profile
    from ldlpose.models import backbones

    assert tuple(backbones.available()) == catalog.BACKBONES
    assert catalog.METRIC_NAMES is metrics.METRIC_NAMES and catalog.COST_METRICS is profile.COST_METRICS
    # A backbone registered after the config modules loaded is accepted: they read the registry itself.
    backbones._register("tiny_test_net", 8, lambda model: model)
    try:
        assert run_config_from_dict({"model": {"backbone": "tiny_test_net"}}).model.backbone == "tiny_test_net"
    finally:
        backbones._REGISTRY.remove("tiny_test_net")
    with pytest.raises(ConfigError, match=r"model\.backbone: unknown backbone 'tiny_test_net'; accepted: "):
        run_config_from_dict({"model": {"backbone": "tiny_test_net"}})

