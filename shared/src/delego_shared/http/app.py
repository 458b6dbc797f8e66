"""The one place a service's HTTP app, broker, store and relay are put together.

`ServiceRuntime` owns the process-wide parts (settings, Mongo, Kafka broker,
publisher, outbox relay, consumer); `create_http_app` builds the FastAPI app
whose lifespan starts and stops them in order, with liveness and readiness
endpoints and problem responses. (FastStream's FastAPI integration is
deprecated; the broker is started in the app's lifespan instead.)
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field

from .. import tracing
from ..events.topics import ALL_TOPICS
from ..logging import configure_logging, get_logger
from ..messaging import EventConsumer, EventPublisher, Outbox, OutboxRelay, create_broker
from ..messaging.inbox import Inbox
from ..messaging.topics_admin import consumer_lag, ensure_topics
from ..metrics import SERVICE_READY, set_consumer_lag
from ..mongo import IndexSpec, Mongo
from ..replica import Replica, default_instance
from ..settings import Settings, UnsafeSettings
from ..timing import cancel_and_wait, survive
from ..types import utcnow
from .idempotency import IdempotencyRecords
from .metrics import install_metrics
from .openapi import install_problem_openapi
from .problems import install_problem_handlers

log = get_logger(__name__)
DOCS_ASSETS_URL = "/docs-assets"
S = TypeVar("S", bound=Settings)
PURGE_INTERVAL_S = 3600.0


class ServiceRuntime:
    """Process-wide infrastructure of one service."""

    def __init__(
        self,
        settings: Settings,
        *,
        outbox_collections: Sequence[str] = (),
        indexes: Sequence[IndexSpec] = (),
        use_inbox: bool = True,
    ) -> None:
        settings.check_safe_to_run()  # UnsafeSettings: nothing starts with a forgeable secret
        self.settings = settings
        self.mongo = Mongo(settings.mongodb_url, settings.database)
        self.broker = create_broker(settings)
        self.publisher = EventPublisher(self.broker, settings)
        self.outbox_collections = list(outbox_collections)
        self.replica = Replica(settings.instance_id) if settings.instance_id else Replica.unnamed()
        """This run of this replica: the owner of what it leases (outbox, sends, commands)."""
        self.relay = OutboxRelay(
            self.mongo,
            self.publisher,
            self.outbox_collections,
            sweep_interval_s=settings.outbox_sweep_interval_s,
            lease_s=settings.outbox_lease_s,
            replica=self.replica,
        )
        self.indexes = [
            *indexes,
            *Outbox.indexes(self.outbox_collections),
            *IdempotencyRecords.indexes(),
        ]
        self.consumer = EventConsumer(
            self.broker,
            settings,
            inbox=Inbox(self.mongo, settings.service_name) if use_inbox else None,
        )
        self.background: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.started = False
        self.add_background(self._purge_idempotency_keys)

    async def _purge_idempotency_keys(self) -> None:
        """Forget Idempotency-Keys past their retention (hourly; by `created_at` index)."""
        records = IdempotencyRecords(self.mongo)
        retention = timedelta(seconds=self.settings.idempotency_retention_s)
        while True:
            await survive(lambda: records.purge(utcnow() - retention), "idempotency.purge_failed")
            await asyncio.sleep(PURGE_INTERVAL_S)

    def add_background(self, loop: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """A coroutine run for the life of the service (schedulers, expiry sweeps)."""
        self.background.append(loop)

    async def start(self) -> None:
        if self.settings.environment == "production" and not self.settings.kafka_access.sasl:
            # anyone who reaches the broker could write any topic: ACLs need SASL
            log.warning("kafka.plaintext_in_production", kafka=self.settings.kafka_bootstrap)
        await self.mongo.ensure_indexes(self.indexes)
        await ensure_topics(
            self.settings.kafka_access, ALL_TOPICS, prefix=self.settings.topic_prefix
        )
        await self.broker.start()
        if self.outbox_collections:
            self.relay.start()
        for loop in self.background:
            self._tasks.append(asyncio.create_task(loop()))
        if self.consumer.topics:
            self._tasks.append(asyncio.create_task(self._lag_loop(), name="consumer-lag"))
        self.started = True
        log.info(
            "service.started", database=self.settings.database, kafka=self.settings.kafka_bootstrap
        )

    async def stop(self) -> None:
        for t in self._tasks:
            await cancel_and_wait(t)
        self._tasks.clear()
        await self.relay.stop()
        await self.consumer.commits.flush()
        await self.broker.stop()
        await self.mongo.close()
        self.started = False

    async def read_consumer_lag(self) -> dict[tuple[str, int], int]:
        """The group's lag per (logical topic, partition), cached in the lag gauge."""
        lag = await consumer_lag(
            self.settings.kafka_access, self.consumer.group, self.consumer.topics
        )
        by_partition = {
            (self.settings.logical_topic(tp.topic), tp.partition): n for tp, n in lag.items()
        }
        set_consumer_lag(self.consumer.group, by_partition)
        return by_partition

    async def _lag_loop(self) -> None:
        """Consumer lag on a slow timer (two broker requests), never per scrape."""
        while True:
            await survive(self.read_consumer_lag, "metrics.lag_read_failed")
            await asyncio.sleep(self.settings.metrics_lag_interval_s)

    async def broker_ready(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self.broker.ping(timeout=2.0), timeout=3.0))
        except Exception:
            return False

    async def readiness(self) -> dict[str, bool]:
        mongo_ok, kafka_ok = await asyncio.gather(self.mongo.ping(), self.broker_ready())
        return {"database": mongo_ok, "broker": kafka_ok}


class Liveness(BaseModel):
    status: Literal["ok"]
    service: str


class Readiness(BaseModel):
    status: Literal["ready", "degraded", "not_ready"] = Field(
        description="degraded: reachable, but a consumer waits for the store or broker"
    )
    checks: dict[str, bool] = Field(description="database, broker: reachable or not")
    consumer: dict[str, Any] = Field(
        description="records waiting for the store or broker to come back, per partition"
    )


def create_http_app(
    runtime: ServiceRuntime,
    *,
    title: str,
    routers: Sequence[APIRouter] = (),
    description: str = "",
    version: str = "1.0.0",
) -> FastAPI:
    settings = runtime.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level, settings.log_format, settings.service_name)
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()
            tracing.flush()  # the last spans, before the process ends

    # Swagger UI and ReDoc from the assets `fastapi-offline` ships, served by the service
    # itself: `/docs` and `/redoc` work without internet (FastAPI's default loads a CDN).
    app = FastAPIOffline(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        static_url=DOCS_ASSETS_URL,
    )
    app.state.settings = settings
    app.state.runtime = runtime
    if tracing.configure(settings.service_name):  # OTEL_* ask for traces
        tracing.instrument_app(app)
    install_problem_handlers(app)
    install_problem_openapi(app)
    install_metrics(app)

    @app.get("/health/live", tags=["health"], summary="The process answers")
    async def live() -> Liveness:
        return Liveness(status="ok", service=settings.service_name)

    @app.get(
        "/health/ready",
        tags=["health"],
        summary="Broker and database reachable",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "not ready"}},
    )
    async def ready() -> JSONResponse:
        checks = await runtime.readiness()
        ok = all(checks.values()) and runtime.started
        SERVICE_READY.set(1 if ok else 0)
        consuming = runtime.consumer.health()  # records waiting for the store or broker
        status = "not_ready" if not ok else "degraded" if consuming["waiting"] else "ready"
        body = Readiness(status=status, checks=checks, consumer=consuming)
        return JSONResponse(body.model_dump(), status_code=200 if ok else 503)

    for r in routers:
        app.include_router(r)
    return app


def serve(create_app: Callable[[S], FastAPI], settings: S) -> None:
    """Run a service's app with uvicorn on `settings.http_host:http_port` (its `main()`).

    Logs go through structlog, configured in the app's lifespan. Unsafe
    production settings stop it with one line on stderr and exit code 2.
    """
    import uvicorn

    if not settings.instance_id:  # a served process: its host and port name it
        settings.instance_id = default_instance(settings.http_port)
    try:
        app = create_app(settings)
    except UnsafeSettings as exc:
        print(f"delego-{settings.service_name}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    uvicorn.run(app, host=settings.http_host, port=settings.http_port, log_config=None)
