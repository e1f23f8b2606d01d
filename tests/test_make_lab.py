"""`make lab` starts JupyterLab for root too (containers), with the project's kernel "fusion" as the default.

The command line is the one `make -n lab` prints; the test runs it for real (on a free port, without a browser) for as
long as it takes to answer, asks the server which kernel it defaults to, and stops it by its process group.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
import time
import urllib.request

import pytest

from fusion.bundle.standalone import stop_group
from fusion.config import free_port
from tests.support.project import ROOT

START_S = 90  # JupyterLab imports its extensions before it answers


def lab_command() -> list[str]:
    "The `jupyter lab` command line of the Makefile's `lab` target, as make would run it here."
    done = subprocess.run(["make", "-n", "lab"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    lines = [line for line in done.stdout.splitlines() if " lab " in f"{line} " and "jupyter" in line]
    assert len(lines) == 1, done.stdout
    return shlex.split(lines[0])


def test_root_gets_allow_root():
    argv = lab_command()
    assert ("--allow-root" in argv) == (os.geteuid() == 0), argv
    assert "--MappingKernelManager.default_kernel_name=fusion" in argv


def get_json(url: str, token: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=5) as r:
        return json.loads(r.read())


@pytest.mark.slow
def test_make_lab_serves_with_the_fusion_kernel(tmp_path):
    port, token = free_port(), secrets.token_hex(16)
    argv = [*lab_command(), "--no-browser", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}"]
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}  # no stray server files in ~/.local
    with open(tmp_path / "lab.log", "wb") as log:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline, answer = time.monotonic() + START_S, None
        while answer is None and time.monotonic() < deadline:
            assert proc.poll() is None, f"jupyter lab exited {proc.returncode}: {(tmp_path / 'lab.log').read_text()[-3000:]}"
            try:
                answer = get_json(f"http://127.0.0.1:{port}/api/kernelspecs", token)
            except OSError:
                time.sleep(0.5)
        assert answer is not None, f"no answer within {START_S} s: {(tmp_path / 'lab.log').read_text()[-3000:]}"
        assert answer["default"] == "fusion" and "fusion" in answer["kernelspecs"], answer
        lab = urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token={token}", timeout=10)
        assert lab.status == 200 and b"JupyterLab" in lab.read()
    finally:
        stop_group(proc)
