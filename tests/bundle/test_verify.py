"""The one verifier: what it refuses (extra files, symlinks, FIFOs, directories, paths that leave the bundle, changed
files), refused alike by `fusion serve`, `fusion verify` (before any venv) and `fusion image build` (before any build
context, without podman), and the bytes it hashed being the bytes that are used."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import fusion.bundle.verify as bv
from fusion.bundle.layout import GOLDEN_INPUTS, LABELS, LOCK, MANIFEST, WEIGHTS, sha256_bytes
from fusion.bundle.verify import Bundle, load_bundle, read_bundle
from fusion.bundle.write import write_bundle
from fusion.commands.exits import ExitCode
from fusion.errors import BundleIntegrityError
from fusion.model.network import save_model

from .conftest import small_model

BIN = Path(sys.executable).parent


def _extra(b: Path) -> str:
    (b / "notes.txt").write_text("not in the MANIFEST")
    return r"file\(s\) not in the MANIFEST \['notes.txt'\]"


def _symlink(b: Path) -> str:  # to a file with the very bytes the MANIFEST lists: following it would pass
    elsewhere = shutil.copy(b / LABELS, b.parent / "labels-elsewhere.json")
    (b / LABELS).unlink()
    (b / LABELS).symlink_to(elsewhere)
    return "labels.json is a symlink"


def _symlinked_dir(b: Path) -> str:
    shutil.move(b / "golden", b.parent / "golden-elsewhere")
    (b / "golden").symlink_to(b.parent / "golden-elsewhere")
    return "golden is a symlink"


def _fifo(b: Path) -> str:  # opening a FIFO to read it would block: it is refused unopened
    os.mkfifo(b / "golden" / "pipe")
    return "golden/pipe is a FIFO"


def _directory(b: Path) -> str:
    (b / LOCK).unlink()
    (b / LOCK).mkdir()
    return "requirements.lock is a directory, the MANIFEST lists a file"


def _escape(b: Path) -> str:  # the MANIFEST lists a file outside the bundle, with its true hash
    (b.parent / "outside.json").write_text("{}")
    man = json.loads((b / MANIFEST).read_text())
    man["files"]["../outside.json"] = sha256_bytes(b"{}")
    (b / MANIFEST).write_text(json.dumps(man))
    return "'../outside.json' leaves the bundle"


def _changed(b: Path) -> str:
    (b / LABELS).write_text('["walk", "rest"]\n')
    return r"sha256 mismatch in \['labels.json'\]"


def _missing(b: Path) -> str:
    (b / GOLDEN_INPUTS).unlink()
    return r"missing file\(s\) \['golden/inputs.json'\]"


TAMPERS: dict[str, Callable[[Path], str]] = {"extra-file": _extra, "symlink": _symlink, "symlinked-dir": _symlinked_dir,
                                             "fifo": _fifo, "dir-for-file": _directory, "path-escape": _escape,
                                             "changed-file": _changed, "missing-file": _missing}


def test_the_small_bundle_verifies(small_bundle):
    bundle = load_bundle(small_bundle)
    assert (bundle.name, bundle.version, bundle.summary()["files"]) == ("fusion-classifier", "1", 16)
    assert bundle.digest == sha256_bytes((small_bundle / MANIFEST).read_bytes())
    assert bundle.predictor().labels == ["rest", "walk"]


@pytest.mark.parametrize("tamper", TAMPERS.values(), ids=TAMPERS.keys())
def test_the_verifier_refuses_and_names_it(small_copy, tamper):
    message = tamper(small_copy)
    with pytest.raises(BundleIntegrityError, match=message):
        load_bundle(small_copy)


def test_a_forged_but_rehashed_file_is_caught_by_the_models_own_config(small_copy):
    (small_copy / LABELS).write_text('["walk", "rest"]\n')
    man = json.loads((small_copy / MANIFEST).read_text())
    man["files"][LABELS] = sha256_bytes(b'["walk", "rest"]\n')
    (small_copy / MANIFEST).write_text(json.dumps(man))
    assert read_bundle(small_copy).data[LABELS] == b'["walk", "rest"]\n'  # the hashes agree now
    with pytest.raises(BundleIntegrityError, match="labels.json disagrees with the config inside model.safetensors"):
        load_bundle(small_copy)


# --- the bytes that were hashed are the bytes that are used ------------------------------------------------------

def _swap_weights(root: Path) -> None:
    "Replace the weights on disk by another model's (zeros), as an attacker racing the server would."
    zeros = small_model()
    zeros.state.update({k: torch.zeros_like(v) for k, v in zeros.state.items()})
    save_model(zeros, root / WEIGHTS)


def test_a_file_swapped_after_the_check_is_never_loaded(small_copy):
    files = read_bundle(small_copy)
    _swap_weights(small_copy)
    model = Bundle.from_files(files).model
    verified = small_model().state
    assert all(torch.equal(model.state[k], verified[k]) for k in verified)
    with pytest.raises(BundleIntegrityError, match=r"sha256 mismatch in \['model.safetensors'\]"):
        load_bundle(small_copy)  # and the next check sees the swap


def test_load_bundle_loads_the_verified_bytes_even_if_the_file_changes_in_between(small_copy, monkeypatch):
    # The race (a file replaced between the hash check and the model load) cannot be timed for real: the swap is
    # made right after `load_bundle`'s own read, through the real functions.
    real_read = bv.read_bundle

    def read_then_swap(path):
        files = real_read(path)
        _swap_weights(small_copy)
        return files

    monkeypatch.setattr(bv, "read_bundle", read_then_swap)
    bundle = bv.load_bundle(small_copy)
    verified = small_model().state
    assert all(torch.equal(bundle.model.state[k], verified[k]) for k in verified)
    assert sha256_bytes(bundle.data[WEIGHTS]) == bundle.manifest["files"][WEIGHTS]
    assert sha256_bytes((small_copy / WEIGHTS).read_bytes()) != bundle.manifest["files"][WEIGHTS]


def test_a_copy_written_from_the_verified_bytes_holds_them_whatever_the_directory_holds_now(small_copy, tmp_path):
    bundle = load_bundle(small_copy)
    _swap_weights(small_copy)
    (small_copy / "notes.txt").write_text("appeared after the check")
    copy = write_bundle(bundle.data, tmp_path / "ctx")  # what `fusion image build` and `fusion verify` do
    assert load_bundle(copy).digest == bundle.digest and not (copy / "notes.txt").exists()


# --- every command refuses alike, before any slow work -------------------------------------------------------------

def _env(tmp: Path, path: str) -> dict[str, str]:
    "A clean environment: no FUSION_* settings, `path` as PATH, and a private TMPDIR to prove nothing was made."
    tmp.mkdir()
    return {**{k: v for k, v in os.environ.items() if not k.startswith("FUSION_")}, "DO_NOT_TRACK": "true",
            "PATH": path, "TMPDIR": str(tmp), "FUSION_JWT_SECRET": "s" * 32}


COMMANDS = {"serve": ["serve"], "verify": ["verify"], "image-build": ["image", "build"],
            "image-verify": ["image", "verify"]}


@pytest.mark.parametrize("tamper", [_extra, _symlink, _fifo, _escape], ids=["extra-file", "symlink", "fifo",
                                                                            "path-escape"])
@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_every_command_refuses_a_bad_bundle_first(small_copy, tmp_path, command, tamper):
    message = tamper(small_copy)
    # PATH holds only the venv: `fusion image build` must refuse the bundle before it looks for podman
    env = _env(tmp_path / "tmp", str(BIN))
    t0 = time.perf_counter()
    res = subprocess.run([str(BIN / "fusion"), *command, str(small_copy)], env=env, cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == ExitCode.BAD_BUNDLE, res.stdout + res.stderr
    assert re.search(message, res.stderr), res.stderr
    assert "Traceback" not in res.stderr
    assert time.perf_counter() - t0 < 60  # fails fast: no venv, no build context
    assert list((tmp_path / "tmp").iterdir()) == []  # nothing was made: no fusion-verify-* venv, no image context
