"""The bundle's serving image, built and checked for real with Podman (or Docker): the logic behind `fusion image`.

Every function takes a `Bundle` that `fusion.bundle.verify.load_bundle` has verified: the build context is written
from its verified bytes (never copied from the directory), and the HTTP checks use its verified golden cases. The
build needs no network: `build_image` gathers a wheelhouse for the lock into the context, and the Dockerfile installs
from it with `pip --no-index`. Registries are out of reach on these machines, so `make_base` makes a Debian bookworm
base with debootstrap (`localhost/fusion-base:bookworm`). Podman runs here as root with vfs storage, chroot isolation
and runc (crun fails on these cgroups), and with a containers.conf that sets no default ulimits (raising
RLIMIT_NOFILE is refused). A program that is not installed is named, with the way to install it
(`MissingToolError`). Hand-written (it drives podman); documented in nbs/46_bundle_standalone.ipynb; the commands
are in `fusion.commands.image`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from fusion.bundle.layout import GOLDEN_INPUTS, GOLDEN_OUTPUTS, LOCK, WHEELHOUSE
from fusion.bundle.standalone import VerifyReport, http_checks, wait_ready
from fusion.bundle.write import write_bundle
from fusion.errors import MissingToolError

if TYPE_CHECKING:
    from fusion.bundle.verify import Bundle

__all__ = ["BASE_IMAGE", "TARGET_PYTHON", "INSTALL_HINTS", "require", "podman", "image_ref",
           "gather_wheelhouse", "make_base", "build_image", "image_exists", "verify_image"]

BASE_IMAGE = "localhost/fusion-base:bookworm"  # made by `fusion image base`
TARGET_PYTHON = "3.11.2"  # bookworm's python3: wheels and markers are chosen for it
INSTALL_HINTS = {  # how to get each program the image commands run
    "podman": "`apt-get install podman runc` as root",
    "runc": "`apt-get install podman runc` as root",
    "debootstrap": "`apt-get install debootstrap` as root",
    "docker": "Docker Engine (https://docs.docker.com/engine/install/), or use the default --engine podman",
}
_CONF = "[containers]\ndefault_ulimits = []\n"
_ENV_CONF = Path(tempfile.gettempdir()) / "fusion-containers.conf"


def require(*tools: str) -> None:
    "`MissingToolError` naming each of `tools` that is not on PATH, and how to install it."
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        hints = "; ".join(dict.fromkeys(INSTALL_HINTS.get(t, f"install {t}") for t in missing))
        raise MissingToolError(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed "
                               f"(not found on PATH); install: {hints}")


def podman(*args: str, engine: str = "podman", timeout: float = 1800, check: bool = True,
           capture: bool = True) -> subprocess.CompletedProcess:
    "Run podman with the flags that work on these machines (vfs storage, no default ulimits), or docker as is."
    require(engine)
    if engine == "docker":
        cmd, env = ["docker", *args], None
    else:
        _ENV_CONF.write_text(_CONF)
        env = {**os.environ, "CONTAINERS_CONF": str(_ENV_CONF)}
        cmd = ["podman", "--storage-driver", "vfs", *args]
    res = subprocess.run(cmd, capture_output=capture, text=True, timeout=timeout, env=env)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed (exit {res.returncode}): {(res.stderr or '')[-3000:]}")
    return res


def image_ref(bundle: Bundle) -> str:
    "`localhost/<model>:<version>-<first 12 hex of the bundle digest>`: one image per bundle content."
    return f"localhost/{bundle.name}:{bundle.version}-{bundle.digest[:12]}"


def gather_wheelhouse(lock: Path, dest: Path, python_version: str = TARGET_PYTHON) -> list[str]:
    """Wheels for every pin of `lock`, plus what the target interpreter's markers add (e.g. async-timeout for redis
    on Python < 3.11.3), into `dest`; returns the added requirements (also written to `dest/requirements.extra`)."""
    dest.mkdir(parents=True, exist_ok=True)
    res = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--python-version",
                          python_version, "-d", str(dest), "-r", str(lock)], capture_output=True, text=True, timeout=1800)
    if res.returncode != 0:
        raise RuntimeError(f"gathering the wheelhouse for {lock} failed: {res.stderr[-3000:]}")
    pinned = {re.split(r"[=<>; ]", line)[0].lower().replace("_", "-") for line in lock.read_text().splitlines()
              if line and not line.startswith("#")}
    extra = []
    for whl in sorted(dest.glob("*.whl")):
        name, version = whl.name.split("-")[:2]
        if name.lower().replace("_", "-") not in pinned:
            extra.append(f"{name}=={version}")
    (dest / "requirements.extra").write_text("".join(f"{e}\n" for e in extra) or "# nothing beyond the lock\n")
    return extra


def make_base(ref: str = BASE_IMAGE, engine: str = "podman") -> str:
    "A Debian bookworm minbase with python3, venv and CA certificates (debootstrap, ~40 s, needs root), as `ref`."
    require("debootstrap", engine)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "rootfs"
        res = subprocess.run(["debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates",
                              "bookworm", str(root)], capture_output=True, text=True, timeout=1200)
        if res.returncode != 0:
            raise RuntimeError(f"debootstrap failed (exit {res.returncode}): {res.stderr[-2000:]}")
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man"):
            shutil.rmtree(root / junk, ignore_errors=True)
        tar = Path(tmp) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(root), "-cf", str(tar), "."], check=True, timeout=600)
        podman("import", str(tar), ref, engine=engine)
    return ref


def image_exists(ref: str, engine: str = "podman") -> bool:
    "Whether the local image store has `ref`."
    return podman("image", "inspect", ref, engine=engine, check=False).returncode == 0


def build_image(bundle: Bundle, base_image: str | None = None, ref: str | None = None, engine: str = "podman") -> str:
    "Build the serving image of the verified `bundle` from its bytes plus a gathered wheelhouse, offline; its ref."
    require(engine)  # before anything is written or downloaded
    ref = ref or image_ref(bundle)
    with tempfile.TemporaryDirectory() as tmp:
        ctx = write_bundle(bundle.data, Path(tmp) / "ctx")  # the verified bytes, not whatever the directory holds now
        gather_wheelhouse(ctx / LOCK, ctx / WHEELHOUSE)
        build_args = ["--build-arg", f"BASE_IMAGE={base_image}"] if base_image else []
        # --layers=false: with vfs storage every cached layer is a full copy of the image (GBs, minutes)
        extra = ["--isolation", "chroot", "--network", "host", "--layers=false"] if engine == "podman" else []
        before = _dangling(engine)
        podman("build", *extra, *build_args, "-t", ref, str(ctx), engine=engine)
        for image in _dangling(engine) - before:  # the build stage's image: ours, and of no further use
            podman("rmi", image, engine=engine, check=False)
    return ref


def _dangling(engine: str) -> set[str]:
    "Ids of untagged images in the local store."
    return set(podman("images", "-q", "--filter", "dangling=true", engine=engine).stdout.split())


def verify_image(bundle: Bundle, ref: str, engine: str = "podman") -> VerifyReport:
    "Run `ref` on a free loopback port and run the golden, 401 and 413 checks over HTTP against it."
    import secrets

    from fusion.config import Settings, free_port
    from fusion.serving.auth import mint_token

    require(engine, *(["runc"] if engine == "podman" else []))
    report = VerifyReport(str(bundle.root))
    settings = Settings(project_root=bundle.root)
    port, secret = free_port(), secrets.token_hex(32)
    name = f"fusion-verify-{port}"
    net = ["--runtime", "runc", "--network", "host"] if engine == "podman" else ["-p", f"127.0.0.1:{port}:{port}"]
    t0 = time.perf_counter()
    podman("run", "-d", "--rm", "--name", name, *net, "-e", f"FUSION_JWT_SECRET={secret}", ref,
           "--host", "127.0.0.1" if engine == "podman" else "0.0.0.0", "--port", str(port), engine=engine)
    try:
        def alive() -> bool:
            return podman("container", "inspect", name, engine=engine, check=False).returncode == 0

        try:
            wait_ready(f"http://127.0.0.1:{port}", alive)
        except RuntimeError as e:
            logs = podman("logs", name, engine=engine, check=False)
            raise RuntimeError(f"{e}; container log:\n{(logs.stdout + logs.stderr)[-3000:]}") from e
        report.seconds["start"] = round(time.perf_counter() - t0, 1)
        user = podman("exec", name, "id", "-u", engine=engine, check=False).stdout.strip()
        token = mint_token(secret, "fusion-image-verify", settings.jwt_audience, settings.jwt_issuer, 600)
        limit = Settings.model_fields["max_body_bytes"].default
        report.cases, report.problems = http_checks(f"http://127.0.0.1:{port}", bundle.json(GOLDEN_INPUTS),
                                                    bundle.json(GOLDEN_OUTPUTS), token, limit)
        if user in ("", "0"):
            report.problems.append(f"the container runs as uid {user or '?'}, expected a non-root user")
    finally:
        podman("stop", "-t", "10", name, engine=engine, check=False)
    return report
