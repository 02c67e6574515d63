"""Retries of idempotent calls on UNAVAILABLE, with exponential backoff and full jitter.

Which methods are idempotent is declared once, in the protos (`option idempotency_level`), and read here
from the generated descriptors. Where gRPC can do it, it does: `RetryConfig.service_config` becomes the
channel's service config, so gRPC core retries the methods that are always idempotent (with its retry
throttling, which stops a fleet of clients from hammering a server that is down). Two cases need the client
itself, with the same settings:
- The methods whose request has a `request_id` (AIP-155: RecordSends, CheckBatch) are idempotent only when
  it is set (or, for CheckBatch, when no campaign_id makes it record sends), so the protos leave them at
  the default level and the channel cannot retry them: it would retry the calls made without an id too,
  counting their sends twice. The client sets an id on each of these calls and retries them itself, the
  same id on every attempt (`RETRIED_WITH_REQUEST_ID`).
- `StreamEvents` reconnects and re-sends its unacked batches, which is safe because ingest is idempotent on
  event_id (with the same backoffs, but for as long as the caller's `reconnect_deadline_s` allows rather
  than `max_attempts`).
QuarantineNumbers and ReleaseNumbers are never retried.
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


def _retried_by_the_channel(method: MethodDescriptor) -> bool:
    """Whether the channel's service config retries `method`: its protos declare it idempotent and it takes
    a single request (a request stream, StreamEvents, is resumed by the client itself, see
    `stopgate.events`)."""
    return method.GetOptions().idempotency_level in _IDEMPOTENT_LEVELS and not method.client_streaming


IDEMPOTENT_METHODS: dict[str, tuple[str, ...]] = {
    service.full_name: methods
    for contract in _CONTRACTS
    for service in contract.DESCRIPTOR.services_by_name.values()
    if (methods := tuple(m.name for m in service.methods if _retried_by_the_channel(m)))
}
"""The methods the channel retries, by full service name ("stopgate.v1.Reporting")."""

REQUEST_ID_FIELD = "request_id"

RETRIED_WITH_REQUEST_ID: dict[str, tuple[str, ...]] = {
    service.full_name: methods
    for contract in _CONTRACTS
    for service in contract.DESCRIPTOR.services_by_name.values()
    if (
        methods := tuple(
            m.name
            for m in service.methods
            if REQUEST_ID_FIELD in m.input_type.fields_by_name and not _retried_by_the_channel(m)
        )
    )
}
"""The methods the client retries itself, only when their request carries a request id, by full service
name ("stopgate.v1.QuarantineCheck")."""


@dataclass(frozen=True)
class RetryConfig:
    """How idempotent calls are retried.

    `max_attempts` counts the first try (1 disables retries; gRPC caps it at 5). The wait before retry n
    is uniform in [0, min(max_backoff_s, initial_backoff_s * multiplier**(n-1))]: "full jitter", so that
    clients cut off together do not come back together. Only `retryable_codes` are retried; a call's
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

    def service_config(self, load_balancing: str | None = None) -> str:
        """The gRPC service config (JSON) that retries `IDEMPOTENT_METHODS`, with a load balancing policy
        (`round_robin` spreads calls over every address a `dns:///` target resolves to)."""
        config: dict[str, Any] = {}
        if load_balancing:
            config["loadBalancingConfig"] = [{load_balancing: {}}]
        if self.max_attempts == 1:
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
        # Each failure takes a token, each success gives back a tenth; gRPC stops retrying while fewer
        # than half the tokens are left, so a server that is down is not hammered by retries.
        config["retryThrottling"] = {"maxTokens": 10, "tokenRatio": 0.1}
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
