"""`fusion bench features` runs the project's benchmark script with this interpreter and forwards flags and exit status.

The real benchmark takes minutes, so these tests point the command at a project root of their own whose
benchmarks/features.py records how it was called; the subprocess, the root lookup and the exit status are real.
"""

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fusion.commands.app import app

RECORDER = """
import json, os, sys
args = sys.argv[1:]
out = args[args.index("--json") + 1] if "--json" in args else os.path.join(os.getcwd(), "called.json")
with open(out, "w") as f:
    json.dump({"argv": args, "cwd": os.getcwd(), "python": sys.executable}, f)
sys.exit(3)
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "pyproject.toml").write_text('[tool.kedro]\npackage_name = "fusion"\n')
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "features.py").write_text(RECORDER)
    (tmp_path / "conf").mkdir()
    monkeypatch.chdir(tmp_path / "conf")  # a subdirectory: the root is found upwards
    return tmp_path


def test_bench_features_forwards_flags_and_exit_status(project: Path):
    result = CliRunner().invoke(app, ["bench", "features", "--quick", "--json", "../out.json"])
    assert result.exit_code == 3, result.output
    called = json.loads((project / "out.json").read_text())
    assert called == {"argv": ["--quick", "--json", str(project / "out.json")], "cwd": str(project),
                      "python": sys.executable}


def test_bench_features_without_flags(project: Path):
    result = CliRunner().invoke(app, ["bench", "features"])
    assert result.exit_code == 3
    assert json.loads((project / "called.json").read_text())["argv"] == []


def test_bench_features_outside_a_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["bench", "features"])
    assert result.exit_code == 2
    assert "no fusion project" in result.output


def test_bench_help_lists_features():
    result = CliRunner().invoke(app, ["bench", "--help"])
    assert result.exit_code == 0 and "features" in result.output
