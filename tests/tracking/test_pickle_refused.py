"""A registered model that needs unpickling is refused, not run (issue 24, item 7): ldlpose logs its
models as pickle-free torch.export archives, and MLflow (up to 3.18 at least) unpickles by default,
so ldlpose loads with ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false`` unless the user set it.

The model is a real pickled PyTorch model logged and registered in a real MLflow store (SQLite),
dressed as an ldlpose model (its info file), whose unpickling would leave a mark on the disk.
"""

from __future__ import annotations

import json
import os

import pytest

pytestmark = pytest.mark.slow


class Marker:
    """Unpickling this runs ``open(path, "w")``: what a hostile pickle could do instead."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_pickled_model_is_refused_before_any_of_it_runs(tmp_path, monkeypatch):
    import mlflow
    import torch

    from ldlpose.tracking import ModelLoadError, load_predictor
    from ldlpose.tracking._common import MODEL_INFO_FILE

    monkeypatch.delenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", raising=False)
    uri = f"sqlite:///{tmp_path / 'runs.db'}"
    mark = tmp_path / "unpickled"
    model = torch.nn.Linear(3, 3)
    model.payload = Marker(str(mark))  # pickled with the module
    info = tmp_path / MODEL_INFO_FILE
    info.write_text(json.dumps({"image_size": 64}))
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run():
        # Requirements given: MLflow would otherwise load the model to infer them.
        mlflow.pytorch.log_model(model, name="model", serialization_format="pickle", extra_files=[str(info)],
                                 registered_model_name="headpose-pickled", pip_requirements=["torch"])
    assert not mark.exists()

    with pytest.raises(ModelLoadError, match="MLFLOW_ALLOW_PICKLE_DESERIALIZATION") as refused:
        load_predictor("models:/headpose-pickled/1", uri)
    assert "cannot load model 'models:/headpose-pickled/1'" in str(refused.value)
    assert not mark.exists()  # nothing of the pickle ran
    assert "MLFLOW_ALLOW_PICKLE_DESERIALIZATION" not in os.environ  # set for the load only
