"""Assembly of a stopgate server process: database, gRPC services, health, reflection, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import asyncpg
import grpc
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import REGISTRY
from prometheus_client.registry import Collector
from stopgate.v1 import (
    message_compliance_pb2,
    message_compliance_pb2_grpc,
    quarantine_check_pb2,
    quarantine_check_pb2_grpc,
    reporting_pb2,
    reporting_pb2_grpc,
    stop_ingest_pb2,
    stop_ingest_pb2_grpc,
)

from stopgate_server.address_guard import AddressGuard
from stopgate_server.api.message_compliance import MessageComplianceServicer
from stopgate_server.api.quarantine_check import QuarantineCheckServicer
from stopgate_server.api.reporting import ReportingServicer
from stopgate_server.api.stop_ingest import StopIngestServicer
from stopgate_server.auth import INSECURE_WARNING, Authoriser, TokenRegistry, offer_development_token
from stopgate_server.config import Settings, parse_host_port
from stopgate_server.domain import policies
from stopgate_server.health import DatabaseHealth
from stopgate_server.interceptor import CallInterceptor, Deadlines
from stopgate_server.limits import Limits
from stopgate_server.obs import metrics
from stopgate_server.obs.tracing import Tracing
from stopgate_server.shutdown import InFlightCalls, StopSignals, StreamsEnding
from stopgate_server.store.blocklist import BlocklistIndex
from stopgate_server.store.change_feed import ChangeFeedStore
from stopgate_server.store.database import ensure_sends_partitions, open_pool, prepare_schema
from stopgate_server.store.embedded import EmbeddedPostgres
from stopgate_server.store.erasure import ErasureStore, purge_raw_texts
from stopgate_server.store.ingest import IngestStore
from stopgate_server.store.keywords import KeywordStore
from stopgate_server.store.quarantine import QuarantineStore
from stopgate_server.store.reporting import ReportingStore
from stopgate_server.store.sends import SendsStore, purge_request_ids
from stopgate_server.store.shortcode_bindings import BindingStore
from stopgate_server.usecases.change_feed import ChangeFeed
from stopgate_server.usecases.checks import Checks
from stopgate_server.usecases.erasure import Erasures
from stopgate_server.usecases.ingest import Ingest
from stopgate_server.usecases.keywords import CustomKeywords
from stopgate_server.usecases.numbers import Numbers
from stopgate_server.usecases.reports import Reports
from stopgate_server.usecases.shortcode_bindings import ShortcodeBindings

log = logging.getLogger(__name__)

MAINTENANCE_INTERVAL_S = 3600.0
MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # a 10,000-number batch is well under 1 MiB; this bounds abuse
CUT_CALLS_LOGGED = 100  # the longest-running ones, when a shutdown cuts more
# gRPC's own grace runs this much longer than ours, so that the calls are still running (and tracked) when
# ours runs out and they are logged; then they are cancelled.
GRPC_GRACE_MARGIN_S = 1.0

# The four services and how to register a servicer of each.
SERVICES: tuple[tuple[ServiceDescriptor, Callable[[Any, grpc.aio.Server], None]], ...] = (
    (
        quarantine_check_pb2.DESCRIPTOR.services_by_name["QuarantineCheck"],
        quarantine_check_pb2_grpc.add_QuarantineCheckServicer_to_server,
    ),
    (
        stop_ingest_pb2.DESCRIPTOR.services_by_name["StopIngest"],
        stop_ingest_pb2_grpc.add_StopIngestServicer_to_server,
    ),
    (
        message_compliance_pb2.DESCRIPTOR.services_by_name["MessageCompliance"],
        message_compliance_pb2_grpc.add_MessageComplianceServicer_to_server,
    ),
    (
        reporting_pb2.DESCRIPTOR.services_by_name["Reporting"],
        reporting_pb2_grpc.add_ReportingServicer_to_server,
    ),
)
SERVICE_NAMES = tuple(descriptor.full_name for descriptor, _ in SERVICES)


class Application:
    """One server process. `start` brings everything up in order; `stop` takes it down in reverse."""

    def __init__(self, settings: Settings, tracing: Tracing | None = None) -> None:
        self.settings = settings
        self.tracing = tracing  # None: as the OTEL_* variables say (obs/tracing.py), read at start
        self.embedded: EmbeddedPostgres | None = None
        self.pool: asyncpg.Pool | None = None
        self.server: grpc.aio.Server | None = None
        self.metrics_server: metrics.MetricsServer | None = None
        self.collectors: list[Collector] = []
        self.health: DatabaseHealth | None = None
        self.index: BlocklistIndex | None = None
        self.custom_keywords: CustomKeywords | None = None
        self.shortcode_bindings: ShortcodeBindings | None = None
        self.change_feed: ChangeFeed | None = None
        self.tokens: TokenRegistry | None = None
        self.grpc_port = 0
        self.in_flight = InFlightCalls()
        self.streams_ending = StreamsEnding()
        self.serving = False  # the gRPC server started: a stop drains it
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def metrics_port(self) -> int:
        return self.metrics_server.port if self.metrics_server else 0

    async def start(self) -> None:
        policy_table = policies.load()  # a bad policy file stops the start before anything else runs
        self.tracing = self.tracing or Tracing.from_environment()  # so does a bad OTEL_* value
        dsn = self.settings.database_url
        if dsn is None:
            self.embedded = EmbeddedPostgres(self.settings.data_dir / "pg")
            dsn = await asyncio.to_thread(self.embedded.start)
        self.pool = await open_pool(dsn, self.settings)
        await prepare_schema(self.pool)
        if self.settings.insecure_no_auth:
            log.warning(INSECURE_WARNING)
        else:
            if self.embedded is not None:
                await offer_development_token(self.pool, self.settings.data_dir)
            self.tokens = TokenRegistry(self.pool)
            await self.tokens.start()

        self.server = grpc.aio.server(
            interceptors=[
                # Off by default: then calls go through no tracing code at all.
                *(self.tracing.server_interceptors() if self.tracing else ()),
                CallInterceptor(
                    Authoriser(self.tokens),
                    Deadlines(self.settings.default_deadline_s, self.settings.max_deadline_s),
                    # Counted there, for stopgate.v1 calls only: grpc's maximum_concurrent_rpcs would count
                    # health and reflection streams too, and idle ones could take every slot.
                    Limits.of(self.settings),
                    self.in_flight,
                    self.streams_ending,
                ),
            ],
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_concurrent_streams", self.settings.http2_max_concurrent_streams),
                # Clients may ping every 10 s (the client library pings every 30 s) to keep long ingest
                # streams checked; gRPC's default policy would answer such pings with GOAWAY.
                ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
                # Ping idle clients every minute, so connections of vanished clients are closed.
                ("grpc.keepalive_time_ms", 60_000),
                ("grpc.keepalive_timeout_ms", 20_000),
                # Only the workers of one supervisor share a port (address_guard.py); a single server does
                # not let another process bind its port beside it and take part of its connections.
                ("grpc.so_reuseport", 0 if self.settings.worker_index is None else 1),
            ],
        )
        self.index = BlocklistIndex(dsn, self.pool, self.settings.index_reconcile_interval_s)
        self.index.on_round_trip = metrics.PROPAGATION_SECONDS.observe
        self.index.on_restart = metrics.INDEX_RESTARTS.inc
        self.index.on_reloaded = lambda kind, lists: metrics.INDEX_RELOADED_LISTS.labels(kind).inc(lists)
        await self.index.start()
        quarantine = QuarantineStore(self.pool, self.index)
        self.custom_keywords = CustomKeywords(KeywordStore(self.pool))
        await self.custom_keywords.refresh()
        bindings = self.shortcode_bindings = ShortcodeBindings(BindingStore(self.pool))
        await bindings.refresh()
        feed = self.change_feed = ChangeFeed(ChangeFeedStore(self.pool), self.streams_ending)
        servicers = (
            QuarantineCheckServicer(
                Checks(quarantine, SendsStore(self.pool), bindings),
                Numbers(quarantine, bindings),
                bindings,
                Erasures(ErasureStore(self.pool)),
            ),
            StopIngestServicer(
                Ingest(IngestStore(self.pool, self.index), self.custom_keywords, bindings),
                self.custom_keywords,
                self.streams_ending,
            ),
            MessageComplianceServicer(policy_table, self.settings.max_message_parts),
            ReportingServicer(Reports(ReportingStore(self.pool)), feed),
        )
        for (_, add_to_server), servicer in zip(SERVICES, servicers, strict=True):
            add_to_server(servicer, self.server)
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, self.server)
        reflection.enable_server_reflection(
            (
                *SERVICE_NAMES,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            self.server,
        )
        metrics.initialise(descriptor for descriptor, _ in SERVICES)
        self.health = DatabaseHealth(
            health_servicer, SERVICE_NAMES, self.pool, self.settings.health_interval_s
        )
        await self.health.check_once()

        credentials = server_credentials(self.settings)
        if credentials is None:
            self.grpc_port = self.server.add_insecure_port(self.settings.grpc_addr)
        else:
            self.grpc_port = self.server.add_secure_port(self.settings.grpc_addr, credentials)
        await self.server.start()
        self.serving = True
        self.collectors = [metrics.PoolCollector(self.pool), metrics.IndexCollector(self.index)]
        for collector in self.collectors:
            REGISTRY.register(collector)
        self.metrics_server = metrics.MetricsServer(*parse_host_port(self.settings.metrics_addr))
        self._tasks = [
            asyncio.create_task(self.health.run(), name="database-health"),
            asyncio.create_task(self._maintain(), name="maintenance"),
            asyncio.create_task(metrics.watch_event_loop(), name="event-loop-lag"),
            asyncio.create_task(self.custom_keywords.follow(), name="custom-keywords"),
            asyncio.create_task(bindings.follow(), name="shortcode-bindings"),
            asyncio.create_task(feed.tick_forever(), name="change-feed-ticker"),
        ]
        log.info(
            "serving",
            extra={
                "grpc_addr": f"{parse_host_port(self.settings.grpc_addr)[0]}:{self.grpc_port}",
                "metrics_addr": f"{parse_host_port(self.settings.metrics_addr)[0]}:{self.metrics_port}",
                "embedded_database": self.embedded is not None,
                "transport": _transport(self.settings),
                "auth": "OFF" if self.settings.insecure_no_auth else "tokens",
            },
        )

    async def stop(self, skip_delay: asyncio.Event | None = None) -> None:
        """Drain, then release everything, the database last.

        Health turns NOT_SERVING at once, and calls are still served for `drain_delay_s` (or until
        `skip_delay` is set): load balancers need that long to notice and send new calls elsewhere. Then the
        server accepts no new call, request streams end after the request in flight (their clients reconnect,
        now to another server), and calls in flight get `shutdown_grace_s` to finish; those still running
        then are cut and logged."""
        if self.health is not None:
            await self.health.shut_down()
        if self.serving:
            await self._drain(skip_delay or asyncio.Event())
        elif self.server is not None:
            await self.server.stop(None)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.index is not None:
            await self.index.stop()
        if self.tokens is not None:
            await self.tokens.stop()
        if self.metrics_server is not None:
            self.metrics_server.close()
        if self.tracing is not None and not await self.tracing.shutdown():
            log.warning("tracing: spans not exported within the shutdown timeout were dropped")
        for collector in self.collectors:
            REGISTRY.unregister(collector)
        if self.pool is not None:
            await self.pool.close()
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)
        log.info("stopped")

    async def _drain(self, skip_delay: asyncio.Event) -> None:
        assert self.server is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(skip_delay.wait(), self.settings.drain_delay_s)
        grace = self.settings.shutdown_grace_s
        log.info(
            "no longer accepting calls", extra={"in_flight": len(self.in_flight.running()), "grace_s": grace}
        )
        self.streams_ending.begin()
        stopping = asyncio.ensure_future(self.server.stop(grace + GRPC_GRACE_MARGIN_S))
        done, _ = await asyncio.wait({stopping}, timeout=grace)
        if not done:
            cut = self.in_flight.running()
            log.warning(
                "shutdown grace ran out: calls cut",
                extra={
                    "cut": len(cut),
                    "calls": [{"method": c.method, "ran_s": c.ran_s} for c in cut[:CUT_CALLS_LOGGED]],
                    "grace_s": grace,
                },
            )
            await self.server.stop(0)  # cancels them
        await stopping

    async def _maintain(self) -> None:
        """Periodic upkeep (`maintain_once`). Failures are logged and retried next round."""
        while True:
            await asyncio.sleep(MAINTENANCE_INTERVAL_S)
            try:
                await self.maintain_once()
            except Exception:
                log.exception("maintenance failed; retrying in the next round")

    async def maintain_once(self) -> None:
        """Send partitions ahead of time; request ids and the change feed's changes past their retention
        deleted; raw texts past theirs emptied (when STOPGATE_RAW_TEXT_RETENTION_DAYS is set)."""
        assert self.pool is not None
        assert self.change_feed is not None
        async with self.pool.acquire() as connection:
            await ensure_sends_partitions(connection)
            retention = timedelta(seconds=self.settings.request_id_retention_s)
            purged = await purge_request_ids(connection, retention)
            texts, days = None, self.settings.raw_text_retention_days
            if days:
                texts = await purge_raw_texts(connection, timedelta(days=days))
        if purged:
            log.info("deleted expired request ids", extra={"request_ids": purged})
        if texts is not None:
            log.info(
                "purged raw texts past their retention",
                extra={
                    "inbound_texts": texts.inbound_texts,
                    "rejected_events": texts.rejected_events,
                    "retention_days": days,
                },
            )
        await self.change_feed.purge(self.settings.change_feed_retention_s)


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS credentials from the settings' PEM files, requiring client certificates when a client CA is
    given (mutual TLS); None for plaintext."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    client_ca = settings.tls_client_ca_file.read_bytes() if settings.tls_client_ca_file else None
    return grpc.ssl_server_credentials(
        [(settings.tls_key_file.read_bytes(), settings.tls_cert_file.read_bytes())],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


def _transport(settings: Settings) -> str:
    if settings.tls_client_ca_file:
        return "mutual TLS"
    return "TLS" if settings.tls_cert_file else "plaintext"


async def serve(settings: Settings) -> None:
    """Run a server until SIGTERM or SIGINT, then drain and stop cleanly. A single server first claims its
    port (AddressInUse names the server that has it); the workers of a supervisor share the supervisor's."""
    guard = await AddressGuard.claim(settings) if settings.worker_index is None else None
    app = Application(settings)
    signals = StopSignals()
    try:
        await app.start()
        await signals.requested.wait()
        log.info(
            "shutting down",
            extra={"drain_delay_s": settings.drain_delay_s, "grace_s": settings.shutdown_grace_s},
        )
    finally:
        await app.stop(signals.hurry)
        if guard is not None:
            await guard.release()
