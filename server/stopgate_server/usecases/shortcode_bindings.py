"""Shortcodes bound to the licences that use them: admins bind and unbind them; a caller limited to licences
sends through, classifies for, and sees the stop list of only the shortcodes bound to its licence.

Rules applied here (SECURITY.md, "Shortcodes and licences"): a caller not limited to licences (`limited_to`
empty) is not restricted; a limited caller acting for a licence is held to that licence's bindings, one
naming none (ClassifyText) to those of any of its licences. A change is applied by the process that made it
before it answers, and by every other process within `REFRESH_INTERVAL_S` plus one reload (each polls a
revision that every change moves when it commits). Checks read an in-memory set: no query per call.
Tests: tests/integration/test_shortcode_bindings.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection

from stopgate_server.domain.numbers import NumberStatus
from stopgate_server.domain.shortcode_bindings import Binding, BindingSet
from stopgate_server.errors import PermissionDenied
from stopgate_server.store.shortcode_bindings import BindingStore

log = logging.getLogger(__name__)
REFRESH_INTERVAL_S = 1.0
REFRESH_TIMEOUT_S = 10.0
NOT_BOUND = "SHORTCODE_NOT_BOUND"


class ShortcodeBindings:
    def __init__(self, store: BindingStore) -> None:
        self.store = store
        self.bindings = BindingSet()
        self._refreshing = asyncio.Lock()

    async def bind(self, licence_id: str, shortcode: str, actor: str) -> tuple[Binding, bool]:
        """Bind a shortcode to a licence; return the binding and whether it was added."""
        binding, created = await self.store.bind(licence_id, shortcode, actor)
        log.info(
            "shortcode bound",
            extra={"licence_id": licence_id, "shortcode": shortcode, "actor": actor, "added": created},
        )
        await self.refresh()
        return binding, created

    async def unbind(self, licence_id: str, shortcode: str, actor: str) -> bool:
        removed = await self.store.unbind(licence_id, shortcode)
        log.info(
            "shortcode unbound",
            extra={"licence_id": licence_id, "shortcode": shortcode, "actor": actor, "removed": removed},
        )
        await self.refresh()
        return removed

    async def find(self, licence_id: str, shortcode: str) -> list[Binding]:
        """The bindings of a licence and of a shortcode ("" for any)."""
        return await self.store.find(licence_id, shortcode)

    def require(self, limited_to: Collection[str], licence_id: str, shortcode: str, field: str) -> None:
        """Raise PermissionDenied when a caller limited to licences names a shortcode (in `field`) that is
        not bound to `licence_id` (or, when it names no licence, to any of its licences)."""
        if not limited_to or not shortcode:
            return
        if not self.bindings.allows((licence_id,) if licence_id else limited_to, shortcode):
            licence = licence_id or " or ".join(sorted(limited_to))
            how = f"stopgate-cli shortcode-bind {licence_id or 'LICENCE'} {shortcode}"
            raise PermissionDenied(
                f"{field}: shortcode {shortcode} is not bound to licence {licence}; an administrator binds "
                f"it with `{how}` (BindShortcode)",
                reason=NOT_BOUND,
            )

    def visible_status(
        self, limited_to: Collection[str], licence_id: str, status: NumberStatus
    ) -> NumberStatus:
        """A number's status as a caller sees it: for a caller limited to licences, without the stop lists
        of shortcodes not bound to `licence_id`, nor the unattributed history entries of such shortcodes
        (they carry the shortcode's inbound event ids)."""
        if not limited_to:
            return status

        def bound(shortcode: str) -> bool:
            return self.bindings.allows((licence_id,), shortcode)

        return NumberStatus(
            quarantine=status.quarantine,
            stop_lists=[entry for entry in status.stop_lists if bound(entry.shortcode)],
            last_send=status.last_send,
            history=[entry for entry in status.history if entry.licence_id or bound(entry.shortcode)],
        )

    async def refresh(self) -> None:
        """Reload the bindings if they changed since the last reload. One reload at a time, and never back
        to an older revision than the one held."""
        async with self._refreshing:
            if await self.store.revision() == self.bindings.revision:
                return
            revision, pairs = await self.store.everything()
            if revision > self.bindings.revision:
                self.bindings = BindingSet(pairs, revision)

    async def follow(self) -> None:
        """Reload the bindings whenever they change, until cancelled (one task per server process)."""
        while True:
            try:
                async with asyncio.timeout(REFRESH_TIMEOUT_S):
                    await self.refresh()
            except Exception:  # PostgreSQL away: keep the bindings held, try again
                log.warning("could not refresh the shortcode bindings", exc_info=True)
            await asyncio.sleep(REFRESH_INTERVAL_S)
