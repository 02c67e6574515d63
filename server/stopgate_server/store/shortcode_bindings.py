"""Shortcode bindings in PostgreSQL, and the revision that tells each server process when to reload them."""

from __future__ import annotations

import asyncpg

from stopgate_server.domain.shortcode_bindings import Binding
from stopgate_server.store.queries import QUERIES


class BindingStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def bind(self, licence_id: str, shortcode: str, actor: str) -> tuple[Binding, bool]:
        """Bind unless bound already; return the binding as stored and whether it was added."""
        while True:  # another turn only if a concurrent bind and unbind of this very pair came in between
            row = await self.pool.fetchrow(
                *QUERIES["bind_shortcode"].bind(licence_id=licence_id, shortcode=shortcode, actor=actor)
            )
            if row is not None:
                return _binding(row), bool(row["created"])
            # Added by a concurrent bind after this statement's snapshot: read it now (unless unbound since).
            found = await self.find(licence_id, shortcode)
            if found:
                return found[0], False

    async def unbind(self, licence_id: str, shortcode: str) -> bool:
        removed = await self.pool.fetchval(
            *QUERIES["unbind_shortcode"].bind(licence_id=licence_id, shortcode=shortcode)
        )
        return bool(removed)

    async def find(self, licence_id: str, shortcode: str) -> list[Binding]:
        """The bindings of a licence and of a shortcode ("" for any)."""
        rows = await self.pool.fetch(
            *QUERIES["list_shortcode_bindings"].bind(licence_id=licence_id, shortcode=shortcode)
        )
        return [_binding(row) for row in rows]

    async def revision(self) -> int:
        """A number that moves with every committed change."""
        return int(await self.pool.fetchval(QUERIES["shortcode_licences_revision"].sql))

    async def everything(self) -> tuple[int, list[tuple[str, str]]]:
        """Every (licence, shortcode) pair, and the revision they are at (read in one snapshot)."""
        async with self.pool.acquire() as connection, connection.transaction(isolation="repeatable_read"):
            revision = await connection.fetchval(QUERIES["shortcode_licences_revision"].sql)
            rows = await connection.fetch(QUERIES["all_shortcode_licences"].sql)
        return int(revision), [(row["licence_id"], row["shortcode"]) for row in rows]


def _binding(row: asyncpg.Record) -> Binding:
    return Binding(row["licence_id"], row["shortcode"], row["bound_at"], row["bound_by"])
