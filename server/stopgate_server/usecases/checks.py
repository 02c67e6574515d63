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
- **Sends recorded once**: a request that records sends and carries a request id (AIP-155) is recorded once
  with its answer; a repeat gets that first answer, and the id reused for another request is refused.
Tests: tests/integration/test_quarantine_check.py, test_quarantine_model.py, test_alias_routes.py,
test_shortcode_bindings.py, test_request_ids.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import compress, count
from typing import cast

from stopgate_server.domain.request_ids import RequestId
from stopgate_server.domain.senders import Sender, SenderKind
from stopgate_server.domain.verdicts import CONFIRMATION_WINDOW, Category, Decision, Reason, Verdict, decide
from stopgate_server.errors import RequestIdReused
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
        answer: Callable[[CheckedBatch, bytes | None], bytes],
        request: RequestId | None = None,
        limited_to: Collection[str] = (),
    ) -> bytes:
        """Decide each number (None: an invalid one); with a campaign, record the allowed ones as sends.
        Return the answer, as `answer(checked, None)` writes it; with a campaign and a `request` id seen
        before, nothing is recorded again and the answer is the first one given to that id, with the numbers
        blocked now turned BLOCK (`answer(checked, first)`): never an ALLOW for a number that said STOP
        since. `limited_to`: the licences the caller is limited to (empty: any)."""
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

        def checked(recorded: int) -> CheckedBatch:
            return CheckedBatch(
                decisions,
                verdicts[Verdict.ALLOW],
                verdicts[Verdict.BLOCK],
                verdicts[Verdict.INVALID],
                recorded,
            )

        if not campaign_id:
            return answer(checked(0), None)
        refused = {p for p, d in decisions.items() if d.verdict is not Verdict.ALLOW}
        kept = [e for p, e in enumerate(e164s) if p not in refused] if refused else e164s
        allowed = cast(Sequence[str], kept)  # the invalid numbers (None) are among the refused
        now = datetime.now(UTC)
        if request is None:
            recorded = await self.sends.record(licence_id, campaign_id, sender, now, allowed)
            assert recorded is not None  # only a request id can have been recorded before
            return answer(checked(recorded), None)
        # Stored with the sends, so written before them: it counts every allowed number as recorded.
        ours = answer(checked(len(allowed)), None)
        given = await self._once(
            request,
            ours,
            lambda: self.sends.record(licence_id, campaign_id, sender, now, allowed, request, ours),
        )
        if given is ours or not any(d.verdict is Verdict.BLOCK for d in decisions.values()):
            return given
        return answer(checked(len(allowed)), given)

    async def record_sends(
        self,
        licence_id: str,
        campaign_id: str,
        sender: Sender,
        sent_at: datetime,
        phones: Sequence[str],
        answer: Callable[[int], bytes],
        request: RequestId | None = None,
        limited_to: Collection[str] = (),
    ) -> bytes:
        """Sends made without a check naming their campaign (or checked earlier). Return the answer, as
        `answer` writes it for the number recorded; for a `request` id seen before, the first answer given
        to that id instead (nothing is recorded again)."""
        self._require_bound_route(limited_to, licence_id, sender)
        if request is None:
            recorded = await self.sends.record(licence_id, campaign_id, sender, sent_at, phones)
            assert recorded is not None  # only a request id can have been recorded before
            return answer(recorded)
        first = answer(len(phones))
        return await self._once(
            request,
            first,
            lambda: self.sends.record(licence_id, campaign_id, sender, sent_at, phones, request, first),
        )

    async def _once(
        self, request: RequestId, answer: bytes, record: Callable[[], Awaitable[int | None]]
    ) -> bytes:
        """`answer` when `record` recorded the request under its id; else the answer first given to the id.

        A copy of the request running concurrently records nothing and gets the first answer too: recording
        waits for the first copy's statement to end. Copies of a CheckBatch decide before that wait, so each
        claims free confirmations on its own (atomically: one at most gets each): one claimed by a copy
        whose answer is not the one recorded first is used up unsent, a BLOCK (the safe side)."""
        for _ in range(2):  # a second time only if the id expired in between (then it is recorded afresh)
            if await record() is not None:
                return answer
            first = await self.sends.first_answer(request)
            if first is None:
                continue
            if first.fingerprint != request.fingerprint:
                raise RequestIdReused("request_id", request.method)
            return first.answer
        raise RuntimeError(f"request id {request.value} was purged twice while being recorded")

    def _require_bound_route(self, limited_to: Collection[str], licence_id: str, sender: Sender) -> None:
        """A caller limited to licences may send only through a shortcode bound to the licence: otherwise
        it could read any shortcode's stop list through the verdicts."""
        if limited_to:
            field = "sender.address" if sender.kind is SenderKind.SHORTCODE else "sender.reply_shortcode"
            self.bindings.require(limited_to, licence_id, sender.route, field)
