"""The serving image, built and run for real with Podman: `fusion image verify` (golden, 401, 413, non-root); and
what the image commands say on a machine without podman."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fusion.bundle.image import BASE_IMAGE, image_exists, image_ref, make_base, podman
from fusion.bundle.verify import load_bundle
from fusion.commands.exits import ExitCode

BIN = Path(sys.executable).parent
MAX_IMAGE_BYTES = 1_200_000_000  # the target; MLflow's build-docker images weigh over 3 GB


@pytest.fixture(scope="module")
def base_image() -> str:
    "The local Debian base, made with debootstrap unless it exists already (~1-2 min once per machine)."
    missing = [t for t in ("podman", "runc", "debootstrap") if shutil.which(t) is None]
    if missing:
        pytest.fail(f"{missing} not installed: `apt-get install podman runc debootstrap` (as .ci/run does)",
                    pytrace=False)
    if os.geteuid() != 0:
        pytest.fail("building images here needs root (debootstrap, podman with vfs storage)", pytrace=False)
    if not image_exists(BASE_IMAGE):
        make_base(BASE_IMAGE)
    return BASE_IMAGE


@pytest.mark.slow
@pytest.mark.image
def test_image_verify_builds_runs_and_passes(exported_run, base_image):
    res = subprocess.run([str(BIN / "fusion"), "image", "verify", str(exported_run.bundle), "--base-image", base_image,
                          "--json"], capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    report = json.loads(res.stdout.strip().splitlines()[-1])
    assert report["passed"] and report["cases"] == 28 and report["problems"] == [], report
    ref = image_ref(load_bundle(exported_run.bundle))
    inspect = json.loads(podman("image", "inspect", ref).stdout)[0]
    assert inspect["Config"]["User"] == "10001:10001"
    assert inspect["Size"] <= MAX_IMAGE_BYTES, f"image {ref} weighs {inspect['Size'] / 1e9:.2f} GB"
    podman("rmi", "-f", ref, check=False)


COMMANDS = {"verify": ["image", "verify"], "build": ["image", "build"]}


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_without_podman_the_image_commands_say_what_is_missing(small_bundle, tmp_path, command):
    env = {**os.environ, "PATH": str(BIN)}  # only the venv: no podman, whether or not this machine has one
    res = subprocess.run([str(BIN / "fusion"), *command, str(small_bundle)], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == ExitCode.MISSING_TOOL, res.stdout + res.stderr
    assert "podman is not installed (not found on PATH); install: `apt-get install podman runc` as root" in res.stderr
    assert "Traceback" not in res.stderr


def test_without_debootstrap_the_base_command_says_what_is_missing(tmp_path):
    res = subprocess.run([str(BIN / "fusion"), "image", "base"], env={**os.environ, "PATH": str(BIN)}, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == ExitCode.MISSING_TOOL and "Traceback" not in res.stderr, res.stderr
    assert "debootstrap and podman are not installed" in res.stderr and "`apt-get install debootstrap` as root" in res.stderr
