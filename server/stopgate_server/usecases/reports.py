"""Reports and exports for account and compliance teams: campaign unsubscribes and their rate
(`CampaignCounters.unsubscribe_rate_percent`), a licence's activity, and the exports of interactions (status
STOPPED: the send a STOP was attributed to, by its send_id) and of a quarantine.
Tests: tests/integration/test_reporting.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from stopgate_server.domain.reports import (
    CampaignCounters,
    DailyActivity,
    Interaction,
    LicenceSummary,
    QuarantineRow,
)
from stopgate_server.domain.times import MICROSECOND
from stopgate_server.errors import NotFound
from stopgate_server.store.reporting import ReportingStore


class Reports:
    def __init__(self, store: ReportingStore) -> None:
        self.store = store

    async def campaign(self, licence_id: str, campaign_id: str) -> CampaignCounters:
        counters = await self.store.campaign(licence_id, campaign_id)
        if counters is None:
            raise NotFound(f"campaign {campaign_id!r} has no recorded send in licence {licence_id!r}")
        return counters

    async def campaigns_page(
        self,
        licence_id: str,
        start: datetime | None,
        end: datetime | None,
        after: tuple[datetime, str] | None,
        size: int,
    ) -> tuple[list[CampaignCounters], bool]:
        """A page of the campaigns sent within [start, end), newest first sends first, after the keyset
        `after`; and whether more follow."""
        rows = await self.store.campaigns_page(licence_id, start, end, after, size + 1)
        return rows[:size], len(rows) > size

    def interactions(self, licence_id: str, campaign_id: str) -> AsyncIterator[list[Interaction]]:
        return self.store.interactions(licence_id, campaign_id)

    def quarantine(self, licence_id: str) -> AsyncIterator[list[QuarantineRow]]:
        return self.store.quarantine(licence_id)

    async def licence_summary(
        self, licence_id: str, start: datetime, end: datetime, top: int
    ) -> LicenceSummary:
        """Quarantine size, opt-outs and opt-ins on every UTC day of [start, end) (days without any
        included), and the `top` campaigns with the highest unsubscribe rates."""
        size, active_days, campaigns = await self.store.licence_activity(licence_id, start, end, top)
        by_day = {activity.day: activity for activity in active_days}
        # Counted rather than stepped past: a day after 9999-12-31 cannot even be computed
        first, last = start.date(), (end - MICROSECOND).date()
        days = (first + timedelta(days=offset) for offset in range((last - first).days + 1))
        daily = [by_day.get(day) or DailyActivity(day, 0, 0) for day in days]
        return LicenceSummary(size, daily, campaigns)
