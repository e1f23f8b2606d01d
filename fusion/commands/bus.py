"""The event-bus commands of the `fusion` CLI: `relay`, `trigger`, `worker`, `lineage`.

Documented in nbs/61_events_relay.ipynb (the relay); the trigger, worker and lineage each in their own notebook
(nbs/63_events_trigger, nbs/66_events_worker, nbs/65_events_lineage).

Heavy imports (kafka-python, Kedro, torch) happen inside the commands so that `fusion --help` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from fusion.commands.exits import ExitCode, exit_on

__all__ = ["register", "relay", "trigger", "worker", "lineage"]

DbOption = Annotated[Path | None, typer.Option("--db", help="event store (default: FUSION_EVENTS_DB or data/events.db)")]


def _settings(db: Path | None = None, **overrides):
    from fusion.config import Settings

    return Settings(**({"events_db": db.resolve()} if db else {}), **overrides)


def relay(
    once: Annotated[bool, typer.Option("--once", help="drain the outbox and exit (default: keep relaying)")] = False,
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="outbox rows per produce batch")] = 500,
    poll: Annotated[float, typer.Option(min=0.01, help="seconds to wait when the outbox is empty")] = 0.5,
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the counts as one JSON object")] = False,
) -> None:
    """Publish pending outbox events to Kafka (FUSION_KAFKA_BOOTSTRAP), marking each relayed once acknowledged.

    Exit codes: 0 relayed (or no broker configured: events wait), 5 the broker refused or did not answer (BROKER).
    """
    from fusion.events.relay import run_relay

    settings = _settings(db)
    if not settings.kafka_bootstrap:
        typer.echo("no broker configured (FUSION_KAFKA_BOOTSTRAP is unset): events wait in the outbox", err=True)
        return
    with exit_on("relay stopped"):
        stats = run_relay(settings, once=once, poll_s=poll, batch=batch)
    if as_json:
        typer.echo(json.dumps({"relayed": stats.relayed, "batches": stats.batches, "topics": stats.topics,
                               "seconds": round(stats.seconds, 3)}))
    else:
        typer.echo(f"relayed {stats.relayed} event(s) to {settings.kafka_bootstrap} in {stats.seconds:.2f} s "
                   + " ".join(f"{k}={v}" for k, v in sorted(stats.topics.items())))


def trigger(
    project: Annotated[Path, typer.Option(help="Kedro project whose pipelines run (default: the current one)")] = Path("."),
    group: Annotated[str, typer.Option(help="consumer group")] = "fusion-trigger",
    env: Annotated[str | None, typer.Option(help="Kedro environment (conf/<env>)")] = None,
    params: Annotated[list[str] | None, typer.Option("--params", help="parameter override key=value (repeatable)")] = None,
    max_events: Annotated[int | None, typer.Option(min=1, help="stop after this many DataReady events")] = None,
    idle_timeout: Annotated[float | None, typer.Option(min=0.1, help="stop after this many seconds without one")] = None,
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the counts as one JSON object")] = False,
) -> None:
    """Consume DataReady events from Kafka and run validate → features → train (→ export) under each event's trace id.

    Exit codes: 0 done, 2 bad configuration (no broker, no project, missing pipelines), 5 the broker failed.
    """
    from fusion.config import find_project_root
    from fusion.events.trigger import parse_params, run_trigger

    with exit_on("fusion trigger", {FileNotFoundError: ExitCode.CONFIG}):
        root = find_project_root(project)
        stats = run_trigger(_settings(db, project_root=root), root, group=group, env=env,
                            params=parse_params(params or []), max_events=max_events, idle_timeout_s=idle_timeout)
    counts = {"runs": stats.handled, "duplicates": stats.duplicates, "skipped": stats.skipped,
              "dead_lettered": stats.dead_lettered, "reasons": stats.reasons}
    typer.echo(json.dumps(counts) if as_json else
               f"{stats.handled} run(s), {stats.duplicates} duplicate(s) skipped, {stats.dead_lettered} dead-lettered")


def worker(
    bundle: Annotated[Path, typer.Argument(help="export bundle directory, e.g. exported/fusion-classifier/3")],
    group: Annotated[str, typer.Option(help="consumer group")] = "fusion-worker",
    max_events: Annotated[int | None, typer.Option(min=1, help="stop after this many requests")] = None,
    idle_timeout: Annotated[float | None, typer.Option(min=0.1, help="stop after this many seconds without one")] = None,
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the counts as one JSON object")] = False,
) -> None:
    """Answer InferenceRequested events with the bundle's model; publish InferenceCompleted under the same trace id.

    Exit codes: 0 done, 2 bad configuration, 3 a bundle that does not match its MANIFEST, 5 the broker failed.
    """
    from fusion.events.worker import run_worker

    with exit_on("fusion worker"):
        stats, published = run_worker(bundle, _settings(db), group=group, max_events=max_events,
                                      idle_timeout_s=idle_timeout)
    counts = {"answered": stats.handled, "published": published, "duplicates": stats.duplicates,
              "dead_lettered": stats.dead_lettered, "reasons": stats.reasons}
    typer.echo(json.dumps(counts) if as_json else
               f"{stats.handled} request(s) answered, {published} result event(s) published, "
               f"{stats.duplicates} duplicate(s) skipped, {stats.dead_lettered} dead-lettered")


def _print_chain(chain: dict) -> None:
    "The chain as a rich tree, in flow order."
    from rich.console import Console
    from rich.tree import Tree

    d, v, f, t, m = chain["data"], chain["validation"], chain["features"], chain["training"], chain["model"]
    tree = Tree(f"trace [bold]{chain['trace_id']}[/] (started {chain['started_at']})")
    node = tree.add(f"raw data  hash={d['data_hash']}  rows={d['rows']}  series={d['series']}")
    node = node.add(f"validated  in={v['rows_in']}  clean={v['rows_clean']}  quarantined={v['rows_quarantined']}"
                    + (f"  reasons={v['reasons']}" if v["reasons"] else ""))
    node = node.add(f"features  spec digest={f['feature_spec_digest']}")
    node = node.add(f"MLflow run {t['mlflow_run_id']}  metrics={t['metrics']}")
    node = node.add(f"model {m['name']} version {m['version']}" if m else "no model trained in this trace")
    node.add(f"bundle {chain['bundle']['path']}" if chain["bundle"] else "no exported bundle")
    p = chain["predictions"]
    node.add(f"predictions: {p['instances']} instance(s) in {p['events']} InferenceCompleted event(s)"
             + (f", last {p['last_at']}" if p["last_at"] else ""))
    Console(width=160).print(tree)


def lineage(
    ref: Annotated[str, typer.Argument(help="a trace id (32 hex digits) or model_name:version, e.g. fusion-classifier:3")],
    as_json: Annotated[bool, typer.Option("--json", help="print the chain as one JSON object")] = False,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="drop the projection and replay the whole store first")] = False,
    db: DbOption = None,
) -> None:
    """Where a run or a model version came from: data hash → validation → feature spec → MLflow run → model → bundle, predictions.

    Exit codes: 0 found, 1 unknown trace or model version (FAILED), 2 not a trace id or name:version.
    """
    from fusion.events.lineage import Lineage, lookup, parse_ref
    from fusion.errors import ConfigError
    from fusion.events.store import EventStore

    try:
        parse_ref(ref)
    except ConfigError as err:
        raise typer.BadParameter(str(err), param_hint="REF") from err
    settings = _settings(db)
    path = settings.resolved_events_db()
    if not path.exists():
        typer.echo(f"no event store at {path}: run `kedro run` first", err=True)
        raise typer.Exit(ExitCode.FAILED)
    store, projection = EventStore(path), Lineage(path)
    projection.rebuild(store) if rebuild else projection.update(store)
    chain = lookup(projection, ref, exported=settings.project_root / "exported")
    if chain is None:
        typer.echo(f"no lineage for {ref!r} in {path}", err=True)
        raise typer.Exit(ExitCode.FAILED)
    typer.echo(json.dumps(chain, indent=1)) if as_json else _print_chain(chain)


def register(app: typer.Typer) -> None:
    "Add the event-bus commands to the `fusion` app."
    app.command("relay")(relay)
    app.command("trigger")(trigger)
    app.command("worker")(worker)
    app.command("lineage")(lineage)
