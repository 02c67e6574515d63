"""API tokens in PostgreSQL. A token is shown once, when created; only its SHA-256 is stored."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from stopgate_server.store import DbConnection
from stopgate_server.store.queries import QUERIES

ROLES = ("sender", "ingest", "reporting", "admin")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}")
_LICENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


class TokenError(ValueError):
    """A token cannot be created or revoked as asked; the message says why."""


@dataclass(frozen=True)
class TokenRecord:
    """A token as `stopgate token list` shows it (never the token itself)."""

    token_id: str
    name: str
    roles: tuple[str, ...]
    licences: tuple[str, ...]  # empty: every licence
    created_at: datetime | None = None
    revoked_at: datetime | None = None


def hash_token(token: str) -> str:
    """What is stored and looked up: tokens are 256 random bits, so a fast hash is as safe as a slow one."""
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(
    connection: DbConnection, name: str, roles: Sequence[str], licences: Sequence[str] = ()
) -> tuple[TokenRecord, str]:
    """Create a token; return its record and the token, which cannot be read back later."""
    if not _NAME.fullmatch(name):
        raise TokenError("name: 1 to 64 letters, digits and . _ : @ - (starting with a letter or digit)")
    unknown = sorted(set(roles) - set(ROLES))
    if not roles or unknown:
        raise TokenError(f"roles: one or more of {', '.join(ROLES)} (got {', '.join(unknown) or 'none'})")
    bad = [licence for licence in licences if not _LICENCE.fullmatch(licence)]
    if bad:
        raise TokenError(f"licences: not a licence id: {', '.join(bad)}")
    record = TokenRecord(
        token_id="tok_" + secrets.token_hex(6),
        name=name,
        roles=tuple(role for role in ROLES if role in roles),
        licences=tuple(sorted(set(licences))),
    )
    token = "sg_" + secrets.token_urlsafe(32)
    try:
        await connection.execute(
            *QUERIES["create_token"].bind(
                token_id=record.token_id,
                name=record.name,
                token_hash=hash_token(token),
                roles=list(record.roles),
                licences=list(record.licences),
            )
        )
    except asyncpg.UniqueViolationError:
        message = f"an active token is already named {name!r}: revoke it first, or pick another name"
        raise TokenError(message) from None
    return record, token


async def list_tokens(connection: DbConnection) -> list[TokenRecord]:
    rows = await connection.fetch(QUERIES["list_tokens"].sql)
    return [
        TokenRecord(
            r["token_id"],
            r["name"],
            tuple(r["roles"]),
            tuple(r["licences"]),
            r["created_at"],
            r["revoked_at"],
        )
        for r in rows
    ]


async def revoke_token(connection: DbConnection, token_id_or_name: str) -> str:
    """Revoke the active token with this id or name; return its id."""
    row = await connection.fetchrow(*QUERIES["revoke_token"].bind(token_id_or_name=token_id_or_name))
    if row is None:
        raise TokenError(f"no active token has the id or name {token_id_or_name!r}")
    return str(row["token_id"])


async def active_tokens(connection: DbConnection) -> dict[str, TokenRecord]:
    """Every active token, by hash."""
    rows = await connection.fetch(QUERIES["active_tokens"].sql)
    return {
        r["token_hash"]: TokenRecord(r["token_id"], r["name"], tuple(r["roles"]), tuple(r["licences"]))
        for r in rows
    }


async def find_active_token(connection: DbConnection, token_hash: str) -> TokenRecord | None:
    row = await connection.fetchrow(*QUERIES["token_by_hash"].bind(token_hash=token_hash))
    return _record(row) if row else None


async def any_token(connection: DbConnection) -> bool:
    return bool(await connection.fetchval(QUERIES["any_token"].sql))


def _record(
    row: asyncpg.Record, created_at: datetime | None = None, revoked_at: datetime | None = None
) -> TokenRecord:
    return TokenRecord(
        row["token_id"], row["name"], tuple(row["roles"]), tuple(row["licences"]), created_at, revoked_at
    )
