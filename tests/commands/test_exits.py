"""One exit-code table: pinned numbers, shown by `fusion --help`, used by every command, the same code for the same fault."""

from __future__ import annotations

import ast
import os

import pytest

from fusion.commands.exits import ExitCode
from tests.support.project import ROOT, fusion

PACKAGE = ROOT / "fusion"

# Scripts branch on these numbers: changing one is a breaking change, made here on purpose.
PINNED = {"OK": 0, "FAILED": 1, "CONFIG": 2, "BAD_BUNDLE": 3, "ENVIRONMENT": 4, "BROKER": 5, "MISSING_TOOL": 6}


def literal_exit_codes(tree: ast.AST) -> list[tuple[int, str]]:
    "(line, what) for every exit status written as a number or a private constant instead of an `ExitCode`."
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            found += [(node.lineno, f"constant {t.id}") for t in targets
                      if isinstance(t, ast.Name) and t.id.startswith("EXIT_")]
        elif isinstance(node, ast.Call):
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            values = node.args[:1] if name == "Exit" else (node.args[1].values if name == "exit_on" and len(node.args) > 1
                                                          and isinstance(node.args[1], ast.Dict) else [])
            found += [(node.lineno, f"{name}(... {v.value} ...)") for v in values
                      if isinstance(v, ast.Constant) and isinstance(v.value, int) and v.value != 0]
    return found


def test_the_numbers_are_pinned():
    assert {c.name: c.value for c in ExitCode} == PINNED


def test_fusion_help_ends_with_the_table(tmp_path):
    res = fusion(["--help"], {**os.environ, "COLUMNS": "200"}, tmp_path)
    assert res.returncode == 0, res.stderr
    flat = " ".join(res.stdout.split())
    assert "Exit codes:" in flat
    for code in ExitCode:
        assert f"{code.value} {code.name}: {code.meaning}" in flat


def test_no_module_writes_its_own_exit_numbers():
    offenders = [f"{path.relative_to(PACKAGE.parent)}:{line}: {what}"
                 for path in sorted(PACKAGE.rglob("*.py"))
                 for line, what in literal_exit_codes(ast.parse(path.read_text(), str(path)))]
    assert offenders == [], "exit statuses must come from fusion.commands.exits.ExitCode:\n" + "\n".join(offenders)


def test_the_literal_finder_finds_literals():
    tree = ast.parse("EXIT_X = 3\nraise typer.Exit(2)\nwith exit_on('p', {E: 4}): pass\nraise typer.Exit(0)\n"
                     "raise typer.Exit(ExitCode.FAILED)\n")
    assert literal_exit_codes(tree) == [(1, "constant EXIT_X"), (2, "Exit(... 2 ...)"), (3, "exit_on(... 4 ...)")]


@pytest.mark.parametrize("command", [["serve"], ["worker", "--max-events", "1"], ["verify"]])
def test_a_bad_bundle_is_the_same_code_everywhere(command, tmp_path):
    "A directory without MANIFEST.json is refused with BAD_BUNDLE by each command that takes a bundle."
    not_a_bundle = tmp_path / "bundle"
    not_a_bundle.mkdir()
    (not_a_bundle / "model.json").write_text("{}")
    env = {**os.environ, "FUSION_JWT_SECRET": "x" * 32, "FUSION_KAFKA_BOOTSTRAP": "127.0.0.1:9",
           "FUSION_EVENTS_DB": str(tmp_path / "events.db")}
    res = fusion([command[0], str(not_a_bundle), *command[1:]], env, tmp_path)
    assert res.returncode == ExitCode.BAD_BUNDLE, res.stdout + res.stderr
    assert "MANIFEST.json" in res.stderr and str(not_a_bundle) in res.stderr
