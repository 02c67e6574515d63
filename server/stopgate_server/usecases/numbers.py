"""One number in one licence: what is known about it, and the manual actions of admins.

Rules (DESIGN.md §1 and §2) applied here: manual quarantine and release are per licence and audited (every
request goes to the number's history with its actor and reason; a release carries the person's consent
reference), and both are visible to this process's checks before the answer. A caller limited to licences
sees the stop lists of the shortcodes bound to the licence only (usecases/shortcode_bindings.py).
Tests: tests/integration/test_quarantine_check.py (manual actions, number status),
test_shortcode_bindings.py.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from stopgate_server.domain.numbers import NumberStatus
from stopgate_server.store.quarantine import QuarantineStore
from stopgate_server.usecases.shortcode_bindings import ShortcodeBindings


class Numbers:
    def __init__(self, quarantine: QuarantineStore, bindings: ShortcodeBindings) -> None:
        self.quarantine = quarantine
        self.bindings = bindings

    async def status(self, licence_id: str, phone: str, limited_to: Collection[str] = ()) -> NumberStatus:
        """What is known about the number in the licence, as a caller limited to `limited_to` (empty: to
        no licence) may see it."""
        status = await self.quarantine.number_status(licence_id, phone)
        return self.bindings.visible_status(limited_to, licence_id, status)

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
