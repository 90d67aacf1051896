"""The search's two story figures and the report document, from plain values (no search needed)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest

from ldlpose.report import document as doc
from ldlpose.report import figures, search_plots


def test_best_vs_epochs_steps_down_to_each_new_best_at_the_epochs_spent():
    points = [{"epochs": 3, "value": 22.0}, {"epochs": 1, "value": None}, {"epochs": 2, "value": 23.0},
              {"epochs": 3, "value": 20.5}]
    fig = search_plots.best_vs_epochs(points, "val_mae", "t")
    ax = fig.axes[0]
    (line,) = ax.get_lines()
    assert list(line.get_xdata()) == [3, 6, 9, 9] and list(line.get_ydata()) == [22.0, 22.0, 20.5, 20.5]
    assert ax.collections[0].get_offsets().tolist() == [[3, 22.0], [6, 23.0], [9, 20.5]]  # the failed one left out
    figures.pyplot().close(fig)


def test_objective_per_method_shows_trials_seeds_and_intervals_whatever_style_optuna_left():
    import optuna

    plt = figures.pyplot()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: t.suggest_float("a", 0, 1) + t.suggest_float("b", 0, 1), n_trials=4)
    before = dict(plt.rcParams)
    for fig in figures.search_figures(study).values():  # Optuna's plots switch pyplot to ggplot ...
        plt.close(fig)
    assert dict(plt.rcParams) == before  # ... for their own figures only
    plt.style.use("ggplot")  # and ours draw in the default style even where someone left it on
    try:
        fig = search_plots.objective_per_method({"gldl": [21.0, 22.0], "dlmm": [23.0]}, {"gldl": [20.5, 20.9]},
                                                {"gldl": (20.7, 20.1, 21.3)}, "val_mae", "t")
    finally:
        plt.style.use("default")
    ax = fig.axes[0]
    assert ax.get_facecolor() == (1.0, 1.0, 1.0, 1.0)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["dlmm", "gldl"]
    from matplotlib.collections import PathCollection

    points = np.concatenate([c.get_offsets() for c in ax.collections if isinstance(c, PathCollection)])
    assert sorted(points[:, 1].tolist()) == [20.5, 20.9, 21.0, 22.0, 23.0]
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {
        "search trial", "confirmation seed", "mean of the seeds, 95% interval"}
    plt.close(fig)


@pytest.fixture
def page() -> dict:
    buffer = io.BytesIO()
    fig = search_plots.best_vs_epochs([{"epochs": 1, "value": 3.0}], "val_mae", "t")
    fig.savefig(buffer, format="png")
    figures.pyplot().close(fig)
    return {"title": "Search report: a<b", "notes": ["note & more"], "sections": [
        {"heading": "Every trial", "notes": ["n"],
         "tables": [{"caption": "c", "headers": ["run", "val"], "rows": [["gldl x=1|2 #1", "21.50"]]}],
         "figures": [{"name": "f.png", "caption": "a figure", "png": buffer.getvalue()}]}]}


def test_html_is_escaped_and_embeds_its_figures(page):
    written = doc.to_html(page)
    assert "<title>Search report: a&lt;b</title>" in written and "note &amp; more" in written
    assert '<td class="n">21.50</td>' in written and "<td>gldl x=1|2 #1</td>" in written
    encoded = written.split('src="data:image/png;base64,')[1].split('"')[0]
    assert base64.b64decode(encoded) == page["sections"][0]["figures"][0]["png"]
    assert "http" not in written  # nothing to fetch


def test_markdown_holds_the_same_tables(page):
    written = doc.to_markdown(page)
    assert "# Search report: a<b" in written and "## Every trial" in written
    assert "| run | val |\n|---|---|\n| gldl x=1\\|2 #1 | 21.50 |" in written
    assert "figure `f.png`" in written
