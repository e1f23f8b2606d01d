"""`fusion export` and `fusion verify`: write a serving bundle from MLflow, and prove that it stands alone.

The work is done in `fusion.bundle` (`fusion.bundle.mlflow.export_from_mlflow` through the one writer,
`fusion.bundle.standalone.verify_bundle` after the one verifier); this module parses arguments, prints, and maps
errors to the exit codes of `fusion.commands.exits`. Heavy imports stay inside the commands so that `fusion --help`
is quick. Documented in nbs/46_bundle_standalone.ipynb.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fusion.commands.exits import ExitCode, exit_on

if TYPE_CHECKING:
    from fusion.bundle.standalone import VerifyReport

__all__ = ["print_report", "export", "verify", "register"]


def print_report(report: VerifyReport, prefix: str, as_json: bool) -> None:
    "Print `report`; the command then exits with `ExitCode.FAILED` unless it passed."
    if as_json:
        typer.echo(json.dumps({**report.__dict__, "passed": report.passed}))
    elif report.passed:
        typer.echo(f"{prefix}: PASS ({report.cases} golden cases)")
    else:
        typer.echo(f"{prefix}: FAIL ({len(report.problems)} problem(s), {report.cases} golden cases)")
        for p in report.problems:
            typer.echo(f"  - {p}")
    if not report.passed:
        raise typer.Exit(ExitCode.FAILED)


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
    Exit 2 (CONFIG): no such version, or the bundle exists already.
    """
    from fusion.bundle.verify import read_bundle
    from fusion.bundle.mlflow import export_from_mlflow

    if run_id and model_version:
        raise typer.BadParameter("give --run-id or --model-version, not both", param_hint="--run-id")
    with exit_on("fusion export"):
        bundle = read_bundle(export_from_mlflow(run_id, model_version, out, overwrite=overwrite))
    if as_json:
        typer.echo(json.dumps({"bundle": str(bundle.root), **bundle.manifest["model"],
                               "files": len(bundle.manifest["files"]), "mlflow_run_id": bundle.manifest["mlflow_run_id"]}))
    else:
        typer.echo(str(bundle.root))


def verify(
    bundle: Annotated[Path, typer.Argument(help="bundle directory exported/<model>/<version>/")],
    keep: Annotated[bool, typer.Option("--keep", help="keep the temporary venv and server log (path printed)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Prove the bundle stands alone: fresh venv with only its wheel and lock, `fusion serve` on a free loopback port,
    golden inputs → golden outputs (same labels, probabilities within 1e-6), no token → 401, oversize body → 413.

    Exit 0: PASS. 1 (FAILED): the server answered differently. 3 (BAD_BUNDLE): the bundle does not verify (extra,
    missing, changed or non-regular files; checked before anything is installed). 4 (ENVIRONMENT): install or start
    failed.
    """
    from rich.console import Console

    from fusion.bundle.standalone import verify_bundle

    console = Console(stderr=True)
    with exit_on("verify: FAIL", {(RuntimeError, subprocess.TimeoutExpired): ExitCode.ENVIRONMENT}):
        with console.status("verify") as status:
            report = verify_bundle(bundle, keep, step=lambda s: status.update(f"verify: {s}"))
    print_report(report, "verify", as_json)


def register(app: typer.Typer) -> None:
    "Add `export` and `verify` to the `fusion` command."
    app.command("export")(export)
    app.command("verify")(verify)
