"""Fixtures of the serving tests: a trained model and its bundle, JWT keys, a `Service` with an in-memory cache, a
redis-server of our own, a live server."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from fusion.bundle.verify import load_bundle
from fusion.config import Settings, free_port
from fusion.serving.auth import TokenVerifier, mint_token
from fusion.serving.cache import MemoryCache
from fusion.serving.service import Service

from tests.support.project import ROOT

SECRET = "test-secret-" + "x" * 32
BIN = Path(sys.executable).parent
START_S = 60.0  # a server process imports torch and verifies the bundle before it is ready


@pytest.fixture
def bundle_copy(bundle_dir, tmp_path) -> Path:
    "A copy of the bundle that a test may tamper with."
    return Path(shutil.copytree(bundle_dir, tmp_path / "bundle"))


@pytest.fixture(scope="session")
def rsa_keys() -> tuple[str, str]:
    "(private PEM, public PEM) of a fresh RSA key."
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


@pytest.fixture(scope="session")
def settings(rsa_keys) -> Settings:
    return Settings(project_root=ROOT, jwt_secret=SECRET, jwt_public_key=rsa_keys[1], redis_url=None)


@pytest.fixture(scope="session")
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(SECRET, 'tester', 'fusion', 'fusion', ttl_s=3600)}"}


@pytest.fixture
def service(bundle_dir, settings) -> Service:
    "The service of the test bundle with a fresh `MemoryCache` (the unit tests' stand-in for Redis), not yet started."
    bundle = load_bundle(bundle_dir)
    return Service(bundle, settings, bundle.predictor(max_instances=settings.max_instances),
                   TokenVerifier.from_settings(settings), MemoryCache())


@dataclass
class RedisServer:
    "A redis-server of our own on a free loopback port, which a test may kill and restart."
    port: int
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--enable-debug-command", "local"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port, socket_timeout=0.5).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not answer within 10 s")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture(scope="session")
def redis_server():
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server)", pytrace=False)
    server = RedisServer(free_port())
    server.start()
    yield server
    server.kill()


def start_server(bundle: Path, env: dict[str, str], port: int, *args: str) -> subprocess.Popen:
    "`fusion serve` in a subprocess; returns once /readyz answers 200 (or fails with the server's output)."
    proc = subprocess.Popen([str(BIN / "fusion"), "serve", str(bundle), "--port", str(port), "--log-level", "warning",
                             *(args or ("--no-compile",))],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"fusion serve exited {proc.returncode}: {proc.stdout.read()[-3000:]}", pytrace=False)
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    pytest.fail(f"fusion serve not ready within {START_S} s: {proc.stdout.read()[-3000:]}", pytrace=False)


def serve_env(rsa_public: str, redis_url: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUSION_")}
    env.update({"DO_NOT_TRACK": "true", "FUSION_JWT_SECRET": SECRET, "FUSION_JWT_PUBLIC_KEY": rsa_public, **extra})
    if redis_url:
        env["FUSION_REDIS_URL"] = redis_url
    return env


@pytest.fixture(scope="session")
def live(bundle_dir, redis_server, rsa_keys):
    "A real `fusion serve` (uvicorn) on a free loopback port, caching in our own redis-server; stopped with SIGTERM."
    port = free_port()
    proc = start_server(bundle_dir, serve_env(rsa_keys[1], redis_server.url), port)
    yield f"http://127.0.0.1:{port}"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) in (0, -signal.SIGTERM), proc.stdout.read()[-3000:]  # uvicorn re-raises SIGTERM
