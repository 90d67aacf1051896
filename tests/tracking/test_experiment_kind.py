"""Every experiment ldlpose writes to opens on MLflow 3's training runs, not its GenAI overview.

MLflow's UI picks the page from the experiment tag ``mlflow.experimentKind``; the tag name and the
value ``custom_model_development`` are MLflow's own. Real SQLite stores in tmp_path.
"""

from __future__ import annotations

from pathlib import Path

from mlflow import MlflowClient

from ldlpose import tracking
from ldlpose.tracking._common import MODEL_DEVELOPMENT, TAG_EXPERIMENT_KIND
from ldlpose.tracking.evaluations import EXPERIMENT, log_evaluation

RESULT = {"benchmark": "synth", "protocol": "synth", "content_hash": "sha256:abc", "rows": 4,
          "metrics": {"mae": 3.0}}
MODEL = {"spec": "some/checkpoint", "kind": "checkpoint", "id": "sha256:def", "info": {"method": "gldl"}}


def kind_of(client: MlflowClient, name: str) -> str | None:
    experiment = client.get_experiment_by_name(name)
    assert experiment is not None, name
    return experiment.tags.get(TAG_EXPERIMENT_KIND)


def test_the_tag_and_value_are_the_ones_mlflows_ui_reads():
    import mlflow

    # MLflow has no Python constant for them; its UI bundle holds the tag it reads and its enum of kinds.
    bundle = Path(mlflow.__file__).parent / "server" / "js" / "build" / "static" / "js"
    text = "".join(path.read_text(errors="replace") for path in bundle.glob("main.*.js"))
    assert f'"{TAG_EXPERIMENT_KIND}"' in text and f'CUSTOM_MODEL_DEVELOPMENT="{MODEL_DEVELOPMENT}"' in text


def test_search_train_and_evaluation_experiments_are_model_development(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = tracking.SearchTracker(uri, "a-search")  # ldlpose train goes through the same tracker
    tracker.start("space: {}\n", {}, "random", 0, {})
    log_evaluation(uri, RESULT, MODEL)
    client = MlflowClient(uri)
    assert kind_of(client, "a-search") == kind_of(client, EXPERIMENT) == "custom_model_development"
    experiment = client.get_experiment_by_name("a-search")
    assert experiment is not None and experiment.tags["ldlpose.search_id"] == "a-search"  # kept beside it


def test_experiments_of_an_older_store_are_tagged_when_next_used(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    # As ldlpose made them before: no kind tag (MLflow's UI then guesses, and shows the GenAI page).
    client.create_experiment("old-search", tags={"ldlpose.search_id": "old-search"})
    client.create_experiment(EXPERIMENT)
    client.create_experiment("someone-elses")
    assert kind_of(client, "old-search") is None and kind_of(client, EXPERIMENT) is None
    tracking.SearchTracker(uri, "old-search").start("space: {}\n", {}, "random", 0, {})
    log_evaluation(uri, RESULT, MODEL)
    assert kind_of(client, "old-search") == kind_of(client, EXPERIMENT) == "custom_model_development"
    assert kind_of(client, "someone-elses") is None  # only what ldlpose uses is touched
    # Checked on every use: an experiment whose kind was changed (or guessed) goes back to training runs.
    old = client.get_experiment_by_name("old-search")
    assert old is not None
    client.set_experiment_tag(old.experiment_id, TAG_EXPERIMENT_KIND, "genai_development")
    tracking.SearchTracker(uri, "old-search").start("space: {}\n", {}, "random", 0, {})
    assert kind_of(client, "old-search") == "custom_model_development"


def test_the_printed_link_opens_the_model_training_view():
    # MLflow 3.17's UI takes GenAI or model training from the link's workflowType (else the browser's
    # last choice, GenAI at first), so the link ldlpose prints names it.
    assert tracking.experiment_page("http://10.0.0.5:5000/", "7") == (
        "http://10.0.0.5:5000/#/experiments/7/runs?workflowType=machine_learning")
    assert tracking.experiment_page("sqlite:////tmp/mlflow.db", "3") == (
        "http://127.0.0.1:5000/#/experiments/3/runs?workflowType=machine_learning")  # mlflow ui's default address
