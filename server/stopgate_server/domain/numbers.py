"""What is known about one number: its quarantine, the stop lists it is on, its last send, its history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from stopgate_server.domain.ingest import Attribution, Source


class HistoryAction(Enum):
    OPT_OUT = "OPT_OUT"
    OPT_IN = "OPT_IN"
    MANUAL_QUARANTINE = "MANUAL_QUARANTINE"
    MANUAL_RELEASE = "MANUAL_RELEASE"


@dataclass(frozen=True)
class QuarantineEntry:
    """A number in a licence's quarantine: since when, why, and the campaign its STOP was attributed to
    ("" when none, `attribution` None for a manual quarantine)."""

    since: datetime
    source: Source
    campaign_id: str
    event_id: str
    attribution: Attribution | None


@dataclass(frozen=True)
class StopListEntry:
    shortcode: str
    since: datetime
    event_id: str


@dataclass(frozen=True)
class SendRecord:
    campaign_id: str
    sender: str
    reply_shortcode: str
    sent_at: datetime


@dataclass(frozen=True)
class HistoryEntry:
    """One opt-out, opt-in or manual action ("" for what does not apply to it)."""

    occurred_at: datetime
    action: HistoryAction
    source: Source
    licence_id: str
    campaign_id: str
    shortcode: str
    event_id: str
    actor: str
    reason: str
    consent_reference: str
    attribution: Attribution | None


@dataclass(frozen=True)
class NumberStatus:
    """Everything known about one number in one licence, read in one snapshot."""

    quarantine: QuarantineEntry | None
    stop_lists: list[StopListEntry]
    last_send: SendRecord | None
    history: list[HistoryEntry]
