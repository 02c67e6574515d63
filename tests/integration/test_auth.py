"""Authentication and authorisation of every RPC: tokens, roles and licences, checked before any work."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import grpc
import pytest
from contracts import ENDLESS_STREAMS, METHOD_IDS, METHODS
from grpc_health.v1 import health_pb2, health_pb2_grpc
from processes import STOPGATE, run
from stopgate.v1 import (
    common_pb2,
    quarantine_check_pb2,
    quarantine_check_pb2_grpc,
    reporting_pb2,
    stop_ingest_pb2,
)
from stopgate_server.app import Application
from stopgate_server.auth import METHOD_ROLES, role_for
from stopgate_server.store.tokens import ROLES

AUTH_CODES = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


async def call(
    channel: grpc.aio.Channel, path: str, method: Any, token: str | None, request: bytes = b""
) -> grpc.StatusCode:
    """The status of one call of `path` with an empty (or given) serialized request."""
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    identity = (lambda raw: raw), (lambda raw: raw)
    try:
        if method.client_streaming:
            stream: Any = channel.stream_stream(path, *identity)(
                iter([request]), metadata=metadata, timeout=10
            )
            async for _ in stream:
                pass
        elif method.server_streaming:
            rows = channel.unary_stream(path, *identity)(request, metadata=metadata, timeout=10)
            async for _ in rows:
                if path in ENDLESS_STREAMS:  # it answered: the call was allowed
                    rows.cancel()
                    break
        else:
            await channel.unary_unary(path, *identity)(request, metadata=metadata, timeout=10)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


@pytest.fixture
async def raw_channel(app: Application) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
        yield channel


def test_every_rpc_has_a_decided_role() -> None:
    assert set(METHOD_ROLES) == {path for path, _ in METHODS}
    assert role_for("/stopgate.v1.QuarantineCheck/SomethingNew") == "admin"  # closed until decided
    assert role_for("/grpc.health.v1.Health/Check") is None


@pytest.mark.parametrize(("path", "method"), METHODS, ids=METHOD_IDS)
async def test_every_rpc_needs_a_token_with_its_role(
    raw_channel: grpc.aio.Channel, tokens: Any, path: str, method: Any
) -> None:
    role = role_for(path)
    assert role in ROLES
    assert await call(raw_channel, path, method, None) == grpc.StatusCode.UNAUTHENTICATED
    assert await call(raw_channel, path, method, "sg_not-a-real-token") == grpc.StatusCode.UNAUTHENTICATED
    others = await tokens(*[r for r in ROLES if r != role])
    assert await call(raw_channel, path, method, others) == grpc.StatusCode.PERMISSION_DENIED
    allowed = await tokens(role)
    assert await call(raw_channel, path, method, allowed) not in AUTH_CODES


async def test_denied_calls_change_nothing(raw_channel: grpc.aio.Channel, tokens: Any, db: Any) -> None:
    sender = await tokens("sender", "reporting", "ingest")
    request = quarantine_check_pb2.QuarantineNumbersRequest(
        licence_id="acme", phone_numbers=["+33612345678"], actor="x", reason="y"
    ).SerializeToString()
    path, method = next((p, m) for p, m in METHODS if p.endswith("/QuarantineNumbers"))
    assert await call(raw_channel, path, method, sender, request) == grpc.StatusCode.PERMISSION_DENIED
    assert await db.fetchval("SELECT count(*) FROM quarantine") == 0
    assert await db.fetchval("SELECT count(*) FROM number_history") == 0


async def test_a_token_limited_to_licences_sees_only_those(
    raw_channel: grpc.aio.Channel, channel: grpc.aio.Channel, tokens: Any
) -> None:
    limited = await tokens(*ROLES, licences=("acme",))
    bind = quarantine_check_pb2.BindShortcodeRequest(licence_id="acme", shortcode="36180", actor="ops")
    await quarantine_check_pb2_grpc.QuarantineCheckStub(channel).BindShortcode(bind, timeout=10)
    stub = quarantine_check_pb2_grpc.QuarantineCheckStub(raw_channel)
    metadata = (("authorization", f"Bearer {limited}"),)

    def check(licence: str) -> Any:
        return stub.CheckBatch(
            quarantine_check_pb2.CheckBatchRequest(
                licence_id=licence,
                sender=common_pb2.Sender(address="36180"),
                category=common_pb2.MESSAGE_CATEGORY_MARKETING,
                phone_numbers=["+33612345678"],
            ),
            metadata=metadata,
        )

    assert (await check("acme")).allowed_count == 1
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await check("globex")
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "globex" in (denied.value.details() or "")

    by_name = dict(METHODS)
    export = reporting_pb2.ExportQuarantineRequest(licence_id="globex").SerializeToString()
    path = "/stopgate.v1.Reporting/ExportQuarantine"
    assert await call(raw_channel, path, by_name[path], limited, export) == grpc.StatusCode.PERMISSION_DENIED
    # Ingest attributes STOPs across licences: limited tokens may not use it; the dry-run classifier is fine.
    for path in ("/stopgate.v1.StopIngest/StreamEvents", "/stopgate.v1.StopIngest/IngestEvent"):
        assert await call(raw_channel, path, by_name[path], limited) == grpc.StatusCode.PERMISSION_DENIED
    classify = stop_ingest_pb2.ClassifyTextRequest(text="STOP").SerializeToString()
    path = "/stopgate.v1.StopIngest/ClassifyText"
    assert await call(raw_channel, path, by_name[path], limited, classify) == grpc.StatusCode.OK


async def test_health_and_reflection_stay_open(raw_channel: grpc.aio.Channel) -> None:
    reply = await health_pb2_grpc.HealthStub(raw_channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_token_command_creates_lists_and_revokes(
    raw_channel: grpc.aio.Channel, app: Application, database_url: str
) -> None:
    database = ["--database-url", database_url]
    created = await run(STOPGATE, "token", "create", "billing", "--role", "ingest", *database)
    assert created.code == 0, created.err
    token = created.out.strip()
    assert token.startswith("sg_")
    assert "cannot be shown again" in created.err
    path = "/stopgate.v1.StopIngest/ClassifyText"
    request = stop_ingest_pb2.ClassifyTextRequest(text="STOP").SerializeToString()
    method = dict(METHODS)[path]
    assert await call(raw_channel, path, method, token, request) == grpc.StatusCode.OK  # at once

    listed = await run(STOPGATE, "token", "list", *database)
    assert [line.split("\t")[1:] for line in listed.out.splitlines() if "billing" in line] == [
        ["billing", "roles ingest; every licence", "active"]
    ]
    again = await run(STOPGATE, "token", "create", "billing", "--role", "ingest", *database)
    assert (again.code, again.err.splitlines()[-1]) == (
        1,
        "stopgate: an active token is already named 'billing': revoke it first, or pick another name",
    )
    revoked = await run(STOPGATE, "token", "revoke", "billing", *database)
    assert revoked.out.startswith("revoked tok_")
    for _ in range(80):  # every process reloads its tokens within 5 s
        if await call(raw_channel, path, method, token, request) == grpc.StatusCode.UNAUTHENTICATED:
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("a revoked token still works after 8 s")
    stored = await asyncpg.connect(database_url)
    try:
        assert token not in str(await stored.fetch("SELECT * FROM api_tokens"))  # only its hash is kept
    finally:
        await stored.close()
