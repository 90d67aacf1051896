"""The package keeps its architecture: layers, no import cycles, small functions and modules.

The contract and its figures are in ``tests/architecture.py`` (``python tests/architecture.py``
prints them); each test below breaks a copy of the package in one way and sees the contract fail.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from architecture import LAYERS, MAX_FUNCTION_LINES, MAX_MODULE_LINES, PACKAGE, analyse, unit_graph

SCRIPT = Path(__file__).with_name("architecture.py")


def test_the_package_keeps_its_contract():
    report = analyse()
    assert report.breaches() == []
    assert len(report.modules) > 100  # the whole package was read, not an empty folder


def test_every_subpackage_and_root_module_has_a_layer():
    layered = {u for layer in LAYERS for u in layer}
    units = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    units |= {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert units <= layered, units - layered


@pytest.fixture()
def copy(tmp_path) -> Path:
    target = tmp_path / "ldlpose"
    shutil.copytree(PACKAGE, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def test_a_cycle_fails_the_contract(copy):
    # search.space imports search.sections; make sections import space back, lazily as real code would.
    _append(copy / "search" / "sections.py", "\n\ndef _loader():\n    from ldlpose.search import space\n\n"
                                             "    return space\n")
    report = analyse(copy)
    assert any({"ldlpose.search.sections", "ldlpose.search.space"} <= set(c) for c in report.cycles)
    assert any(b.startswith("import cycle: ") for b in report.breaches())


def test_a_cycle_under_type_checking_fails_too(copy):
    _append(copy / "data" / "dataset.py", "\nfrom typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n"
                                          "    from ldlpose.data.pipeline import eval_loader\n")
    assert any({"ldlpose.data.dataset", "ldlpose.data.pipeline"} <= set(c) for c in analyse(copy).cycles)


def test_an_import_into_a_higher_layer_fails_the_contract(copy):
    _append(copy / "data" / "shards.py", "\n\ndef _tuner():\n    from ldlpose.search.tuning import searcher\n\n"
                                         "    return searcher\n")
    report = analyse(copy)
    assert report.upward == ["ldlpose.data.shards -> ldlpose.search.tuning"]


def test_units_of_one_layer_stay_independent(copy):
    _append(copy / "methods" / "gldl.py", "\n\ndef _backbones():\n    from ldlpose.models import backbones\n\n"
                                          "    return backbones\n")
    assert analyse(copy).sideways == ["ldlpose.methods.gldl -> ldlpose.models.backbones"]


def test_long_functions_and_modules_fail_the_contract(copy):
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    _append(copy / "geometry.py", f"\n\ndef too_long():\n{body}    return x0\n")
    (copy / "infra" / "big.py").write_text("\n".join(f"X{i} = {i}" for i in range(MAX_MODULE_LINES + 1)) + "\n")
    report = analyse(copy)
    assert [f.split(" ")[0] for f in report.long_functions] == ["ldlpose.geometry.too_long"]
    assert [m.split(" ")[0] for m in report.long_modules] == ["ldlpose.infra.big"]


def test_a_new_root_module_or_an_unlayered_package_fails_the_contract(copy):
    (copy / "helpers.py").write_text('"""A grab bag."""\n')
    (copy / "extras").mkdir()
    (copy / "extras" / "__init__.py").write_text("from ldlpose import errors\n")
    breaches = analyse(copy).breaches()
    assert "module at the package root that belongs in a layer package: ldlpose.helpers" in breaches
    assert "not in any layer: extras (ldlpose.extras)" in breaches


def test_tracking_is_reached_through_its_public_names_only(copy):
    assert analyse().past_the_face == []
    _append(copy / "search" / "story.py",
            "\n\ndef _record():\n    from ldlpose.tracking.search_record import read_search\n\n"
            "    return read_search\n")
    _append(copy / "commands" / "ui.py", "\n\ndef _ui():\n    from ldlpose.tracking import ui\n\n    return ui\n")
    inside = "\n\ndef _own():\n    from ldlpose.tracking.journal import Journal\n\n    return Journal\n"
    _append(copy / "tracking" / "outbox.py", inside)  # the package itself may use its submodules
    assert analyse(copy).past_the_face == ["ldlpose.commands.ui -> ldlpose.tracking.ui",
                                           "ldlpose.search.story -> ldlpose.tracking.search_record"]


def test_the_command_prints_the_figures_and_fails_on_a_breach(copy):
    ok = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stdout
    assert "import cycles: 0; imports into a higher layer: 0" in ok.stdout
    _append(copy / "infra" / "files.py", "\n\ndef _tracking():\n    import ldlpose.tracking\n\n"
                                         "    return ldlpose.tracking\n")
    broken = subprocess.run([sys.executable, str(SCRIPT), str(copy)], capture_output=True, text=True, check=False)
    assert broken.returncode == 1
    assert "BREACH import into a higher layer: ldlpose.infra.files -> ldlpose.tracking" in broken.stdout


def test_search_sits_above_training_and_tracking_below_search():
    graph = unit_graph(analyse())
    assert {"train", "tracking"} <= graph["search"]
    assert "search" not in graph["tracking"] | graph["train"]
