"""Request ids (AIP-155): a caller's id for a request that records sends, so that its retries record once."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestId:
    """One caller-chosen id, scoped to its licence and method ("RecordSends", "CheckBatch"): two licences may
    choose the same id, and neither sees the other's answer. `fingerprint` identifies the request it names
    (a digest of every field), so that the id reused for a different request is refused, not answered."""

    licence_id: str
    method: str
    value: uuid.UUID
    fingerprint: bytes


@dataclass(frozen=True, slots=True)
class FirstAnswer:
    """What a request id was recorded with: its request's fingerprint and the answer sent, encoded."""

    fingerprint: bytes
    answer: bytes
