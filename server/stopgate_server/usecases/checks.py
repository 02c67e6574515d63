"""Checks before a send: which numbers a licence may message from a sender, the one free confirmation, and
the sends recorded for attribution.

Rules (DESIGN.md §1) applied here:
- **Quarantine is per licence**: a number quarantined in the licence is blocked whatever the category.
- **Shortcode stop lists** and **Alias routes**: the stop list of the sender's route (`Sender.route`: a
  shortcode itself, or an alias's reply shortcode) blocks it, whatever the licence.
- **One free confirmation**: category OPT_OUT_CONFIRMATION passes a block once per STOP, within
  `CONFIRMATION_WINDOW` (claimed atomically in PostgreSQL: two concurrent checks never both get it).
- The numbers allowed by a check that names a campaign are recorded as its sends, before the answer.
- **Shortcodes bound to licences**: a caller limited to licences checks and records only through a route
  bound to the request's licence (usecases/shortcode_bindings.py).
Tests: tests/integration/test_quarantine_check.py, test_quarantine_model.py, test_alias_routes.py,
test_shortcode_bindings.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import compress, count

from stopgate_server.domain.senders import Sender, SenderKind
from stopgate_server.domain.verdicts import CONFIRMATION_WINDOW, Category, Decision, Reason, Verdict, decide
from stopgate_server.obs import metrics
from stopgate_server.store.quarantine import QuarantineStore
from stopgate_server.store.sends import SendsStore
from stopgate_server.usecases.shortcode_bindings import ShortcodeBindings


@dataclass(frozen=True)
class CheckedBatch:
    """The decisions of a check: `decisions` holds those of the positions that are not a plain ALLOW (in
    practice about 1% of a batch); every other number is allowed."""

    decisions: dict[int, Decision]
    allowed: int
    blocked: int
    invalid: int
    recorded_sends: int


class Checks:
    def __init__(self, quarantine: QuarantineStore, sends: SendsStore, bindings: ShortcodeBindings) -> None:
        self.quarantine = quarantine
        self.sends = sends
        self.bindings = bindings

    async def check_batch(
        self,
        licence_id: str,
        sender: Sender,
        category: Category,
        e164s: Sequence[str | None],
        campaign_id: str,
        limited_to: Collection[str] = (),
    ) -> CheckedBatch:
        """Decide each number (None: an invalid one); with a campaign, record the allowed ones as sends.
        `limited_to`: the licences the caller is limited to (empty: any)."""
        self._require_bound_route(limited_to, licence_id, sender)
        all_valid = None not in e164s
        valid = e164s if all_valid else [e for e in e164s if e is not None]
        route = sender.route
        blocks = await self.quarantine.find_blocks(licence_id, route, valid)  # type: ignore[arg-type]
        quarantined, stop_listed = blocks.quarantined, blocks.stop_listed
        claimed: set[str] = set()
        if category is Category.OPT_OUT_CONFIRMATION and (quarantined or stop_listed):
            claimed = await self.quarantine.claim_confirmations(
                licence_id, route, [*quarantined, *stop_listed], CONFIRMATION_WINDOW
            )

        # Only the invalid and the listed numbers need a decision of their own, found without a Python loop
        # over the batch.
        unusual: set[str | None] = {*quarantined, *stop_listed}
        if not all_valid:
            unusual.add(None)
        positions = list(compress(count(), map(unusual.__contains__, e164s))) if unusual else []
        decisions: dict[int, Decision] = {}
        for position in positions:
            e164 = e164s[position]
            decisions[position] = decide(
                e164,
                quarantined.get(e164) if e164 else None,
                stop_listed.get(e164) if e164 else None,
                e164 in claimed,
            )
        tally = Counter((d.verdict, d.reason) for d in decisions.values())
        tally[Verdict.ALLOW, Reason.NONE] += len(e164s) - len(positions)  # the plain ALLOWs
        for (verdict, reason), number in tally.items():
            metrics.CHECKED_NUMBERS.labels(verdict.value, reason.value).inc(number)
        verdicts = Counter[Verdict]()
        for (verdict, _), number in tally.items():
            verdicts[verdict] += number

        recorded = 0
        if campaign_id:
            refused = {p for p, d in decisions.items() if d.verdict is not Verdict.ALLOW}
            allowed = [e for p, e in enumerate(e164s) if p not in refused] if refused else e164s
            recorded = await self.sends.record(
                licence_id,
                campaign_id,
                sender,
                datetime.now(UTC),
                allowed,  # type: ignore[arg-type]
            )
        return CheckedBatch(
            decisions, verdicts[Verdict.ALLOW], verdicts[Verdict.BLOCK], verdicts[Verdict.INVALID], recorded
        )

    async def record_sends(
        self,
        licence_id: str,
        campaign_id: str,
        sender: Sender,
        sent_at: datetime,
        phones: Sequence[str],
        limited_to: Collection[str] = (),
    ) -> int:
        """Sends made without a check naming their campaign (or checked earlier)."""
        self._require_bound_route(limited_to, licence_id, sender)
        return await self.sends.record(licence_id, campaign_id, sender, sent_at, phones)

    def _require_bound_route(self, limited_to: Collection[str], licence_id: str, sender: Sender) -> None:
        """A caller limited to licences may send only through a shortcode bound to the licence: otherwise
        it could read any shortcode's stop list through the verdicts."""
        if limited_to:
            field = "sender.address" if sender.kind is SenderKind.SHORTCODE else "sender.reply_shortcode"
            self.bindings.require(limited_to, licence_id, sender.route, field)
