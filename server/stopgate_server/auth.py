"""Who may call what. Every stopgate.v1 method needs a token (`authorization: Bearer <token>`) holding the
method's role and, when the token is limited to licences, the request's licence; checked before any work.
Health and reflection stay open (metrics are served on their own port)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import asyncpg
from google.protobuf.message import Message
from stopgate.v1 import common_pb2

from stopgate_server import caller
from stopgate_server.errors import PermissionDenied, Unauthenticated
from stopgate_server.store.tokens import (
    ROLES,
    TokenRecord,
    active_tokens,
    any_token,
    create_token,
    find_active_token,
    hash_token,
)

log = logging.getLogger(__name__)

INSECURE_WARNING = (
    "AUTHENTICATION IS OFF (--insecure-no-auth): any caller can read every licence's data and change "
    "any quarantine. Use it for local experiments only."
)
DEVELOPMENT_TOKEN_FILE = "dev-token"  # noqa: S105 - a file name, not a secret
PROTECTED_PREFIX = "/stopgate."
# Who may call each RPC. A stopgate method missing here needs admin: a new RPC stays closed until its role
# is decided (a test checks every RPC of the contracts is listed).
_ROLES_BY_SERVICE = {
    "QuarantineCheck": {
        "CheckBatch": "sender",
        "RecordSends": "sender",
        "GetNumberStatus": "reporting",
        "QuarantineNumbers": "admin",
        "ReleaseNumbers": "admin",
        "BindShortcode": "admin",
        "UnbindShortcode": "admin",
        "ListShortcodeBindings": "admin",
        "ErasePersonalData": "admin",
    },
    "StopIngest": {
        "StreamEvents": "ingest",
        "IngestEvent": "ingest",
        "ClassifyText": "ingest",
        "SetCustomKeyword": "admin",
        "ListCustomKeywords": "admin",
        "RemoveCustomKeyword": "admin",
    },
    "MessageCompliance": {
        "CheckMessage": "sender",
        "CheckMessages": "sender",
        "ListCountryPolicies": "sender",
    },
    "Reporting": {
        "GetCampaignReport": "reporting",
        "ListCampaignReports": "reporting",
        "ExportInteractions": "reporting",
        "ExportQuarantine": "reporting",
        "GetLicenceSummary": "reporting",
        "WatchBlocklistChanges": "reporting",
    },
}
METHOD_ROLES = {
    f"/stopgate.v1.{service}/{method}": role
    for service, methods in _ROLES_BY_SERVICE.items()
    for method, role in methods.items()
}
# Methods that need a token not limited to licences, and why. Ingest attributes a STOP to whichever
# licence last messaged the number (shared shortcodes). Shortcode bindings decide which stop lists the
# tokens limited to licences use and see: a limited token binding its own would undo that.
_ATTRIBUTES_ACROSS_LICENCES = "attributes STOPs across licences"
_DECIDES_WHAT_LICENCES_SEE = "decides which shortcodes each licence uses and sees"
_UNLIMITED_TOKEN_METHODS = {
    "/stopgate.v1.StopIngest/StreamEvents": _ATTRIBUTES_ACROSS_LICENCES,
    "/stopgate.v1.StopIngest/IngestEvent": _ATTRIBUTES_ACROSS_LICENCES,
    "/stopgate.v1.QuarantineCheck/BindShortcode": _DECIDES_WHAT_LICENCES_SEE,
    "/stopgate.v1.QuarantineCheck/UnbindShortcode": _DECIDES_WHAT_LICENCES_SEE,
    "/stopgate.v1.QuarantineCheck/ListShortcodeBindings": _DECIDES_WHAT_LICENCES_SEE,
}


# Custom keywords: a token limited to licences manages its licences' keywords only. A shortcode's keywords
# apply to every licence sending from it, and a list that names no licence shows every licence's. An opt-in
# keyword of a licence releases whichever licence the reply is attributed to (shared shortcodes): only a
# token not limited to licences may add one.
_OWN_LICENCE_METHODS = frozenset(
    f"/stopgate.v1.StopIngest/{method}"
    for method in ("SetCustomKeyword", "ListCustomKeywords", "RemoveCustomKeyword")
)


# Erasure: a token limited to licences erases a number's data within one of its licences, named as licence_id;
# erasing it in every licence would reach other licences' data.
_NAMED_LICENCE_METHODS = frozenset({"/stopgate.v1.QuarantineCheck/ErasePersonalData"})


def role_for(method: str) -> str | None:
    """The role a method needs ("/pkg.Service/Method"); None for the open ones (health, reflection)."""
    if not method.startswith(PROTECTED_PREFIX):
        return None
    return METHOD_ROLES.get(method, "admin")


def bearer_token(metadata: Iterable[tuple[str, Any]] | None) -> str | None:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


class TokenRegistry:
    """The active tokens, in memory, reloaded from PostgreSQL every `refresh_s`: a revocation takes effect
    on every process within that. A token not in memory is looked up once (a token created a moment ago
    works at once) and, when unknown, remembered as such until the next reload (bounded), so a caller
    repeating a bad token costs no query."""

    MAX_UNKNOWN = 10_000

    def __init__(self, pool: asyncpg.Pool, refresh_s: float = 5.0) -> None:
        self.pool = pool
        self.refresh_s = refresh_s
        self._by_hash: dict[str, TokenRecord] = {}
        self._unknown: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.reload()
        self._task = asyncio.create_task(self._reload_periodically(), name="token reload")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def reload(self) -> None:
        async with self.pool.acquire() as connection:
            self._by_hash = await active_tokens(connection)
        self._unknown.clear()

    async def find(self, token: str) -> TokenRecord | None:
        key = hash_token(token)
        record = self._by_hash.get(key)
        if record is not None or key in self._unknown:
            return record
        async with self.pool.acquire() as connection:
            record = await find_active_token(connection, key)
        if record is not None:
            self._by_hash[key] = record
        elif len(self._unknown) < self.MAX_UNKNOWN:
            self._unknown.add(key)
        return record

    async def _reload_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                await self.reload()
            except Exception as exc:  # keep the tokens we know; the database may be back next round
                log.warning("token reload failed: %s", type(exc).__name__)


class Authoriser:
    """Checks calls against the registry; with no registry (`--insecure-no-auth`) every call passes."""

    def __init__(self, registry: TokenRegistry | None) -> None:
        self.registry = registry

    async def check(
        self, method: str, metadata: Iterable[tuple[str, Any]] | None, request: Any
    ) -> TokenRecord | None:
        """Raise Unauthenticated or PermissionDenied unless the call may proceed, and note for the call
        the licences its token is limited to (stopgate_server.caller); the token that allowed it (None for
        an open method, or without authentication). `request` is the request message of a unary-request
        call (None for a request stream: no stopgate request stream carries a licence_id)."""
        role = role_for(method)
        if role is None or self.registry is None:
            return None
        token = bearer_token(metadata)
        if token is None:
            raise Unauthenticated("missing token: send `authorization: Bearer <token>`")
        record = await self.registry.find(token)
        if record is None:
            raise Unauthenticated("unknown or revoked token")
        if role not in record.roles:
            raise PermissionDenied(f"token {record.name!r} lacks the role {role!r} that {method} needs")
        if not record.licences:
            return record
        if method in _UNLIMITED_TOKEN_METHODS:
            raise PermissionDenied(
                f"{method} {_UNLIMITED_TOKEN_METHODS[method]}: it needs a token not limited to licences"
            )
        licence = _licence_of(request) if request is not None else ""
        if licence and licence not in record.licences:
            raise PermissionDenied(f"token {record.name!r} may not act for licence {licence!r}")
        if method in _NAMED_LICENCE_METHODS and not licence:
            raise PermissionDenied(
                f"token {record.name!r} is limited to licences: name one of them as licence_id, not every"
                " licence"
            )
        if method in _OWN_LICENCE_METHODS and (not licence or _names_a_shortcode(request)):
            raise PermissionDenied(
                f"token {record.name!r} is limited to licences: name one as licence_id, and no shortcode"
            )
        if method in _OWN_LICENCE_METHODS and _adds_an_opt_in(request):
            raise PermissionDenied(
                f"token {record.name!r} is limited to licences: an opt-in keyword can release other licences"
            )
        # Servicers hold the call to the shortcodes bound to these licences (stopgate_server.caller).
        caller.set_limited_to(record.licences)
        return record


async def offer_development_token(pool: asyncpg.Pool, data_dir: Path) -> None:
    """On a private development database without any token, create one with every role, save it in
    DATA_DIR/dev-token (readable by its owner only) and print it with how to use it. The token goes to
    the terminal, never to the JSON log."""
    path = data_dir / DEVELOPMENT_TOKEN_FILE
    async with pool.acquire() as connection:
        if await any_token(connection):
            if path.exists():
                log.info("development token available", extra={"file": str(path)})
            return
        _, token = await create_token(connection, "development", ROLES)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(token + "\n")
    log.info("development token created", extra={"file": str(path)})
    print(
        f"\nCreated a development token with every role, saved in {path}:\n\n    {token}\n\n"
        "Use it with the client and the CLI:\n\n"
        f"    export STOPGATE_TOKEN=$(cat {path})\n"
        "    .venv/bin/stopgate-cli classify STOP\n\n"
        "Create tokens for real callers with `stopgate token create NAME --role ROLE`.\n",
        file=sys.stderr,
        flush=True,
    )


def _names_a_shortcode(request: Message) -> bool:
    """Whether a custom-keyword request is about a shortcode (its own field, or its keyword's)."""
    keyword = getattr(request, "keyword", None)
    return bool(getattr(request, "shortcode", "") or getattr(keyword, "shortcode", ""))


def _adds_an_opt_in(request: Message) -> bool:
    keyword = getattr(request, "keyword", None)
    return getattr(keyword, "intent", None) == common_pb2.INTENT_OPT_IN


def _licence_of(request: Message) -> str:
    """The request's licence_id ("" when it has none; the servicer's validation rejects a missing one)."""
    if "licence_id" in request.DESCRIPTOR.fields_by_name:
        return str(getattr(request, "licence_id"))  # noqa: B009 - the field is looked up by name
    return ""
