"""Prometheus metrics: the go-grpc-prometheus server metrics, and stopgate's own (`stopgate_*`).

Label sets are bounded: gRPC service, method, type and code come from the registered services; no phone
number or licence ever becomes a label. Label values are go-grpc-prometheus's too (`grpc_code="OK"`,
`"InvalidArgument"`, ...), so that community dashboards and alerts for gRPC servers work unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from collections.abc import Iterable, Iterator
from wsgiref.simple_server import WSGIServer

import asyncpg
import grpc
from google.protobuf.descriptor import ServiceDescriptor
from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from stopgate_server.store.blocklist import BlocklistIndex
from stopgate_server.version import build_info

GRPC_LABELS = ("grpc_type", "grpc_service", "grpc_method")
# The `grpc_code` values: Go's `codes.Code.String()`, as go-grpc-prometheus and grpc-go's other metrics
# write them (Go spells CANCELLED "Canceled").
GRPC_CODES = {
    grpc.StatusCode.OK: "OK",
    grpc.StatusCode.CANCELLED: "Canceled",
    grpc.StatusCode.UNKNOWN: "Unknown",
    grpc.StatusCode.INVALID_ARGUMENT: "InvalidArgument",
    grpc.StatusCode.DEADLINE_EXCEEDED: "DeadlineExceeded",
    grpc.StatusCode.NOT_FOUND: "NotFound",
    grpc.StatusCode.ALREADY_EXISTS: "AlreadyExists",
    grpc.StatusCode.PERMISSION_DENIED: "PermissionDenied",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "ResourceExhausted",
    grpc.StatusCode.FAILED_PRECONDITION: "FailedPrecondition",
    grpc.StatusCode.ABORTED: "Aborted",
    grpc.StatusCode.OUT_OF_RANGE: "OutOfRange",
    grpc.StatusCode.UNIMPLEMENTED: "Unimplemented",
    grpc.StatusCode.INTERNAL: "Internal",
    grpc.StatusCode.UNAVAILABLE: "Unavailable",
    grpc.StatusCode.DATA_LOSS: "DataLoss",
    grpc.StatusCode.UNAUTHENTICATED: "Unauthenticated",
}
if set(GRPC_CODES) != set(grpc.StatusCode):  # the interceptor labels every call, whatever its code
    raise LookupError(f"no grpc_code value for {set(grpc.StatusCode) - set(GRPC_CODES)}")

_BUILD = build_info()
Gauge(
    "stopgate_build_info",
    "Always 1: the labels say which stopgate version the process runs, on which Python, grpcio and protobuf.",
    tuple(_BUILD),
).labels(**_BUILD).set(1)

STARTED = Counter("grpc_server_started_total", "RPCs started on the server.", GRPC_LABELS)
HANDLED = Counter(
    "grpc_server_handled_total", "RPCs completed on the server, by status code.", (*GRPC_LABELS, "grpc_code")
)
MSG_RECEIVED = Counter(
    "grpc_server_msg_received_total", "Stream messages received by the server.", GRPC_LABELS
)
MSG_SENT = Counter("grpc_server_msg_sent_total", "Stream messages sent by the server.", GRPC_LABELS)
HANDLING_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time from the start of an RPC to its status being sent.",
    GRPC_LABELS,
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
OPEN_STREAMS = Gauge(
    "stopgate_open_streams",
    "Streaming calls open now (admitted past the caps), health Watch and reflection included.",
    GRPC_LABELS,
)
REFUSED_CALLS = Counter(
    "stopgate_refused_calls_total",
    "Calls refused with RESOURCE_EXHAUSTED by a cap, by the setting of that cap.",
    ("setting",),
)
IDLE_STREAMS_ENDED = Counter(
    "stopgate_idle_streams_ended_total",
    "Streams ended after STOPGATE_STREAM_IDLE_TIMEOUT_S, by reason: STREAM_IDLE (no request came),"
    " STREAM_NOT_READ (the client read no response).",
    ("reason",),
)
DATABASE_UP = Gauge("stopgate_database_up", "1 while the last database health probe succeeded, else 0.")
CHECKED_NUMBERS = Counter(
    "stopgate_checked_numbers_total",
    "Numbers answered by CheckBatch, by verdict and reason (reason NONE for a plain ALLOW).",
    ("verdict", "reason"),
)
INGESTED_EVENTS = Counter(
    "stopgate_ingested_events_total",
    "Inbound events acknowledged, by source, intent and outcome.",
    ("source", "intent", "outcome"),
)
INGEST_BATCH_SECONDS = Histogram(
    "stopgate_ingest_batch_seconds",
    "Time to apply and commit one batch of inbound events (one StreamEvents request or one IngestEvent).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


PROPAGATION_SECONDS = Histogram(
    "stopgate_blocklist_propagation_seconds",
    "Round trip of a heartbeat through LISTEN/NOTIFY: the longest a committed block-list change can take to "
    "reach this process's index.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
INDEX_RESTARTS = Counter(
    "stopgate_blocklist_index_restarts_total",
    "Failures the block-list index started over after (its listening connection lost, terminated or hung, "
    "PostgreSQL unreachable, a bug): each is logged at ERROR and followed by a reconnect and a full reload.",
)
INDEX_RELOADED_LISTS = Counter(
    "stopgate_blocklist_index_reloaded_lists_total",
    "Block lists the index reloaded because reconciliation found them different from PostgreSQL: writes that "
    "bypassed the triggers (logical replication, pg_restore --disable-triggers, session_replication_role).",
    ("list",),
)
for _kind in ("quarantine", "stop_list"):
    INDEX_RELOADED_LISTS.labels(_kind)


EVENT_LOOP_LAG_SECONDS = Histogram(
    "stopgate_event_loop_lag_seconds",
    "How much later than asked the event loop woke a probe that sleeps 0.1 s: time during which every call "
    "of the process waited (work holding the loop, or a process short of CPU).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
LAG_PROBE_INTERVAL_S = 0.1


async def watch_event_loop(interval_s: float = LAG_PROBE_INTERVAL_S) -> None:
    """Observe the event loop's lag every `interval_s`, until cancelled."""
    while True:
        asked = time.monotonic()
        await asyncio.sleep(interval_s)
        EVENT_LOOP_LAG_SECONDS.observe(max(0.0, time.monotonic() - asked - interval_s))


class InFlightBatches:
    """Ingest batches received and not yet acked, for the age of the oldest one."""

    def __init__(self) -> None:
        self._started: dict[int, float] = {}
        self._keys = itertools.count()

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        key = next(self._keys)
        self._started[key] = time.monotonic()
        try:
            yield
        finally:
            del self._started[key]

    def oldest_age_s(self) -> float:
        return time.monotonic() - min(self._started.values()) if self._started else 0.0


INGEST_IN_FLIGHT = InFlightBatches()
Gauge(
    "stopgate_ingest_oldest_unacked_batch_seconds",
    "Age of the oldest ingest batch received and not yet acked (0 when none): grows while ingest is stuck.",
).set_function(INGEST_IN_FLIGHT.oldest_age_s)


def grpc_type(request_streaming: bool, response_streaming: bool) -> str:
    """The go-grpc-prometheus name of an RPC's shape."""
    if request_streaming:
        return "bidi_stream" if response_streaming else "client_stream"
    return "server_stream" if response_streaming else "unary"


def grpc_code(code: grpc.StatusCode) -> str:
    """The go-grpc-prometheus value of a status code (`InvalidArgument` for INVALID_ARGUMENT)."""
    return GRPC_CODES[code]


def initialise(services: Iterable[ServiceDescriptor]) -> None:
    """Create the started/handled(OK) series of every method at zero, so rates exist before traffic."""
    for service in services:
        for method in service.methods:
            labels = (
                grpc_type(method.client_streaming, method.server_streaming),
                service.full_name,
                method.name,
            )
            STARTED.labels(*labels)
            HANDLED.labels(*labels, grpc_code(grpc.StatusCode.OK))
            HANDLING_SECONDS.labels(*labels)


class PoolCollector(Collector):
    """Reports the size of an asyncpg pool at scrape time."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    def collect(self) -> Iterable[GaugeMetricFamily]:
        size, idle = self._pool.get_size(), self._pool.get_idle_size()
        connections = GaugeMetricFamily(
            "stopgate_db_pool_connections",
            "Open PostgreSQL connections of the pool, by state.",
            labels=["state"],
        )
        connections.add_metric(["idle"], idle)
        connections.add_metric(["in_use"], size - idle)
        yield connections
        yield GaugeMetricFamily(
            "stopgate_db_pool_max_connections",
            "Connections the pool may open at most.",
            value=self._pool.get_max_size(),
        )


class IndexCollector(Collector):
    """Reports the block-list index at scrape time: its size and whether it can prove it is current."""

    def __init__(self, index: BlocklistIndex) -> None:
        self._index = index

    def collect(self) -> Iterable[GaugeMetricFamily]:
        entries = GaugeMetricFamily(
            "stopgate_blocklist_index_entries",
            "Entries of the in-memory block-list index: (number, licence) quarantines, (number, shortcode) "
            "stop-list entries.",
            labels=["list"],
        )
        entries.add_metric(["quarantine"], self._index.quarantine_size)
        entries.add_metric(["stop_list"], self._index.stop_list_size)
        yield entries
        yield GaugeMetricFamily(
            "stopgate_blocklist_index_current",
            "1 while the index can prove it is current (checks use it), 0 while checks go to PostgreSQL.",
            value=1 if self._index.is_current() else 0,
        )


class MetricsServer:
    """The HTTP endpoint serving /metrics, in a thread of its own (it never touches the event loop)."""

    def __init__(self, host: str, port: int) -> None:
        self._server, self._thread = start_http_server(port, addr=host, registry=REGISTRY)

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def close(self) -> None:
        server: WSGIServer = self._server
        server.shutdown()
        server.server_close()
        thread: threading.Thread = self._thread
        thread.join(timeout=5)
