"""`fusion serve`, `fusion token`, `fusion example-body`: the README's serving commands, run as written against a real server.

The README's block runs in a project copy after the session's default run (its bundle is
exported/fusion-classifier/1 there, as in the README). Its lines run as a user runs them: the `export` lines once,
`fusion serve` in one shell, the rest in another; only the port is changed, to a free one.
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from fusion.bundle.standalone import stop_group
from fusion.commands.exits import ExitCode
from fusion.config import free_port
from tests.support.project import BIN, ROOT, fusion

SECTION = "## Serve the exported model"  # the README section whose first bash block is run


def readme_block(section: str) -> list[str]:
    "The lines of the first ```bash block after the heading `section` of README.md."
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert section in text, f"README.md has no section {section!r}"
    found = re.search(r"```bash\n(.*?)```", text[text.index(section):], re.S)
    assert found, f"README.md's section {section!r} has no bash block"
    return found.group(1).splitlines()


def split_block(lines: list[str], port: int) -> tuple[list[str], str, list[str]]:
    "(export lines, the `fusion serve` command without its `&`, the client's lines), with port 8000 made `port`."
    lines = [line.replace("8000", str(port)) for line in lines if line.strip()]
    exports = [line for line in lines if line.startswith("export ")]
    serve = [line for line in lines if line.startswith("fusion serve ")]
    assert len(serve) == 1, f"one `fusion serve` line expected in the README block, got {serve}"
    client = [line for line in lines if line not in exports and line not in serve]
    return exports, re.sub(r"\s*&?\s*(#.*)?$", "", serve[0]), client


def shell_env(exports: list[str], base: dict[str, str]) -> dict[str, str]:
    "The environment after running the README's `export` lines once in bash (so both shells share the JWT secret)."
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", "\n".join([*exports, "env -0"])], env=base,
                          capture_output=True, text=True, timeout=60, check=True)
    return dict(item.split("=", 1) for item in done.stdout.split("\0") if "=" in item)


def test_split_block_reads_the_readme_shape():
    lines = ["export A=$(echo 1)   # why", "fusion serve b/1 --port 8000 &   # flags", "until curl -sf :8000/readyz; do sleep 1; done",
             "TOKEN=$(fusion token --sub me)", "fusion example-body b/1 -n 2 |   # two", "  curl --data @- :8000/v1/predict"]
    exports, serve, client = split_block(lines, 1234)
    assert exports == ["export A=$(echo 1)   # why"]
    assert serve == "fusion serve b/1 --port 1234"
    assert client == ["until curl -sf :1234/readyz; do sleep 1; done", "TOKEN=$(fusion token --sub me)",
                      "fusion example-body b/1 -n 2 |   # two", "  curl --data @- :1234/v1/predict"]


def test_the_readme_posts_a_small_body():
    block = "\n".join(readme_block(SECTION))
    assert "fusion example-body" in block and "golden/inputs.json" not in block  # 28 series ≈ 3 MB: 413


@pytest.mark.slow
def test_the_readme_serving_commands_work_as_written(exported_run, tmp_path):
    port = free_port()
    exports, serve, client = split_block(readme_block(SECTION), port)
    env = shell_env(exports, {**exported_run.env, "PATH": f"{BIN}{os.pathsep}{exported_run.env['PATH']}"})
    with open(tmp_path / "serve.log", "wb") as log:
        server = subprocess.Popen(["bash", "-c", f"exec {serve}"], cwd=exported_run.project, env=env, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", "\n".join(client)], cwd=exported_run.project, env=env,
                              capture_output=True, text=True, timeout=300)
        assert server.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
    finally:
        stop_group(server)
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout)
    golden = json.loads((exported_run.bundle / "golden" / "outputs.json").read_text())
    assert answer["model"] == golden["model"]
    assert len(answer["predictions"]) == 2
    for got, want in zip(answer["predictions"], golden["predictions"][:2], strict=True):
        assert (got["series_id"], got["label"]) == (want["series_id"], want["label"])
        assert got["probabilities"] == pytest.approx(want["probabilities"], abs=1e-6)


@pytest.mark.slow
def test_example_body_is_the_first_golden_instances_under_the_limit(exported_run, tmp_path):
    res = fusion(["example-body", str(exported_run.bundle), "-n", "3"], exported_run.env, tmp_path)
    assert res.returncode == 0, res.stderr
    golden = json.loads((exported_run.bundle / "golden" / "inputs.json").read_text())
    assert json.loads(res.stdout) == {"instances": golden["instances"][:3]}
    assert len(res.stdout.encode()) < 1_048_576 < (exported_run.bundle / "golden" / "inputs.json").stat().st_size
    too_many = fusion(["example-body", str(exported_run.bundle), "-n", "28"], exported_run.env, tmp_path)
    assert too_many.returncode == ExitCode.CONFIG and "over FUSION_MAX_BODY_BYTES=1048576" in too_many.stderr


def test_example_body_of_a_directory_without_golden_inputs(tmp_path):
    res = fusion(["example-body", str(tmp_path)], dict(os.environ), tmp_path)
    assert res.returncode == ExitCode.BAD_BUNDLE
    assert f"cannot read the golden inputs {tmp_path / 'golden' / 'inputs.json'}" in res.stderr
