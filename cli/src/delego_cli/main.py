"""`delego` — the operator CLI.

\b
    delego topics create|list         topics with their partitions (and message counts)
    delego tail TOPIC                 events with their CloudEvents headers
    delego dlq list|replay TOPIC      parked records; put them back for the group that failed
    delego seed                       the demo catalog, through the catalog's HTTP API
    delego token ROLE SUBJECT         a development JWT
    delego contracts generate|check   the AsyncAPI catalogue of the platform
    delego status [--watch]           health, consumer lag, outbox backlog, DLQs, last minute
    delego privacy erase|status SUBJ  a person's erasure across the services, its receipts
    delego privacy export SUBJ        everything the services hold about a person, as JSON
    delego privacy audit SUBJ         every read of a person's private details (who, when, why)
    delego acls apply|show            each service's Kafka ACLs (SASL broker, as `admin`)
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from aiokafka.errors import KafkaError
from delego_shared import contracts
from delego_shared.events.base import dlq_name
from delego_shared.http.auth import Role, mint_token
from delego_shared.messaging.acls import SERVICES, platform_acls
from delego_shared.settings import Settings

from . import kafka_ops
from . import status as platform_status
from .privacy import privacy_app

app = typer.Typer(
    help=__doc__, no_args_is_help=True, rich_markup_mode=None, pretty_exceptions_enable=False
)
topics_app = typer.Typer(help="Topics of the platform.", no_args_is_help=True)
dlq_app = typer.Typer(help="Dead-letter topics.", no_args_is_help=True)
contracts_app = typer.Typer(help="The published AsyncAPI catalogue.", no_args_is_help=True)
acls_app = typer.Typer(help="Kafka ACLs of the service users.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")
app.add_typer(dlq_app, name="dlq")
app.add_typer(contracts_app, name="contracts")
app.add_typer(privacy_app, name="privacy")
app.add_typer(acls_app, name="acls")

REPO = Path(__file__).resolve().parents[3]
ASYNCAPI = REPO / "contracts" / "asyncapi.json"
PUBLISHED = REPO / "contracts" / "published" / "asyncapi-v1.json"
T = TypeVar("T")

Bootstrap = Annotated[
    str,
    typer.Option(
        "--bootstrap", "-b", envvar="DELEGO_KAFKA_BOOTSTRAP", help="Kafka bootstrap servers"
    ),
]


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except kafka_ops.BrokerUnreachable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except KafkaError as exc:
        typer.echo(f"error: Kafka: {exc}", err=True)
        raise typer.Exit(2) from None


@topics_app.command("create")
def topics_create(
    bootstrap: Bootstrap = "127.0.0.1:9092",
    prefix: Annotated[str, typer.Option(help="topic name prefix")] = "",
) -> None:
    """Create every platform topic and its .dlq with explicit partition counts (idempotent)."""
    created = _run(kafka_ops.create_topics(kafka_ops.operator_access(bootstrap), prefix))
    typer.echo(f"created {len(created)} topic(s)" + (": " + ", ".join(created) if created else ""))


@topics_app.command("list")
def topics_list(bootstrap: Bootstrap = "127.0.0.1:9092") -> None:
    """Topics with partition and message counts."""
    infos = _run(kafka_ops.list_topics(kafka_ops.operator_access(bootstrap)))
    width = max((len(i.name) for i in infos), default=10)
    typer.echo(f"{'topic':<{width}}  partitions  messages")
    for i in infos:
        count = str(i.messages) if i.messages >= 0 else "?"
        typer.echo(f"{i.name:<{width}}  {i.partitions:>10}  {count:>8}")


def _format(rec: kafka_ops.Record, raw: bool) -> str:
    headers = rec.header_map()
    at = datetime.fromtimestamp(rec.timestamp_ms / 1000, UTC).isoformat().replace("+00:00", "Z")
    try:
        body: Any = json.loads(rec.value)
    except ValueError:
        body = rec.value.decode(errors="replace")
    if raw:
        return json.dumps(
            {
                "topic": rec.topic,
                "partition": rec.partition,
                "offset": rec.offset,
                "key": rec.key.decode(errors="replace") if rec.key else None,
                "headers": headers,
                "body": body,
            },
            ensure_ascii=False,
        )
    key = rec.key.decode(errors="replace") if rec.key else "-"
    lines = [f"── {rec.topic} p{rec.partition}@{rec.offset}  {at}  key={key}"]
    lines += [f"   {k}: {v}" for k, v in sorted(headers.items())]
    pretty = json.dumps(body, indent=2, ensure_ascii=False) if not isinstance(body, str) else body
    lines += ["   " + line for line in pretty.splitlines()]
    return "\n".join(lines)


@app.command()
def tail(
    topic: str,
    bootstrap: Bootstrap = "127.0.0.1:9092",
    from_beginning: Annotated[bool, typer.Option("--from-beginning", "-f")] = False,
    follow: Annotated[bool, typer.Option("--follow/--no-follow")] = True,
    limit: Annotated[int | None, typer.Option("--max", "-n")] = None,
    raw: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """Print events of TOPIC with their CloudEvents headers (Ctrl-C to stop)."""

    async def go() -> None:
        async for rec in kafka_ops.read(
            kafka_ops.operator_access(bootstrap),
            topic,
            from_beginning=from_beginning,
            follow=follow,
            limit=limit,
        ):
            typer.echo(_format(rec, raw))

    try:
        _run(go())
    except KeyboardInterrupt:
        pass


Group = Annotated[
    str | None,
    typer.Option("--group", "-g", help="only records parked by this consumer group"),
]


@dlq_app.command("list")
def dlq_list(topic: str, bootstrap: Bootstrap = "127.0.0.1:9092", group: Group = None) -> None:
    """Parked records of TOPIC (or of TOPIC.dlq): the group that failed, why, and whether
    they were replayed."""
    dlq = topic if topic.endswith(".dlq") else dlq_name(topic)
    parked = [
        p
        for p in _run(kafka_ops.parked_records(kafka_ops.operator_access(bootstrap), dlq))
        if group is None or p.group == group
    ]
    for p in parked:
        rec, h = p.record, p.record.header_map()
        state = "replayed" if p.replayed else "parked"
        if not p.replayable:
            state += f", body not kept ({h.get('dlq_body_size')} bytes)"
        typer.echo(
            f"@{rec.offset} [{state}] group={p.group or '*'} "
            f"key={rec.key.decode(errors='replace')[:80] if rec.key else '-'} "
            f"type={h.get('ce_type', '?')} from={h.get('dlq_original_topic')}"
            f"/{h.get('dlq_original_partition')}@{h.get('dlq_original_offset')} "
            f"attempts={h.get('dlq_attempts')} sha256={h.get('dlq_body_sha256', '?')[:16]}\n"
            f"    {h.get('dlq_error_type')}: {h.get('dlq_error_message')}"
        )
    waiting = sum(1 for p in parked if not p.replayed)
    typer.echo(f"{len(parked)} parked record(s) on {dlq}, {waiting} not replayed")


@dlq_app.command("replay")
def dlq_replay(
    topic: str,
    bootstrap: Bootstrap = "127.0.0.1:9092",
    group: Group = None,
    offset: Annotated[
        list[int] | None, typer.Option("--offset", help="only these DLQ offsets")
    ] = None,
) -> None:
    """Re-publish parked records to the topic they came from (original key, body, headers),
    each for the consumer group that failed on it only, and each once."""
    dlq = topic if topic.endswith(".dlq") else dlq_name(topic)
    result = _run(
        kafka_ops.replay_dlq(
            kafka_ops.operator_access(bootstrap),
            dlq,
            group=group,
            offsets=set(offset) if offset else None,
        )
    )
    typer.echo(
        f"replayed {result.replayed} record(s) from {dlq}"
        f" ({result.already_replayed} replayed before)"
    )
    for off in result.not_replayable:
        typer.echo(f"  @{off}: body too large to keep, not replayable (see dlq list)", err=True)


@app.command()
def token(
    role: Role, subject: str, hours: Annotated[int, typer.Option(help="validity in hours")] = 12
) -> None:
    """Mint a development JWT for ROLE (client, provider, operator) and SUBJECT (user id).

    At most `DELEGO_JWT_MAX_TTL_S` (default 24 h) long: the services refuse longer ones.
    """
    try:
        typer.echo(mint_token(Settings(), subject, role, ttl=timedelta(hours=hours)))
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def seed(
    catalog_url: Annotated[
        str, typer.Option(envvar="DELEGO_CATALOG_URL")
    ] = "http://127.0.0.1:8001",
) -> None:
    """Register the demo providers and publish their offers through the catalog's HTTP API."""
    from .demo.seed import seed_catalog

    try:
        result = asyncio.run(seed_catalog(catalog_url, Settings()))
    except OSError as exc:
        typer.echo(f"error: cannot reach the catalog at {catalog_url}: {exc}", err=True)
        raise typer.Exit(2) from None
    for p in result:
        typer.echo(f"{p}")


@contracts_app.command("generate")
def contracts_generate(out: Path = ASYNCAPI) -> None:
    """Write the AsyncAPI document and, in schemas/ beside it, one JSON Schema per event
    type, all generated from the event models."""
    out.parent.mkdir(parents=True, exist_ok=True)
    written = contracts.write_all(out)
    typer.echo(f"wrote {out} and {len(written) - 1} schemas in {contracts.schemas_dir(out)}")


@contracts_app.command("check")
def contracts_check() -> None:
    """Fail when the committed documents differ from the code or break the published one."""
    current = contracts.asyncapi_document()
    ok = True
    for problem in contracts.out_of_date(ASYNCAPI):
        typer.echo(f"{problem}: run `delego contracts generate`", err=True)
        ok = False
    if PUBLISHED.exists():
        for problem in contracts.breaking_changes(json.loads(PUBLISHED.read_text()), current):
            typer.echo(f"breaking change: {problem}", err=True)
            ok = False
    if not ok:
        raise typer.Exit(1)
    typer.echo("contracts up to date and backward compatible")


@app.command()
def status(
    bootstrap: Bootstrap = "127.0.0.1:9092",
    service: Annotated[
        list[str] | None,
        typer.Option(
            "--service",
            "-s",
            help="NAME=URL of a service (repeatable); default http://127.0.0.1:8001.. "
            "as `make run` starts them (DELEGO_BASE_PORT)",
        ),
    ] = None,
    prefix: Annotated[str, typer.Option(help="topic name prefix")] = "",
    watch: Annotated[bool, typer.Option("--watch", "-w", help="refresh until Ctrl-C")] = False,
    interval: Annotated[float, typer.Option(help="seconds between refreshes")] = 5.0,
) -> None:
    """One screen: each service's health, consumer lag per group, outbox backlog per
    service, DLQ records waiting and each topic's records in the last minute."""
    from rich.console import Console
    from rich.live import Live

    from .platform import PlatformConfig

    cfg = PlatformConfig.from_env()
    urls = {name: cfg.url(name) for name in platform_status.SERVICES}
    for item in service or []:
        name, sep, url = item.partition("=")
        if not sep or not url:
            raise typer.BadParameter(f"expected NAME=URL, got {item!r}", param_hint="--service")
        urls[name] = url.rstrip("/")

    def snapshot() -> Any:
        return platform_status.render(
            asyncio.run(
                platform_status.collect(urls, kafka_ops.operator_access(bootstrap), prefix=prefix)
            )
        )

    console = Console()
    if not watch:
        console.print(snapshot())
        return
    with Live(snapshot(), console=console, refresh_per_second=1) as live:
        try:
            while True:
                time.sleep(interval)
                live.update(snapshot())
        except KeyboardInterrupt:
            pass


@acls_app.command("apply")
def acls_apply(bootstrap: Bootstrap = "127.0.0.1:9092", prefix: str = "") -> None:
    """Let each service write only its own topics (and the DLQs of those it consumes).

    Run as the broker's super user (`DELEGO_KAFKA_SASL_USERNAME`, default `admin`, and
    `DELEGO_KAFKA_SASL_PASSWORD`); idempotent.
    """
    from . import acls

    try:
        n = acls.apply_acls(kafka_ops.operator_access(bootstrap), platform_acls(prefix=prefix))
    except kafka_ops.BrokerUnreachable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{n} ACLs in place for {', '.join(SERVICES)}")


@acls_app.command("show")
def acls_show(prefix: str = "") -> None:
    """The ACLs `apply` creates, one per line: principal, operation, resource, pattern."""
    for a in platform_acls(prefix=prefix):
        typer.echo(f"{a.principal}\t{a.operation}\t{a.resource}:{a.name}\t{a.pattern}")
