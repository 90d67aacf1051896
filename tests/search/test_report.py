"""A search tells its story: summary metrics and figures on its parent run, readable trial run names
that a resume still finds by their trial id tag, and ``ldlpose report`` opened in headless Chromium.

One tiny real search (real Ray, Optuna and MLflow on SQLite): three trials of two methods, one
epoch each, and a confirmation of the best configuration over two new seeds.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ldlpose.cli import main
from ldlpose.search.driver import search_and_report

pytestmark = pytest.mark.slow

PARAMETERS = {"method": {"values": {"gldl": {"sigma": {"distribution": "log_uniform", "min": 1.0, "max": 4.0}},
                                    "hopenet": {"alpha": {"values": [0.1, 1.0]}}}},
              "train.optimizer.lr": {"distribution": "log_uniform", "min": 1.0e-3, "max": 1.0e-2}}
NEW_FIGURES = {"plots/best_vs_trial_epochs.png", "plots/objective_per_method.png"}


def write_space(tmp_path: Path, synth_root: Path) -> Path:
    space = {
        "name": "told", "method": {"name": "gldl"}, "model": {"backbone": "shufflenet_v2_x0_5", "weights": "none"},
        "data": {"root": str(synth_root), "train": "synthhead/train", "val": "synthhead/val", "benchmarks": ["synth"],
                 "image_size": 64, "max_train_samples": 32},
        "train": {"epochs": 1, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.002}, "max_failures": 0},
        "resources": {"workers": 1, "cpus_per_worker": 1},
        "search": {"name": "told", "sampler": {"name": "random", "seed": 0}, "scheduler": {"name": "none"},
                   "budget": {"trials": 3, "concurrency": 2}, "confirm": {"top_k": 1, "seeds": 2},
                   "parameters": PARAMETERS},
    }
    path = tmp_path / "told.yaml"
    path.write_text(yaml.safe_dump(space))
    return path


@pytest.fixture(scope="module")
def told(tmp_path_factory, synth_root, _ray_local_session):
    """The search, run once for the module; (space file, tracking URI, storage)."""
    import ray

    if not ray.is_initialized():  # as the ray_local fixture does, for a module-scoped search
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    tmp_path = tmp_path_factory.mktemp("told")
    (tmp_path / "mlflow").mkdir()
    uri, storage = f"sqlite:///{tmp_path / 'mlflow' / 'runs.db'}", str(tmp_path / "results")
    space = write_space(tmp_path, synth_root)
    assert search_and_report(str(space), storage=storage, tracking_uri=uri, verbose=False) == 0
    return space, uri, storage


def _runs(uri: str) -> tuple:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("told")
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if r.data.tags["ldlpose.role"] == "search"]
    return client, parent, [r for r in runs if r.data.tags["ldlpose.role"] != "search"]


def test_the_search_run_carries_its_summary_and_figures(told):
    _, uri, _ = told
    client, parent, children = _runs(uri)
    trials = [r for r in children if r.data.tags["ldlpose.role"] == "trial"]
    reruns = [r for r in children if r.data.tags["ldlpose.role"] == "confirmation"]
    assert len(trials) == 3 and len(reruns) == 2
    metrics = parent.data.metrics
    assert metrics["trials_finished"] == 3 and metrics["trials_stopped"] == 0 and metrics["trials_failed"] == 0
    assert metrics["trial_epochs"] == 3 and metrics["confirmation_epochs"] == 2
    assert metrics["best_val_mae"] == pytest.approx(min(r.data.metrics["selected_val_mae"] for r in trials))
    # The champion is the run whose model the search registered; its test scores are on the search run.
    (version,) = [v for v in client.search_model_versions("name = 'headpose-synth'") if v.tags["search_id"] == "told"]
    (champion,) = [r for r in children if r.info.run_id == version.tags["run_id"]]
    assert parent.data.tags["ldlpose.champion_run_id"] == champion.info.run_id
    assert metrics["champion_val_mae"] == pytest.approx(champion.data.metrics["selected_val_mae"])
    for name in ("mae", "mae_yaw", "maev", "geodesic"):
        assert metrics[f"champion_synth_{name}"] == pytest.approx(champion.data.metrics[f"selected_synth_{name}"])
    assert metrics["wall_time_s"] > 0
    plots = {a.path for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert NEW_FIGURES | {"plots/param_importances.png"} <= plots
    for path in NEW_FIGURES:
        data = Path(client.download_artifacts(parent.info.run_id, path)).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_trial_runs_have_readable_names_and_a_resume_finds_them_by_their_trial_id(told):
    space, uri, storage = told
    _, _, before = _runs(uri)
    for run in before:
        assignment = yaml.safe_load(run.data.tags["ldlpose.assignment"])
        method = run.data.params["method.name"]
        number = r" #\d+" + (r" \(confirms \w+\)" if run.data.tags["ldlpose.role"] == "confirmation" else "")
        assert re.fullmatch(rf"{method} (alpha|sigma)=[\d.]+ lr=[\d.e-]+( seed=\d)?{number}", run.info.run_name), \
            run.info.run_name
        assert "seed=" in run.info.run_name if "train.seed" in assignment else "seed=" not in run.info.run_name
        assert run.data.tags["ldlpose.trial_id"] != run.info.run_name
    assert search_and_report(str(space), storage=storage, tracking_uri=uri, resume=True, verbose=False) == 0
    _, parent, after = _runs(uri)
    assert sorted((r.info.run_id, r.info.run_name, r.data.tags["ldlpose.trial_id"]) for r in after) == \
        sorted((r.info.run_id, r.info.run_name, r.data.tags["ldlpose.trial_id"]) for r in before)
    assert parent.data.tags["ldlpose.attempts"] == "2" and parent.data.metrics["trials_finished"] == 3


PROBE = """<script>
window.addEventListener('load', () => {
  const images = Array.from(document.images);
  const shown = images.filter(i => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0
                                   && i.src.startsWith('data:image/png;base64,'));
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = 'images=' + images.length + ' shown=' + shown.length;
  document.body.appendChild(out);
});
</script>"""


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("headless Chromium is not installed: run `apt-get install -y chromium` (.ci/run does it)")
    return found


def open_in_chromium(page: Path) -> tuple[str, list[str]]:
    """(the page's DOM after load, the console messages Chromium logged). Every host name resolves to
    nothing, so a page that fetched anything from the network would show a broken image."""
    done = subprocess.run([_chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--enable-logging=stderr",
                           "--v=0", "--virtual-time-budget=10000", "--host-resolver-rules=MAP * ~NOTFOUND",
                           f"--user-data-dir={page.parent / 'chromium-profile'}", "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, [line for line in done.stderr.splitlines() if ":CONSOLE" in line]


def test_the_report_is_one_offline_page_with_its_tables_and_figures(told, tmp_path):
    space, uri, _ = told
    out = tmp_path / "report" / "told.html"
    assert main(["report", str(space), "--tracking-uri", uri, "--out", str(out)]) == 0
    page, markdown = out.read_text(), out.with_suffix(".md").read_text()
    _, parent, children = _runs(uri)
    for run in children:  # every trial and confirmation run: its validation and test scores, protocol, data hash
        trial, role = run.data.tags["ldlpose.trial_id"], run.data.tags["ldlpose.role"]
        start = f"| {run.info.run_name} | {trial} | {role} |"
        (row,) = [line for line in markdown.splitlines() if line.startswith(start)]
        data_hash = run.data.tags["ldlpose.data_hash.synth"]
        assert row.endswith(f"| {run.data.metrics['selected_val_mae']:.2f} | "
                            f"{run.data.metrics['selected_synth_mae']:.2f} | synth | {data_hash[:19]} |"), row
        assert data_hash in markdown  # in full under The data
    assert "log_uniform [1.0, 4.0]" in markdown and "| trials | 3 |" in markdown  # the space and the budget
    assert "hopenet | 2 |" in markdown and "95% interval" in markdown  # the confirmed method: n, mean, interval
    champion = parent.data.tags["ldlpose.champion_run_id"]
    assert champion in markdown and "headpose-synth version 1 (champion)" in markdown
    for section in ("Summary", "The space", "The budget", "Every trial", "Confirmation", "champion and its lineage"):
        assert section in markdown and section in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|url\(|@import""", page)  # nothing to fetch

    probed = out.with_name("probed.html")
    probed.write_text(page.replace("</body>", PROBE + "</body>"))
    dom, console = open_in_chromium(probed)
    assert console == []
    figures = len(re.findall(r'<img src="data:image/png;base64,', page))
    assert figures == 4  # the two new ones and Optuna's two
    assert f"images={figures} shown={figures}" in dom, dom[-2000:]


def test_a_report_of_an_unknown_search_names_the_searches_there(told, tmp_path, capsys):
    _, uri, _ = told
    assert main(["report", "toldd", "--tracking-uri", uri, "--out", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ldlpose report: error: no search named 'toldd'") and "the searches there: told " in err
    assert not (tmp_path / "r.html").exists()
