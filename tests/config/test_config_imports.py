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


def test_the_torch_free_name_lists_match_the_implementations():
    from ldlpose import metrics
    from ldlpose.config import catalog
    from ldlpose.models import backbones, profile

    assert tuple(backbones.available()) == catalog.BACKBONES
    assert metrics.METRIC_NAMES == catalog.METRIC_NAMES
    assert profile.COST_METRICS == catalog.COST_METRICS

