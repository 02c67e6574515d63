"""What reports and exports hold: campaign counters and their unsubscribe rate, a licence's activity, the
rows of the exports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import NamedTuple

from stopgate_server.domain.ingest import Source


@dataclass(frozen=True)
class CampaignCounters:
    """A campaign's sends and unsubscribes (the STOPs attributed to it that blocked anew), by source."""

    licence_id: str
    campaign_id: str
    sent_count: int
    unique_recipients: int
    unsubscribe_count: int
    unsubscribes_by_source: dict[Source, int]
    first_send_at: datetime | None
    last_send_at: datetime | None
    first_stop_at: datetime | None
    last_stop_at: datetime | None

    @property
    def unsubscribe_rate_percent(self) -> float:
        """Unsubscribes as a percentage of the unique recipients, to two decimals (0 without recipients)."""
        if not self.unique_recipients:
            return 0.0
        return round(100 * self.unsubscribe_count / self.unique_recipients, 2)


@dataclass(frozen=True)
class DailyActivity:
    day: date
    stops: int
    opt_ins: int


@dataclass(frozen=True)
class LicenceSummary:
    quarantine_size: int
    daily: list[DailyActivity]  # every UTC day of the range, oldest first, days without activity included
    top_campaigns: list[CampaignCounters]


class Interaction(NamedTuple):
    """One send of a campaign, and the STOP attributed to that very send, if any (times in epoch
    microseconds: exports hold up to millions of them, and protobuf takes these without a datetime)."""

    phone: str
    sender: str
    sent_us: int
    stopped_us: int | None
    stop_source: Source | None
    stop_event_id: str | None


class QuarantineRow(NamedTuple):
    phone: str
    since: datetime
    source: Source
    campaign_id: str
    event_id: str
