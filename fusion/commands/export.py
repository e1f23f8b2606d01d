"""`fusion export` and `fusion verify`: write a serving bundle from MLflow, and prove that it stands alone.

`register(app)` adds them to the `fusion` command (called by `fusion.commands.serve.register`). Heavy imports stay
inside the commands so that `fusion --help` is quick. Documented in nbs/43_export_hooks.ipynb and
nbs/46_export_walkthrough.ipynb.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import http.client
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["stop_group", "EXIT_DIFFERS", "EXIT_BAD_BUNDLE", "EXIT_ENVIRONMENT", "VerifyReport", "free_port", "http_checks",
           "verify_bundle", "export", "verify", "register"]

EXIT_DIFFERS = 1  # the server answered, but not as the golden outputs say
EXIT_BAD_BUNDLE = 3  # the bundle does not match its MANIFEST (same code as `fusion serve`)
EXIT_ENVIRONMENT = 4  # the fresh environment could not be built, or the server did not start
READY_TIMEOUT_S = 180.0  # a cold server loads torch and warms the model before /readyz answers 200


@dataclass
class VerifyReport:
    "What `fusion verify` (or `fusion image verify`) found."
    bundle: str
    cases: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    workdir: str | None = None  # the kept venv and server log (--keep)

    @property
    def passed(self) -> bool:
        return self.cases > 0 and not self.problems


def free_port() -> int:
    "A TCP port on 127.0.0.1 that nothing listens on now."
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: bytes, token: str | None, timeout: float = 60.0) -> tuple[int, dict, dict]:
    """POST `body` as JSON; (status, response JSON or {}, lower-cased headers).

    Reads the answer even when the server replied (401, 413) and closed before taking the whole body."""
    u = urllib.parse.urlsplit(url)
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        try:
            conn.request("POST", u.path, body=body, headers=headers)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered before reading everything: its response is still there to read
        r = conn.getresponse()
        raw = r.read()
        try:
            payload = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            payload = {"raw": raw[:200].decode("latin-1")}
        return r.status, payload, {k.lower(): v for k, v in r.getheaders()}
    finally:
        conn.close()


def wait_ready(base_url: str, alive: Callable[[], bool], timeout_s: float = READY_TIMEOUT_S) -> None:
    "Poll `base_url/readyz` until it answers 200; `RuntimeError` if the server dies or `timeout_s` passes."
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError("the server exited before it was ready")
        try:
            with urllib.request.urlopen(f"{base_url}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the server was not ready within {timeout_s:.0f} s")


def _chunks(instances: list[dict], limit: int) -> list[list[dict]]:
    "Instances grouped so that each request body stays under `limit` bytes."
    out, cur, size = [], [], 20
    for inst in instances:
        n = len(json.dumps(inst, separators=(",", ":"))) + 1
        if cur and size + n > limit:
            out.append(cur)
            cur, size = [], 20
        cur.append(inst)
        size += n
    return out + ([cur] if cur else [])


def http_checks(base_url: str, bundle: Path, token: str, max_body_bytes: int) -> tuple[int, list[str]]:
    "Post the golden inputs (in bodies under the limit) and compare; then no token → 401, oversize → 413."
    from fusion.bundle.files import GOLDEN_INPUTS, GOLDEN_OUTPUTS, compare_golden

    inputs = json.loads((bundle / GOLDEN_INPUTS).read_text())
    expected = json.loads((bundle / GOLDEN_OUTPUTS).read_text())
    got: dict = {"predictions": []}
    problems = []
    for chunk in _chunks(inputs["instances"], max_body_bytes - 1024):
        body_bytes = json.dumps({"instances": chunk}, separators=(",", ":")).encode()
        status, body, _ = _post(f"{base_url}/v1/predict", body_bytes, token)
        if status != 200:
            problems.append(f"POST /v1/predict of {len(chunk)} golden case(s): status {status}, expected 200: {body}")
            continue
        got["predictions"] += body.get("predictions", [])
        got["model"] = body.get("model")
    if not problems:
        problems += compare_golden(expected, got)
    first = json.dumps({"instances": inputs["instances"][:1]}).encode()
    status, _, headers = _post(f"{base_url}/v1/predict", first, None)
    if status != 401 or "bearer" not in headers.get("www-authenticate", "").lower():
        problems.append(f"POST /v1/predict without a token: status {status} (WWW-Authenticate "
                        f"{headers.get('www-authenticate')!r}), expected 401 with WWW-Authenticate: Bearer")
    status, _, _ = _post(f"{base_url}/v1/predict", b" " * (max_body_bytes + 1), token)
    if status != 413:
        problems.append(f"POST /v1/predict with a body of {max_body_bytes + 1} bytes: status {status}, expected 413")
    return len(expected["predictions"]), problems


def _run(cmd: list[str], what: str, timeout: float = 900, **kw) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if res.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {res.returncode}): {(res.stderr or res.stdout)[-2000:]}")


def build_venv(bundle: Path, dest: Path, python: str = sys.executable) -> Path:
    "A fresh virtual environment in `dest` with only the bundle's lock and wheel installed; its bin directory."
    from fusion.bundle.files import LOCK, WHEEL_DIR

    _run([python, "-m", "venv", str(dest)], "python -m venv")
    pip = [str(dest / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-compile",
           "--disable-pip-version-check"]
    wheels = sorted((bundle / WHEEL_DIR).glob("fusion-*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"{bundle / WHEEL_DIR} should hold one fusion wheel, holds {[w.name for w in wheels]}")
    # --no-deps: the lock is the whole closure, and the wheel's own requirements are the platform's, not serving's
    _run([*pip, "-r", str(bundle / LOCK), str(wheels[0])], f"installing {bundle / LOCK} and {wheels[0].name}")
    return dest / "bin"


def _clean_env(**extra: str) -> dict[str, str]:
    "This process's environment without FUSION_* settings (the server must not see the caller's), plus `extra`."
    return {**{k: v for k, v in os.environ.items() if not k.startswith("FUSION_")}, **extra}


def stop_group(proc: subprocess.Popen) -> None:
    "Stop the process group that `proc` leads (started with `start_new_session=True`): SIGTERM, then SIGKILL."
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@contextmanager
def _server(cmd: list[str], env: dict, log: Path):
    "Run `cmd` in its own process group with output to `log`; stop it (SIGTERM, then SIGKILL) on the way out."
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        stop_group(proc)


def verify_bundle(bundle: str | Path, keep: bool = False, step: Callable[[str], None] = lambda s: None) -> VerifyReport:
    "Install the bundle alone in a fresh venv, serve it on a free loopback port, and check it over HTTP."
    from fusion.config import Settings
    from fusion.bundle.files import check_bundle

    bundle = Path(bundle).resolve()
    report = VerifyReport(str(bundle))
    check_bundle(bundle)  # BundleIntegrityError before any slow work
    tmp = Path(tempfile.mkdtemp(prefix="fusion-verify-"))
    report.workdir = str(tmp) if keep else None
    t0 = time.perf_counter()
    try:
        step("creating a fresh virtual environment with the bundle's wheel and lock")
        try:
            bin_dir = build_venv(bundle, tmp / "venv")
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            raise RuntimeError(f"building the environment: {e}") from e
        report.seconds["install"] = round(time.perf_counter() - t0, 1)
        port, secret = free_port(), secrets.token_hex(32)
        env = _clean_env(FUSION_JWT_SECRET=secret, FUSION_PROJECT_ROOT=str(tmp),
                         PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", VIRTUAL_ENV=str(bin_dir.parent))
        token = subprocess.run([str(bin_dir / "fusion"), "token", "--sub", "fusion-verify", "--ttl", "600"], env=env,
                               capture_output=True, text=True, timeout=120, cwd=tmp)
        if token.returncode != 0:
            raise RuntimeError(f"`fusion token` from the fresh environment failed: {token.stderr[-2000:]}")
        step(f"starting `fusion serve` from it on 127.0.0.1:{port}")
        t1 = time.perf_counter()
        cmd = [str(bin_dir / "fusion"), "serve", str(bundle), "--host", "127.0.0.1", "--port", str(port)]
        with _server(cmd, {**env, "PWD": str(tmp)}, tmp / "server.log") as proc:
            base = f"http://127.0.0.1:{port}"
            try:
                wait_ready(base, lambda: proc.poll() is None)
            except RuntimeError as e:
                raise RuntimeError(f"{e}; server log:\n{(tmp / 'server.log').read_text()[-3000:]}") from e
            report.seconds["start"] = round(time.perf_counter() - t1, 1)
            step("posting the golden cases, then checking 401 and 413")
            limit = Settings.model_fields["max_body_bytes"].default
            report.cases, report.problems = http_checks(base, bundle, token.stdout.strip(), limit)
        report.seconds["total"] = round(time.perf_counter() - t0, 1)
        return report
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


def _report(report: VerifyReport, prefix: str, as_json: bool) -> None:
    "Print `report`; the command then exits with EXIT_DIFFERS unless it passed."
    if as_json:
        typer.echo(json.dumps({**report.__dict__, "passed": report.passed}))
    elif report.passed:
        typer.echo(f"{prefix}: PASS ({report.cases} golden cases)")
    else:
        typer.echo(f"{prefix}: FAIL ({len(report.problems)} problem(s), {report.cases} golden cases)")
        for p in report.problems:
            typer.echo(f"  - {p}")
    if not report.passed:
        raise typer.Exit(EXIT_DIFFERS)


def export(
    run_id: Annotated[str | None, typer.Option("--run-id", help="export the version registered from this MLflow run")] = None,
    model_version: Annotated[str | None, typer.Option("--model-version", help="export this registered version")] = None,
    out: Annotated[Path, typer.Option("--out", help="bundles go to OUT/<model>/<version>/")] = Path("exported"),
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace an existing bundle of that version")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print {bundle, model, version, files} as JSON")] = False,
) -> None:
    """Write the serving bundle of a registered model version (default: the latest) from MLflow.

    The weights and the golden cases come from the run's artifacts (`kedro run` logs them); the wheel and the lock
    are built from this checkout. The bundle appears atomically; an existing one is kept unless --overwrite.
    """
    from fusion.errors import ConfigError, exit_on
    from fusion.bundle.files import MANIFEST
    from fusion.tracking.export import export_from_mlflow

    if run_id and model_version:
        raise typer.BadParameter("give --run-id or --model-version, not both", param_hint="--run-id")
    with exit_on("fusion export", {ConfigError: 2}):
        bundle = export_from_mlflow(run_id, model_version, out, overwrite=overwrite)
    man = json.loads((bundle / MANIFEST).read_text())
    if as_json:
        typer.echo(json.dumps({"bundle": str(bundle), **man["model"], "files": len(man["files"]),
                               "mlflow_run_id": man["mlflow_run_id"]}))
    else:
        typer.echo(str(bundle))


def verify(
    bundle: Annotated[Path, typer.Argument(help="bundle directory exported/<model>/<version>/")],
    keep: Annotated[bool, typer.Option("--keep", help="keep the temporary venv and server log (path printed)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Prove the bundle stands alone: fresh venv with only its wheel and lock, `fusion serve` on a free loopback port,
    golden inputs → golden outputs (same labels, probabilities within 1e-6), no token → 401, oversize body → 413.

    Exit 0: PASS. 1: the server answered differently. 3: files differ from MANIFEST.json. 4: install or start failed.
    """
    from rich.console import Console

    from fusion.errors import BundleIntegrityError, exit_on

    console = Console(stderr=True)
    with exit_on("verify: FAIL", {BundleIntegrityError: EXIT_BAD_BUNDLE,
                                  (RuntimeError, subprocess.TimeoutExpired): EXIT_ENVIRONMENT}):
        with console.status("verify") as status:
            report = verify_bundle(bundle, keep, step=lambda s: status.update(f"verify: {s}"))
    _report(report, "verify", as_json)


def register(app: typer.Typer) -> None:
    "Add `export` and `verify` (and `image`, when available) to the `fusion` command."
    from fusion.bundle import image

    app.command("export")(export)
    app.command("verify")(verify)
    image.register(app)
