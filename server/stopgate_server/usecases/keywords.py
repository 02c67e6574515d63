"""Custom keywords: admins add opt-out, opt-in and help keywords (with their replies) to a shortcode or a
licence; every server process applies them within seconds.

Rules applied here: **reserved keywords keep their meaning** (a built-in keyword, of any intent and
language, cannot be added, nor a text the classifier already reads as an intent: STOP cannot become an
opt-in, nor "stop please" or "TSOP"); a change is applied by the process that made it before it answers, and
by every other process within `REFRESH_INTERVAL_S` plus one reload (each polls a revision that every change
moves when it commits). Tests: tests/integration/test_custom_keywords.py.
"""

from __future__ import annotations

import asyncio
import logging

from stopgate_server.domain import keywords
from stopgate_server.domain.custom_keywords import MAX_WORDS, CustomKeyword, KeywordBook, Scope
from stopgate_server.errors import FieldViolation, InvalidArgument
from stopgate_server.store.keywords import KeywordStore

log = logging.getLogger(__name__)
REFRESH_INTERVAL_S = 1.0
REFRESH_TIMEOUT_S = 10.0


class CustomKeywords:
    def __init__(self, store: KeywordStore) -> None:
        self.store = store
        self.book = KeywordBook()
        self._refreshing = asyncio.Lock()

    async def set(self, keyword: CustomKeyword, actor: str) -> tuple[CustomKeyword, bool]:
        """Add or replace a keyword; return it as stored and whether it was added."""
        normalised = _checked(keyword.keyword, "keyword.keyword")
        read = keywords.classify(keyword.keyword)
        if keywords.is_reserved(normalised) or read.intent is not keywords.Intent.NONE:
            reason = (
                f"{keyword.keyword!r} is already read as {read.intent.value} ({read.rule or 'keyword'}): "
                "built-in keywords and what the classifier reads keep their meaning"
            )
            raise InvalidArgument([FieldViolation("keyword.keyword", reason)])
        stored = await self.store.set(keyword, normalised, actor)
        log.info(
            "custom keyword set",
            extra={"keyword": keyword.keyword, "scope": keyword.scope_key, "actor": actor},
        )
        await self.refresh()
        return stored

    async def remove(self, scope: Scope, scope_key: str, keyword: str, actor: str) -> bool:
        removed = await self.store.remove(scope, scope_key, _checked(keyword, "keyword"))
        log.info("custom keyword removed", extra={"keyword": keyword, "scope": scope_key, "actor": actor})
        await self.refresh()
        return removed

    async def find(self, scope: Scope | None, scope_key: str) -> list[CustomKeyword]:
        """The keywords of a shortcode or licence (scope None: all of them)."""
        return await self.store.find(scope, scope_key)

    async def refresh(self) -> None:
        """Reload the keywords if they changed since the last reload. One reload at a time, and never back
        to an older revision than the one held."""
        async with self._refreshing:
            if await self.store.revision() == self.book.revision:
                return
            revision, found = await self.store.everything()
            if revision > self.book.revision:
                self.book = KeywordBook(found, revision)

    async def follow(self) -> None:
        """Reload the keywords whenever they change, until cancelled (one task per server process)."""
        while True:
            try:
                async with asyncio.timeout(REFRESH_TIMEOUT_S):
                    await self.refresh()
            except Exception:  # PostgreSQL away: keep the keywords held, try again
                log.warning("could not refresh the custom keywords", exc_info=True)
            await asyncio.sleep(REFRESH_INTERVAL_S)


def _checked(keyword: str, field: str) -> str:
    """A keyword's normalised form, refused when the classifier could never match it."""
    normalised = keywords.normalise(keyword)
    if not normalised:
        raise InvalidArgument([FieldViolation(field, "must hold a letter or a digit")])
    if len(normalised.split()) > MAX_WORDS:
        raise InvalidArgument([FieldViolation(field, f"at most {MAX_WORDS} words")])
    return normalised
