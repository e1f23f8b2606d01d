"""The one writer: the bundle a default `kedro run` writes (every file, nothing else, provenance), atomic writes, and
nothing written that the verifier would refuse."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import fusion.bundle.write as bw
from fusion.bundle.layout import LABELS, MANIFEST
from fusion.bundle.verify import load_bundle, read_bundle
from fusion.errors import BundleIntegrityError, ConfigError
from fusion.events.store import EventStore

EXPECTED_FILES = {".dockerignore", "Dockerfile", "MANIFEST.json", "feature_spec.json", "golden/inputs.json",
                  "golden/outputs.json", "grafana/dashboard.json", "k8s/deployment.yaml", "k8s/hpa.yaml",
                  "k8s/networkpolicy.yaml", "k8s/pdb.yaml", "k8s/service.yaml", "labels.json", "model.json",
                  "model.safetensors", "requirements.lock", "wheels/fusion-0.1.0-py3-none-any.whl"}


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _manifest(bundle: Path) -> dict:
    return json.loads((bundle / MANIFEST).read_text())


@pytest.mark.slow
def test_default_run_writes_the_bundle_and_nothing_else(exported_run):
    bundle = exported_run.bundle
    assert _files(bundle) == EXPECTED_FILES
    assert sorted(p.name for p in bundle.parent.iterdir()) == ["1"]  # no temp or half-written directory beside it
    assert (bundle / "model.safetensors").read_bytes() == \
        (exported_run.project / "data/06_models/model.safetensors").read_bytes()


@pytest.mark.slow
def test_manifest_hashes_every_file_and_records_provenance(exported_run):
    bundle, man = exported_run.bundle, _manifest(exported_run.bundle)
    assert set(man["files"]) == EXPECTED_FILES - {MANIFEST}
    for rel, digest in man["files"].items():
        assert hashlib.sha256((bundle / rel).read_bytes()).hexdigest() == digest, rel
    trained = EventStore(exported_run.env["FUSION_EVENTS_DB"]).events(type="ModelTrained")[0]
    assert man["model"] == {"name": "fusion-classifier", "version": trained.payload["model_version"]} == \
        json.loads((bundle / "golden/outputs.json").read_text())["model"]
    assert (man["mlflow_run_id"], man["data_hash"], man["feature_spec_digest"], man["trace_id"]) == \
        (trained.payload["mlflow_run_id"], trained.payload["data_hash"], trained.payload["feature_spec_digest"],
         trained.trace_id)
    assert len(man["git_commit"].removesuffix("-dirty")) == 40 and man["created_at"].endswith("+00:00")
    assert load_bundle(bundle).version == "1"  # the server's own check agrees


@pytest.mark.slow
def test_a_tampered_file_of_the_run_is_refused(bundle_copy):
    labels = json.loads((bundle_copy / "labels.json").read_text())
    (bundle_copy / "labels.json").write_text(json.dumps(labels[::-1]))
    with pytest.raises(BundleIntegrityError, match=r"sha256 mismatch in \['labels.json'\]"):
        load_bundle(bundle_copy)


def test_writing_back_the_verified_bytes_reproduces_the_bundle(small_bundle, tmp_path):
    files = read_bundle(small_bundle).data
    copy = bw.write_bundle(files, tmp_path / "copy")
    assert {p: (copy / p).read_bytes() for p in _files(copy)} == {p: (small_bundle / p).read_bytes()
                                                                 for p in _files(small_bundle)}
    with pytest.raises(ConfigError, match="exists already; pass overwrite=True"):
        bw.write_bundle(files, copy)


def test_a_crash_mid_write_leaves_no_partial_bundle_and_keeps_the_old_one(small_bundle, tmp_path):
    # The fault (a disk error while writing golden/outputs.json) cannot be caused for real as root: inject it.
    def crashing(path: Path, data: bytes) -> None:
        if path.as_posix().endswith("golden/outputs.json"):
            raise OSError(28, "No space left on device")
        bw._write_file(path, data)

    files = read_bundle(small_bundle).data
    with pytest.raises(OSError, match="No space left"):
        bw.write_bundle(files, tmp_path / "m" / "1", write_file=crashing)
    assert list((tmp_path / "m").iterdir()) == []
    good = bw.write_bundle(files, tmp_path / "m" / "1")
    with pytest.raises(OSError, match="No space left"):
        bw.write_bundle(files, good, overwrite=True, write_file=crashing)
    assert sorted(p.name for p in good.parent.iterdir()) == ["1"]
    assert read_bundle(good).digest == read_bundle(small_bundle).digest


@pytest.mark.parametrize("change, message", [
    ({"../escape.txt": b"x"}, "'../escape.txt' leaves the bundle"),
    ({"/etc/escape": b"x"}, "'/etc/escape' leaves the bundle"),
    ({LABELS: b'["walk", "rest"]\n'}, r"sha256 mismatch in \['labels.json'\]"),
    ({"notes.txt": b"not in the MANIFEST"}, r"file\(s\) not in the MANIFEST \['notes.txt'\]"),
], ids=["parent-escape", "absolute-path", "changed-file", "extra-file"])
def test_the_writer_never_writes_what_the_verifier_refuses(small_bundle, tmp_path, change, message):
    files = {**read_bundle(small_bundle).data, **change}
    with pytest.raises(BundleIntegrityError, match=message):
        bw.write_bundle(files, tmp_path / "m" / "1")
    assert not (tmp_path / "m").exists() or list((tmp_path / "m").iterdir()) == []
    assert not (tmp_path / "escape.txt").exists()
