"""Erasure of a number's personal data that keeps its opt-out (GDPR Art. 17, right to erasure, and Art. 21,
right to object), and the retention of raw texts.

Rules applied here (SECURITY.md, "Erasure"): the number's raw texts and other personal fields of its inbound
events, its sends, its campaign memberships and the free-text details of its history are erased; its
quarantine and shortcode stop-list entries stay, reduced to what blocking and the free confirmation need, so
the objection is honoured after the erasure (keeping the number on a suppression list is the minimum needed
for that, Art. 17(3)(b) and (e)); campaign reports keep their counts. One licence's erasure touches only that
licence's rows; stop lists belong to shortcodes and are left as they are. Every request is audited, a repeat
too (it erases nothing more). A caller limited to licences erases only within one of them, never in every
licence. Raw texts older than the retention are emptied by the periodic maintenance.
Tests: tests/integration/test_erasure.py.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from stopgate_server.domain.erasure import EVERY_LICENCE, Erasure, ErasureRequest
from stopgate_server.errors import PermissionDenied
from stopgate_server.store.erasure import ErasureStore

log = logging.getLogger(__name__)


class Erasures:
    def __init__(self, store: ErasureStore) -> None:
        self.store = store

    async def erase(self, request: ErasureRequest, limited_to: Collection[str] = ()) -> Erasure:
        """Erase the number's personal data in the request's scope, keeping its opt-out; the audit record.
        A caller limited to licences (`limited_to` not empty) may name one of its licences only."""
        if limited_to and (request.licence_id is EVERY_LICENCE or request.licence_id not in limited_to):
            asked = request.licence_id
            scope = "every licence" if asked is EVERY_LICENCE else f"licence {asked}"
            own = ", ".join(sorted(limited_to))
            raise PermissionDenied(
                f"a token limited to licences may erase only within one of them ({own}), not in {scope}"
            )
        erasure = await self.store.erase(request)
        log.info(
            "personal data erased",
            extra={
                "erasure_id": erasure.erasure_id,
                "licence_id": request.licence_id or "*",
                "actor": request.actor,
                **erasure.counts.as_dict(),
            },
        )
        return erasure
