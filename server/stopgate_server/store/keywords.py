"""Custom keywords in PostgreSQL: what admins added to a shortcode or a licence, and the revision that
tells each server process when to reload them."""

from __future__ import annotations

import json

import asyncpg

from stopgate_server.domain.custom_keywords import CustomKeyword, Scope
from stopgate_server.domain.keywords import Intent
from stopgate_server.store.queries import QUERIES


class KeywordStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def set(self, keyword: CustomKeyword, normalised: str, actor: str) -> tuple[CustomKeyword, bool]:
        """Add or replace a keyword; return it as stored, and whether it was added."""
        row = await self.pool.fetchrow(
            *QUERIES["set_custom_keyword"].bind(
                scope=keyword.scope.value,
                scope_key=keyword.scope_key,
                keyword=normalised,
                written=keyword.keyword,
                intent=keyword.intent.value,
                replies=json.dumps(keyword.replies),
                actor=actor,
            )
        )
        assert row is not None  # an INSERT ... ON CONFLICT DO UPDATE returns its row
        return _keyword(row), bool(row["created"])

    async def remove(self, scope: Scope, scope_key: str, normalised: str) -> bool:
        removed = await self.pool.fetchval(
            *QUERIES["remove_custom_keyword"].bind(scope=scope.value, scope_key=scope_key, keyword=normalised)
        )
        return bool(removed)

    async def find(self, scope: Scope | None, scope_key: str) -> list[CustomKeyword]:
        """The keywords of a shortcode or licence (scope None: all of them)."""
        rows = await self.pool.fetch(
            *QUERIES["list_custom_keywords"].bind(scope=scope.value if scope else "", scope_key=scope_key)
        )
        return [_keyword(row) for row in rows]

    async def revision(self) -> int:
        """A number that moves with every committed change."""
        return int(await self.pool.fetchval(QUERIES["custom_keywords_revision"].sql))

    async def everything(self) -> tuple[int, list[CustomKeyword]]:
        """Every keyword, and the revision they are at (read in one snapshot)."""
        async with self.pool.acquire() as connection, connection.transaction(isolation="repeatable_read"):
            revision = await connection.fetchval(QUERIES["custom_keywords_revision"].sql)
            rows = await connection.fetch(QUERIES["all_custom_keywords"].sql)
        return int(revision), [_keyword(row) for row in rows]


def _keyword(row: asyncpg.Record) -> CustomKeyword:
    return CustomKeyword(
        keyword=row["written"],
        intent=Intent(row["intent"]),
        scope=Scope(row["scope"]),
        scope_key=row["scope_key"],
        replies=json.loads(row["replies"]) if isinstance(row["replies"], str) else dict(row["replies"]),
        updated_at=row.get("updated_at"),
        updated_by=row.get("updated_by", ""),
    )
