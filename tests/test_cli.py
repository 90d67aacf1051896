"""The `ldlpose` command: fast start-up, working subcommands only, no shadowed stdlib `platform`."""

import subprocess
import sys
from pathlib import Path

import ldlpose
from ldlpose.cli import COMMANDS, main

REPO = Path(__file__).resolve().parents[1]


def test_help_lists_the_subcommands_without_heavy_imports():
    code = ("import sys; from ldlpose.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('HEAVY', sorted(m for m in ('torch', 'ray', 'mlflow', 'optuna', 'pyarrow', 'numpy')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO).stdout
    for name in ("prepare", "train", "search", "registry", "predict", "submit"):
        assert name in out
    assert "HEAVY []" in out


def test_every_listed_subcommand_has_help(capsys):
    for name in COMMANDS:
        try:
            main([name, "--help"])
        except SystemExit as exit_:
            assert exit_.code == 0
        assert "usage: ldlpose " + name in capsys.readouterr().out


def test_version_and_no_command(capsys):
    try:
        main(["--version"])
    except SystemExit as exit_:
        assert exit_.code == 0
    assert capsys.readouterr().out.strip() == f"ldlpose {ldlpose.__version__}"
    assert main([]) == 0
    assert "COMMAND" in capsys.readouterr().out


def test_console_script_is_installed():
    script = Path(sys.executable).with_name("ldlpose")
    out = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"ldlpose {ldlpose.__version__}"


def test_the_standard_librarys_platform_is_not_shadowed_from_the_repository_root():
    out = subprocess.run([sys.executable, "-c", "import platform; print(platform.system())"], cwd=REPO,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == __import__("platform").system() != ""
    assert not (REPO / "platform" / "__init__.py").exists()


def test_user_errors_are_one_line_with_exit_code_2(tmp_path, capsys):
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ldlpose train: error: ") and "missing.yaml: no such file" in err
