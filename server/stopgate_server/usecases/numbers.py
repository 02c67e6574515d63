"""One number in one licence: what is known about it, and the manual actions of admins.

Rules (DESIGN.md §1 and §2) applied here: manual quarantine and release are per licence and audited (every
request goes to the number's history with its actor and reason; a release carries the person's consent
reference), and both are visible to this process's checks before the answer.
Tests: tests/integration/test_quarantine_check.py (manual actions, number status).
"""

from __future__ import annotations

from collections.abc import Sequence

from stopgate_server.domain.numbers import NumberStatus
from stopgate_server.store.quarantine import QuarantineStore


class Numbers:
    def __init__(self, quarantine: QuarantineStore) -> None:
        self.quarantine = quarantine

    async def status(self, licence_id: str, phone: str) -> NumberStatus:
        return await self.quarantine.number_status(licence_id, phone)

    async def quarantine_by_hand(
        self, licence_id: str, phones: Sequence[str], actor: str, reason: str
    ) -> set[str]:
        """Quarantine the phones; return those that were not quarantined before."""
        return await self.quarantine.quarantine(licence_id, phones, actor, reason)

    async def release_by_hand(
        self, licence_id: str, phones: Sequence[str], actor: str, reason: str, consent_reference: str
    ) -> set[str]:
        """Release the phones; return those that were quarantined."""
        return await self.quarantine.release(licence_id, phones, actor, reason, consent_reference)
