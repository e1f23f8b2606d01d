"""`fusion image base|build|verify`: the serving image of a bundle, with Podman (or Docker with --engine docker).

Each command verifies the bundle first, with the one verifier (`fusion.bundle.verify.load_bundle`): a bundle with an
extra, missing, changed or non-regular file ends with exit 3 (BAD_BUNDLE) before any build context is written or
any engine is needed. A program that is not installed (podman, runc, debootstrap) ends with exit 6 (MISSING_TOOL)
and the way to install it. The logic lives in `fusion.bundle.image`; documented in nbs/46_bundle_standalone.ipynb.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Annotated

import typer

from fusion.bundle.image import BASE_IMAGE
from fusion.commands.exits import ExitCode, exit_on

__all__ = ["CODES", "app", "base", "build", "verify", "register"]

CODES = {(RuntimeError, subprocess.TimeoutExpired): ExitCode.ENVIRONMENT}
app = typer.Typer(help="Build and verify the serving image of a bundle (Podman, or Docker with --engine docker).",
                  no_args_is_help=True)
EngineOption = Annotated[str, typer.Option("--engine", help="podman (default) or docker")]


@app.command("base")
def base(ref: Annotated[str, typer.Option(help="tag of the base image")] = BASE_IMAGE, engine: EngineOption = "podman"):
    "Make a local Debian bookworm base image (python3, venv, CA certificates) with debootstrap; needs root."
    from fusion.bundle.image import make_base

    with exit_on("fusion image base", CODES):
        typer.echo(make_base(ref, engine))


@app.command("build")
def build(
    bundle: Annotated[Path, typer.Argument(help="bundle directory exported/<model>/<version>/")],
    base_image: Annotated[str | None, typer.Option(help="BASE_IMAGE build argument (default: the Dockerfile's "
                                                        "python:3.11-slim)")] = None,
    engine: EngineOption = "podman",
) -> None:
    "Verify BUNDLE, then build its serving image from the verified files (no network during the build); print its ref."
    from fusion.bundle.image import build_image
    from fusion.bundle.verify import load_bundle

    with exit_on("fusion image build", CODES):
        typer.echo(build_image(load_bundle(bundle), base_image, engine=engine))


@app.command("verify")
def verify(
    bundle: Annotated[Path, typer.Argument(help="bundle directory exported/<model>/<version>/")],
    base_image: Annotated[str | None, typer.Option(help="BASE_IMAGE when the image must be built")] = None,
    engine: EngineOption = "podman",
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    "Verify BUNDLE, build its image if needed, run it on a free loopback port, check golden cases, 401 and 413."
    from fusion.bundle.image import build_image, image_exists, image_ref, verify_image
    from fusion.bundle.verify import load_bundle
    from fusion.commands.export import print_report

    with exit_on("image verify: FAIL", CODES):
        verified = load_bundle(bundle)
        ref = image_ref(verified)
        if not image_exists(ref, engine):
            ref = build_image(verified, base_image, ref, engine)
        report = verify_image(verified, ref, engine)
    print_report(report, "image verify", as_json)


def register(parent: typer.Typer) -> None:
    "Add `fusion image base|build|verify`."
    parent.add_typer(app, name="image")
