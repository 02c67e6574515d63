"""Erasure of a number's personal data that keeps its opt-out (GDPR Art. 17 and 21): what a request names,
and what an erasure did. SECURITY.md ("Erasure") says what is erased, what is kept and why."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

EVERY_LICENCE = None
"""The scope of an erasure in every licence (and of the rows attributed to none)."""


@dataclass(frozen=True)
class ErasureRequest:
    phone: str  # E.164
    licence_id: str | None  # EVERY_LICENCE (None) for every licence
    actor: str
    reason: str  # the reference of the person's request


@dataclass(frozen=True)
class ErasureCounts:
    """How many rows of each kind one erasure erased (all 0 for a repeat)."""

    inbound_events_cleared: int = 0
    sends_deleted: int = 0
    campaign_memberships_deleted: int = 0
    history_entries_cleared: int = 0
    quarantine_entries_minimised: int = 0
    feed_changes_minimised: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @property
    def total(self) -> int:
        return sum(self.as_dict().values())


@dataclass(frozen=True)
class Erasure:
    """The audit record of one erasure."""

    erasure_id: int
    erased_at: datetime
    counts: ErasureCounts


@dataclass(frozen=True)
class Purged:
    """What one round of the raw-text retention emptied."""

    inbound_texts: int = 0
    rejected_events: int = 0
