"""The project opts out of telemetry by itself: `kedro run` in a fresh shell (no DO_NOT_TRACK) changes no tracked file
and reaches for no network; fusion switches MLflow's telemetry off wherever it talks to MLflow.

"Reaches for the network" is observed, not assumed: every HTTP(S) request of the run is routed to a local proxy that
records who connects (kedro-telemetry and MLflow send with `requests`, which honours HTTP(S)_PROXY).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fusion.config import free_port
from tests.support.project import kedro, make_project

# What would silence telemetry without the project doing it: the caller's opt-outs and CI markers are removed.
OPT_OUTS = ("DO_NOT_TRACK", "KEDRO_DISABLE_TELEMETRY", "MLFLOW_DISABLE_TELEMETRY", "CI", "PYTEST_CURRENT_TEST",
            "GITHUB_ACTIONS", "GITHUB_ACTION", "GITLAB_CI", "JENKINS_URL", "BUILDKITE", "TRAVIS", "CIRCLECI")


class RecordingProxy:
    "A TCP listener standing in for an HTTP proxy: it accepts, records and hangs up (a request through it fails fast)."

    def __init__(self) -> None:
        self.port = free_port()
        self.connections = 0
        self._sock = socket.create_server(("127.0.0.1", self.port))
        self._thread = threading.Thread(target=self._serve, daemon=True, name="recording-proxy")
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed
            self.connections += 1
            conn.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._sock.close()
        self._thread.join(timeout=5)


@pytest.fixture
def proxy() -> Iterator[RecordingProxy]:
    p = RecordingProxy()
    yield p
    p.close()


def fresh_shell_env(env: dict[str, str], home: Path, proxy: RecordingProxy) -> dict[str, str]:
    "`env` as a fresh shell has it: no opt-out set, a private HOME, all HTTP(S) through `proxy`."
    env = {k: v for k, v in env.items() if k not in OPT_OUTS}
    home.mkdir(exist_ok=True)
    return {**env, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "HTTP_PROXY": proxy.url,
            "HTTPS_PROXY": proxy.url, "http_proxy": proxy.url, "https_proxy": proxy.url, "NO_PROXY": "", "no_proxy": ""}


def git(project: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=project,
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout


def committed_copy(dest: Path, with_telemetry_file: bool = True) -> tuple[Path, dict[str, str]]:
    "A project copy committed to a fresh git repository, as a clone would be; the environment that points into it."
    env = make_project(dest)
    if not with_telemetry_file:
        (dest / ".telemetry").unlink()
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "clone")
    return dest, env


def test_the_committed_telemetry_file_says_no():
    import yaml

    from tests.support.project import ROOT

    assert yaml.safe_load((ROOT / ".telemetry").read_text()) == {"consent": False}
    ignored = subprocess.run(["git", "check-ignore", "-q", ".telemetry"], cwd=ROOT).returncode
    assert ignored == 1, ".telemetry must be committed, not ignored"


@pytest.mark.slow
def test_kedro_run_in_a_fresh_shell_changes_nothing_tracked_and_stays_offline(tmp_path, proxy):
    project, env = committed_copy(tmp_path / "project")
    res = kedro(["run", "--pipeline", "ingest"], project, fresh_shell_env(env, tmp_path / "home", proxy))
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert git(project, "status", "--porcelain", "--untracked-files=no") == ""
    assert "kedro_telemetry" not in (project / "pyproject.toml").read_text()
    assert proxy.connections == 0, f"{proxy.connections} connection(s) to the network during `kedro run`"


@pytest.mark.slow
def test_without_the_file_kedro_telemetry_rewrites_pyproject(tmp_path, proxy):
    "The fault the file prevents, shown for real, so the test above can fail."
    project, env = committed_copy(tmp_path / "project", with_telemetry_file=False)
    res = kedro(["run", "--pipeline", "ingest"], project, fresh_shell_env(env, tmp_path / "home", proxy))
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert git(project, "status", "--porcelain", "--untracked-files=no").split() == ["M", "pyproject.toml"]
    assert "[tool.kedro_telemetry]" in (project / "pyproject.toml").read_text()
    assert proxy.connections > 0


PROBE = """
import mlflow.telemetry.utils as t
from fusion.config import Settings
{}
print(t.is_telemetry_disabled())
"""


@pytest.mark.parametrize(("setup", "disabled"), [
    ("uri = Settings().configure_mlflow()", "True"),  # what the tracking hooks and `fusion export` call
    ("", "False"),  # MLflow's own default in a fresh shell: on
    ("uri = Settings(mlflow_telemetry=True).configure_mlflow()", "False"),  # FUSION_MLFLOW_TELEMETRY=true opts in
], ids=["configured", "mlflow-default", "opted-in"])
def test_fusion_switches_mlflow_telemetry_off(setup, disabled, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in OPT_OUTS}
    done = subprocess.run([sys.executable, "-c", PROBE.format(setup)], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == disabled
