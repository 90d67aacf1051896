"""cluster.yaml against the cluster-config JSON schema Ray ships (what `ray up` validates before it starts).

A config error found here costs nothing; found by `ray up` it costs a round trip to the cloud, and
found on a running cluster (a node type without the driver resource, a node without the token) it
costs a search.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
import ray.autoscaler
import yaml

CLUSTER_YAML = Path(__file__).resolve().parents[1] / "cluster.yaml"
SCHEMA = Path(ray.autoscaler.__file__).with_name("ray-schema.json")


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load(CLUSTER_YAML.read_text())


def schema_errors(config: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    return [f"{'.'.join(map(str, e.absolute_path)) or '<top>'}: {e.message}" for e in validator.iter_errors(config)]


def test_cluster_yaml_matches_rays_schema(config):
    assert SCHEMA.is_file(), f"Ray no longer ships {SCHEMA.name}; find where its cluster schema moved"
    assert schema_errors(config) == []


def test_the_schema_check_catches_a_misspelt_key_and_a_wrong_type(config):
    misspelt = {**config, "max_worker": 8}
    wrong_type = copy.deepcopy(config)
    wrong_type["available_node_types"]["gpu_worker"]["resources"]["GPU"] = "one"
    assert any("max_worker" in e for e in schema_errors(misspelt))
    assert any(e.startswith("available_node_types.gpu_worker.resources.GPU") for e in schema_errors(wrong_type))


def test_cluster_yaml_passes_rays_own_checks_after_defaults(config):
    """What `ray up` does next: fill in the provider's defaults and check node types and worker counts."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(copy.deepcopy(config)))


def test_cluster_yaml_is_what_ldlpose_expects(config):
    from ldlpose.search.tuning import DRIVER_RESOURCE

    nodes = config["available_node_types"]
    head = nodes[config["head_node_type"]]
    # Trial drivers need the driver resource, and only the head (never a spot GPU node) has it.
    assert head["resources"].get(DRIVER_RESOURCE, 0) >= 1
    assert all(DRIVER_RESOURCE not in n["resources"] for name, n in nodes.items() if name != config["head_node_type"])
    assert "GPU" not in head["resources"], "training workers must not land on the head"
    # Token authentication on every node, with the token where Ray reads it.
    starts = [c for c in config["head_start_ray_commands"] + config["worker_start_ray_commands"] if "ray start" in c]
    assert len(starts) == 2 and all("RAY_AUTH_MODE=token" in c for c in starts)
    assert any(target.endswith("/.ray/auth_token") for target in config["file_mounts"])
    # Closed by default: the head's dashboard and job API on the loopback only (reached by port-forwarding).
    (head_start,) = [c for c in config["head_start_ray_commands"] if "ray start" in c]
    assert "--dashboard-host=127.0.0.1" in head_start and "0.0.0.0" not in str(config)
