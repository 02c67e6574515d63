"""Retries of idempotent calls on UNAVAILABLE, with exponential backoff and full jitter.

Which methods are idempotent is declared once, in the protos (`option idempotency_level`), and read here
from the generated descriptors:
- `IDEMPOTENT_METHODS`, declared idempotent and taking a single request, are retried whatever they carry;
  a server stream only until its first response (what gRPC's own retries do too);
- `RETRIED_WITH_REQUEST_ID` (AIP-155: RecordSends, CheckBatch) are idempotent only when their request id is
  set (or, for CheckBatch, when no campaign_id makes it record sends), so the protos leave them at the
  default level; the client sets an id on each of these calls and retries them with the same id on every
  attempt;
- `StreamEvents` reconnects and re-sends its unacked batches, safe because ingest is idempotent on
  event_id (with the same backoffs, for as long as the caller's `reconnect_deadline_s` allows rather than
  `max_attempts`), and so does the change feed, after the last response it yielded;
- QuarantineNumbers and ReleaseNumbers are never retried.

`AsyncClient` runs every retry itself, not through the channel's service config: a service config is fixed
when the channel is made, and a per-call `retry=` must govern that call's attempts (`NO_RETRY`: one
attempt), which a channel retrying underneath would multiply. Its `RetryThrottle` stands in for gRPC's
retry throttling, so a fleet of clients stops retrying against a server that is down.
`RetryConfig.service_config` still expresses the same policy for teams that build their own channel for the
raw stubs of `stopgate.v1`.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.descriptor_pb2 import MethodOptions

from stopgate.v1 import message_compliance_pb2, quarantine_check_pb2, reporting_pb2, stop_ingest_pb2

_CONTRACTS = (quarantine_check_pb2, stop_ingest_pb2, message_compliance_pb2, reporting_pb2)
# The `idempotency_level`s of methods whose effect does not depend on how many times they run.
_IDEMPOTENT_LEVELS = frozenset({MethodOptions.NO_SIDE_EFFECTS, MethodOptions.IDEMPOTENT})


def _always_retried(method: MethodDescriptor) -> bool:
    """Whether `method` is retried whatever its request: its protos declare it idempotent and it takes a
    single request (a request stream, StreamEvents, is resumed instead, see `stopgate.events`)."""
    return method.GetOptions().idempotency_level in _IDEMPOTENT_LEVELS and not method.client_streaming


IDEMPOTENT_METHODS: dict[str, tuple[str, ...]] = {
    service.full_name: methods
    for contract in _CONTRACTS
    for service in contract.DESCRIPTOR.services_by_name.values()
    if (methods := tuple(m.name for m in service.methods if _always_retried(m)))
}
"""The methods retried on UNAVAILABLE whatever their request, by full service name
("stopgate.v1.Reporting")."""

REQUEST_ID_FIELD = "request_id"

RETRIED_WITH_REQUEST_ID: dict[str, tuple[str, ...]] = {
    service.full_name: methods
    for contract in _CONTRACTS
    for service in contract.DESCRIPTOR.services_by_name.values()
    if (
        methods := tuple(
            m.name
            for m in service.methods
            if REQUEST_ID_FIELD in m.input_type.fields_by_name and not _always_retried(m)
        )
    )
}
"""The methods the client retries itself, only when their request carries a request id, by full service
name ("stopgate.v1.QuarantineCheck")."""


@dataclass(frozen=True)
class RetryConfig:
    """How idempotent calls are retried.

    `max_attempts` counts the first try (1 disables retries, and the reconnection of streams: `NO_RETRY`;
    at most 5, gRPC's own cap). The wait before retry n is uniform in
    [0, min(max_backoff_s, initial_backoff_s * multiplier**(n-1))]: "full jitter", so that clients cut off
    together do not come back together. Only `retryable_codes` are retried; a call's
    deadline covers all of its attempts. A lost connection is tried again at least every `max_backoff_s`
    (`channel_options`), so that calls succeed soon after a server restarts.
    """

    max_attempts: int = 4
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 2.0
    multiplier: float = 2.0
    retryable_codes: tuple[grpc.StatusCode, ...] = (grpc.StatusCode.UNAVAILABLE,)

    def __post_init__(self) -> None:
        if not 1 <= self.max_attempts <= 5:
            raise ValueError("max_attempts must be between 1 and 5")
        if self.initial_backoff_s <= 0 or self.max_backoff_s < self.initial_backoff_s:
            raise ValueError("backoffs must be positive, max_backoff_s >= initial_backoff_s")
        if self.multiplier < 1:
            raise ValueError("multiplier must be at least 1")

    @property
    def retries(self) -> bool:
        """Whether calls are retried (and streams reconnected) at all."""
        return self.max_attempts > 1

    def service_config(self, load_balancing: str | None = None, *, retry_policy: bool = True) -> str:
        """The gRPC service config (JSON) that retries `IDEMPOTENT_METHODS` (unless not `retry_policy`),
        with a load balancing policy (`round_robin` spreads calls over every address a `dns:///` target
        resolves to). For channels of the raw stubs: `AsyncClient` retries by itself."""
        config: dict[str, Any] = {}
        if load_balancing:
            config["loadBalancingConfig"] = [{load_balancing: {}}]
        if not retry_policy or not self.retries:
            return json.dumps(config)
        policy = {
            "maxAttempts": self.max_attempts,
            "initialBackoff": f"{self.initial_backoff_s}s",
            "maxBackoff": f"{self.max_backoff_s}s",
            "backoffMultiplier": self.multiplier,
            "retryableStatusCodes": [code.name for code in self.retryable_codes],
        }
        names = [
            {"service": service, "method": method}
            for service, methods in IDEMPOTENT_METHODS.items()
            for method in methods
        ]
        config["methodConfig"] = [{"name": names, "retryPolicy": policy}]
        config["retryThrottling"] = {"maxTokens": RetryThrottle.MAX_TOKENS, "tokenRatio": RetryThrottle.RATIO}
        return json.dumps(config)

    def channel_options(self) -> list[tuple[str, int]]:
        """Channel options that cap gRPC's own wait between attempts to reconnect a lost connection at
        `max_backoff_s`. gRPC's default cap, 120 s, would keep a client failing long after its server is
        back: calls fail at once while the channel waits to reconnect."""
        return [("grpc.max_reconnect_backoff_ms", max(1, round(self.max_backoff_s * 1000)))]

    def backoffs(self) -> Iterator[float]:
        """The waits before each retry the client makes itself: `max_attempts - 1` of them."""
        return itertools.islice(self.reconnect_backoffs(), self.max_attempts - 1)

    def reconnect_backoffs(self) -> Iterator[float]:
        """The waits before each reconnection of a stream, without end: the caller bounds them by time."""
        ceiling = self.initial_backoff_s
        while True:
            yield random.uniform(0, ceiling)  # noqa: S311 - jitter, not a secret
            ceiling = min(self.max_backoff_s, ceiling * self.multiplier)

    def is_retryable(self, code: grpc.StatusCode) -> bool:
        return code in self.retryable_codes


NO_RETRY = RetryConfig(max_attempts=1)
"""One attempt, no reconnection: `retry=NO_RETRY` on a call, or a client's default."""


class RetryThrottle:
    """gRPC's retry throttling, for the retries a client makes itself: each failure that could be retried
    takes a token, each success gives back a tenth of one; retries stop while no more than half the tokens
    are left, so a fleet of clients does not hammer a server that is down. One per client, whatever the
    `RetryConfig` of each call. Not thread-safe: used on the client's event loop only."""

    MAX_TOKENS = 10
    RATIO = 0.1

    def __init__(self) -> None:
        self._tokens = float(self.MAX_TOKENS)

    def failed(self) -> None:
        self._tokens = max(0.0, self._tokens - 1)

    def succeeded(self) -> None:
        self._tokens = min(self.MAX_TOKENS, self._tokens + self.RATIO)

    def allows_retry(self) -> bool:
        return self._tokens > self.MAX_TOKENS / 2
