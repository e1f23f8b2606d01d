"""`fusion serve`, `fusion token` and `fusion example-body`: serve a bundle with uvicorn, mint a development token,
print a small request body to try it with.

`register(app)` adds them to the `fusion` command (and the export part's commands, when that module exists).
Heavy imports stay inside the commands so `fusion --help` is quick. Documented in nbs/53_serving_app.ipynb.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fusion.commands.exits import ExitCode, exit_on

__all__ = ["serve", "token", "example_body", "register"]


def serve(
    bundle: Annotated[Path, typer.Argument(help="bundle directory exported/<model>/<version>/")],
    host: Annotated[str, typer.Option(help="interface to listen on (0.0.0.0 inside a container)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="worker processes (each loads and verifies the bundle)")] = 1,
    log_level: Annotated[str, typer.Option(help="debug, info (one JSON line per request), warning, error")] = "info",
    torch_threads: Annotated[int, typer.Option(help="torch threads per worker; 1 is fastest for small requests")] = 1,
    compile: Annotated[bool, typer.Option("--compile/--no-compile", help="torch.compile the feature path at start "
                                          "(≈ 3x faster features; needs a C++ compiler, else eager)")] = True,
) -> None:
    """Serve the bundle's model over HTTP: POST /v1/predict, GET /v1/model, /healthz, /readyz, /metrics, /docs.

    Every file is checked against MANIFEST.json first; a bundle that does not match is refused (exit 3, BAD_BUNDLE);
    a missing or unusable key ends with exit 2 (CONFIG). Settings
    come from FUSION_* variables: FUSION_JWT_SECRET or FUSION_JWT_PUBLIC_KEY (required), FUSION_REDIS_URL (optional
    cache), FUSION_MAX_BODY_BYTES, FUSION_MAX_INSTANCES. SIGTERM drains in-flight requests, then exits.
    """
    import functools

    import uvicorn

    from fusion.bundle.verify import load_bundle
    from fusion.config import Settings
    from fusion.serving.auth import TokenVerifier
    from fusion.serving.observe import configure_logging

    with exit_on("fusion serve: refusing to start"):
        found = load_bundle(bundle)
    settings = Settings()
    with exit_on("fusion serve"):
        TokenVerifier.from_settings(settings)
    configure_logging(log_level)
    typer.echo(f"fusion serve: {found.name} {found.version} (bundle {found.digest[:12]}) on http://{host}:{port}",
               err=True)
    # one process serves the bundle verified above (the very bytes checked); spawned workers verify it themselves
    app_factory = functools.partial(_worker_app, found if workers == 1 else found.root, settings, log_level,
                                    torch_threads, compile)
    config = uvicorn.Config(app_factory, factory=True, host=host, port=port, workers=workers, log_config=None,
                            log_level=log_level, access_log=False, timeout_graceful_shutdown=10, server_header=False,
                            timeout_worker_healthcheck=120)  # a worker verifies the bundle and warms up first
    server = uvicorn.Server(config)
    if workers == 1:
        server.run()
    else:  # uvicorn.run() wants an import string for workers; the picklable factory does the same job
        from uvicorn.supervisors import Multiprocess

        Multiprocess(config, sockets=[config.bind_socket()]).run()


def _worker_app(bundle, settings, log_level: str, torch_threads: int, compile: bool):
    """The app of one worker process: logging, torch threads, `create_app`. `bundle` is the `Bundle` verified in this
    process, or a path (picklable) for uvicorn's spawned workers, which verify it themselves."""
    import torch

    from fusion.serving.app import create_app
    from fusion.serving.observe import configure_logging

    configure_logging(log_level)
    torch.set_num_threads(torch_threads)
    return create_app(bundle, settings, compile=compile, freeze_gc=True)  # this process only serves


def token(
    sub: Annotated[str, typer.Option(help="the subject (who the token is for)")],
    ttl: Annotated[int, typer.Option(min=1, help="seconds until it expires")] = 3600,
) -> None:
    "Print a development HS256 token signed with FUSION_JWT_SECRET, with the configured aud and iss (the token alone)."
    from fusion.config import Settings
    from fusion.serving.auth import mint_token, read_key

    settings = Settings()
    secret = read_key(settings.jwt_secret)
    if not secret:
        typer.echo("fusion token: FUSION_JWT_SECRET is not set (tokens for RS256 come from your identity provider)",
                   err=True)
        raise typer.Exit(ExitCode.CONFIG)
    typer.echo(mint_token(secret, sub, settings.jwt_audience, settings.jwt_issuer, ttl))


def example_body(
    bundle: Annotated[Path, typer.Argument(help="bundle directory exported/<model>/<version>/")],
    n: Annotated[int, typer.Option("-n", "--instances", min=1, help="how many of the golden instances")] = 2,
) -> None:
    """Print a POST /v1/predict body of the first N golden inputs of the bundle, one line of JSON (pipe it to curl).

    The whole golden set (28 series, about 3 MB) is over the server's 1 MiB body limit; a few instances are not.
    Exit 3 when the bundle has no readable golden inputs, 2 when N instances would exceed FUSION_MAX_BODY_BYTES.
    """
    import json

    from fusion.bundle.layout import GOLDEN_INPUTS
    from fusion.config import Settings
    from fusion.errors import BundleIntegrityError, ConfigError

    with exit_on("fusion example-body"):
        path = bundle / GOLDEN_INPUTS
        try:
            instances = json.loads(path.read_bytes())["instances"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise BundleIntegrityError(f"cannot read the golden inputs {path}: {err!r}") from err
        body = json.dumps({"instances": instances[:n]}, separators=(",", ":"))
        limit = Settings().max_body_bytes
        if len(body) > limit:
            raise ConfigError(f"-n {n} makes a body of {len(body)} bytes, over FUSION_MAX_BODY_BYTES={limit}: "
                              "ask for fewer instances")
    typer.echo(body)


def register(app: typer.Typer) -> None:
    "Add `serve`, `token` and `example-body` to the `fusion` command."
    app.command("serve")(serve)
    app.command("token")(token)
    app.command("example-body")(example_body)
