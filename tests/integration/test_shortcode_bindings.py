"""Shortcodes bound to the licences that use them: a token limited to licences checks, records, classifies
and sees stop lists only through the shortcodes bound to its licence; tokens not limited to licences are not
affected; only admins not limited to licences manage the bindings, and every server applies them within
seconds. Against a real PostgreSQL, an in-process server and a second `stopgate serve`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import grpc
import pytest
from clients import EitherClient
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from stopgate.v1 import (
    common_pb2,
    quarantine_check_pb2,
    quarantine_check_pb2_grpc,
    stop_ingest_pb2,
    stop_ingest_pb2_grpc,
)
from stopgate_server.app import Application
from stopgate_server.store.tokens import ROLES

pb = quarantine_check_pb2
PHONE = "+33612345678"
BOUND, UNBOUND = "36180", "60999"


@pytest.fixture
def admin(channel: grpc.aio.Channel) -> Any:
    """QuarantineCheck with the test token: every role, every licence."""
    return quarantine_check_pb2_grpc.QuarantineCheckStub(channel)


@pytest.fixture
async def as_acme(app: Application, tokens: Any) -> AsyncIterator[Any]:
    """QuarantineCheck and StopIngest stubs whose calls carry a token with every role, limited to acme."""
    token = await tokens(*ROLES, licences=("acme",))
    metadata = (("authorization", f"Bearer {token}"),)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
        checks = quarantine_check_pb2_grpc.QuarantineCheckStub(channel)
        ingest = stop_ingest_pb2_grpc.StopIngestStub(channel)
        yield checks, ingest, metadata


async def stop_to(channel: grpc.aio.Channel, shortcode: str, event_id: str) -> None:
    """A STOP from PHONE to `shortcode`, ingested with the test token (no send: it reaches the stop list
    only, unattributed)."""
    event = stop_ingest_pb2.InboundEvent(
        event_id=event_id,
        source=common_pb2.EVENT_SOURCE_SMS_REPLY,
        phone_number=PHONE,
        recipient=shortcode,
        text="STOP",
    )
    ingest = stop_ingest_pb2_grpc.StopIngestStub(channel)
    await ingest.IngestEvent(stop_ingest_pb2.IngestEventRequest(event=event), timeout=10)


def check_request(licence: str, sender: common_pb2.Sender, campaign: str = "") -> pb.CheckBatchRequest:
    return pb.CheckBatchRequest(
        licence_id=licence,
        sender=sender,
        category=common_pb2.MESSAGE_CATEGORY_MARKETING,
        phone_numbers=[PHONE],
        campaign_id=campaign,
    )


def error_reason(error: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return str(info.reason)
    return ""


def violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
    status = rpc_status.from_call(error)
    assert status is not None
    found: dict[str, str] = {}
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            request = error_details_pb2.BadRequest()
            detail.Unpack(request)
            found |= {v.field: v.description for v in request.field_violations}
    return found


async def bind(admin: Any, licence: str, shortcode: str) -> None:
    await admin.BindShortcode(
        pb.BindShortcodeRequest(licence_id=licence, shortcode=shortcode, actor="ops"), timeout=10
    )


async def test_a_limited_sender_checks_only_through_bound_shortcodes(
    channel: grpc.aio.Channel, admin: Any, as_acme: Any, db: asyncpg.Connection
) -> None:
    checks, _, metadata = as_acme
    await stop_to(channel, UNBOUND, "evt-unbound")
    await bind(admin, "acme", BOUND)
    for sender, field in (
        (common_pb2.Sender(address=UNBOUND), "sender.address"),
        (common_pb2.Sender(address="ACME", reply_shortcode=UNBOUND), "sender.reply_shortcode"),
    ):
        for call in (
            checks.CheckBatch(check_request("acme", sender), metadata=metadata, timeout=10),
            checks.CheckBatch(check_request("acme", sender, "spring"), metadata=metadata, timeout=10),
            checks.RecordSends(
                pb.RecordSendsRequest(
                    licence_id="acme", campaign_id="spring", sender=sender, phone_numbers=[PHONE]
                ),
                metadata=metadata,
                timeout=10,
            ),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as denied:
                await call
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert error_reason(denied.value) == "SHORTCODE_NOT_BOUND"
            message = denied.value.details() or ""
            assert message.startswith(f"{field}: shortcode {UNBOUND} is not bound to licence acme")
            assert f"stopgate-cli shortcode-bind acme {UNBOUND}" in message
    assert await db.fetchval("SELECT count(*) FROM sends") == 0  # nothing recorded by a denied call

    # Its own shortcode, an alias routed through it, and an alias or longcode without a shortcode are fine.
    for sender in (
        common_pb2.Sender(address=BOUND),
        common_pb2.Sender(address="ACME", reply_shortcode=BOUND),
        common_pb2.Sender(address="ACME"),
        common_pb2.Sender(address="+447700900123"),
    ):
        allowed = await checks.CheckBatch(check_request("acme", sender), metadata=metadata, timeout=10)
        assert allowed.allowed_count == 1

    # A token not limited to licences keeps today's behaviour: the stop list blocks it.
    unlimited = await admin.CheckBatch(check_request("acme", common_pb2.Sender(address=UNBOUND)), timeout=10)
    assert (unlimited.results[0].verdict, unlimited.results[0].reason) == (
        pb.VERDICT_BLOCK,
        pb.CHECK_REASON_SHORTCODE_STOP_LIST,
    )

    # Bound a moment ago, on this server: usable at once, and its stop list applies.
    await bind(admin, "acme", UNBOUND)
    checked = await checks.CheckBatch(
        check_request("acme", common_pb2.Sender(address=UNBOUND)), metadata=metadata, timeout=10
    )
    assert checked.results[0].reason == pb.CHECK_REASON_SHORTCODE_STOP_LIST


async def test_number_status_shows_a_limited_reader_only_bound_stop_lists(
    channel: grpc.aio.Channel, admin: Any, as_acme: Any
) -> None:
    checks, _, metadata = as_acme
    await stop_to(channel, UNBOUND, "evt-secret")
    await stop_to(channel, BOUND, "evt-own")
    request = pb.GetNumberStatusRequest(licence_id="acme", phone_number=PHONE)

    before = await checks.GetNumberStatus(request, metadata=metadata, timeout=10)
    assert list(before.stop_lists) == []
    assert list(before.history) == []
    assert b"evt-secret" not in before.SerializeToString()

    await bind(admin, "acme", BOUND)
    bound = await checks.GetNumberStatus(request, metadata=metadata, timeout=10)
    assert [(e.shortcode, e.event_id) for e in bound.stop_lists] == [(BOUND, "evt-own")]
    assert [(h.shortcode, h.event_id) for h in bound.history] == [(BOUND, "evt-own")]
    assert b"evt-secret" not in bound.SerializeToString()

    everything = await admin.GetNumberStatus(request, timeout=10)  # not limited: every stop list
    assert sorted(e.event_id for e in everything.stop_lists) == ["evt-own", "evt-secret"]
    assert sorted(h.event_id for h in everything.history) == ["evt-own", "evt-secret"]


async def test_classify_text_names_only_a_bound_shortcode(app: Application, admin: Any, tokens: Any) -> None:
    token = await tokens("ingest", licences=("acme", "globex"))
    metadata = (("authorization", f"Bearer {token}"),)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as limited_channel:
        ingest = stop_ingest_pb2_grpc.StopIngestStub(limited_channel)

        async def classify(**fields: str) -> str:
            """ "OK", or the code and ErrorInfo reason of the refusal."""
            request = stop_ingest_pb2.ClassifyTextRequest(text="STOP", **fields)
            try:
                await ingest.ClassifyText(request, metadata=metadata, timeout=10)
            except grpc.aio.AioRpcError as error:
                return f"{error.code().name} {error_reason(error)}"
            return "OK"

        denied = "PERMISSION_DENIED SHORTCODE_NOT_BOUND"
        assert await classify() == "OK"
        assert await classify(shortcode=BOUND) == denied
        assert await classify(shortcode=BOUND, licence_id="acme") == denied
        await bind(admin, "acme", BOUND)
        assert await classify(shortcode=BOUND) == "OK"  # bound to one of its licences
        assert await classify(shortcode=BOUND, licence_id="acme") == "OK"
        assert await classify(shortcode=BOUND, licence_id="globex") == denied
        assert await classify(shortcode="３６１８０", licence_id="acme") == "OK"  # read as ASCII


async def test_only_admins_not_limited_to_licences_manage_bindings(admin: Any, as_acme: Any) -> None:
    checks, _, metadata = as_acme  # every role, admin included, but limited to acme
    for call in (
        checks.BindShortcode(
            pb.BindShortcodeRequest(licence_id="acme", shortcode=UNBOUND, actor="x"), metadata=metadata
        ),
        checks.UnbindShortcode(
            pb.UnbindShortcodeRequest(licence_id="acme", shortcode=BOUND, actor="x"), metadata=metadata
        ),
        checks.ListShortcodeBindings(pb.ListShortcodeBindingsRequest(licence_id="acme"), metadata=metadata),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await call
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "needs a token not limited to licences" in (denied.value.details() or "")
    listed = await admin.ListShortcodeBindings(pb.ListShortcodeBindingsRequest(), timeout=10)
    assert list(listed.bindings) == []


@pytest.mark.parametrize(
    ("request_fields", "expected"),
    [
        ({}, {"licence_id": "required", "shortcode": "required", "actor": "required"}),
        (
            {"licence_id": "a b", "shortcode": "12", "actor": "ops"},
            {
                "licence_id": "must be 1 to 64 letters, digits or ._:- starting with a letter or digit",
                "shortcode": "must be a shortcode of 3 to 8 digits",
            },
        ),
    ],
)
async def test_bind_and_unbind_name_each_bad_field(
    admin: Any, request_fields: dict[str, str], expected: dict[str, str]
) -> None:
    for call in (
        admin.BindShortcode(pb.BindShortcodeRequest(**request_fields), timeout=10),
        admin.UnbindShortcode(pb.UnbindShortcodeRequest(**request_fields), timeout=10),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violations(refused.value) == expected
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await admin.ListShortcodeBindings(pb.ListShortcodeBindingsRequest(shortcode="1234567890"), timeout=10)
    assert violations(refused.value) == {"shortcode": "must be a shortcode of 3 to 8 digits"}


async def test_bind_list_and_unbind_with_the_client(client: EitherClient) -> None:
    bound = await client.call("bind_shortcode", "acme", "３６１８０", actor="ana")  # fullwidth digits
    assert (bound.binding.licence_id, bound.binding.shortcode, bound.binding.bound_by) == (
        "acme",
        "36180",
        "ana",
    )
    assert bound.created
    again = await client.call("bind_shortcode", "acme", "36180", actor="bo")
    assert (again.created, again.binding.bound_by) == (False, "ana")  # unchanged
    await client.call("bind_shortcode", "globex", "36180", actor="ana")
    await client.call("bind_shortcode", "acme", "60999", actor="ana")

    def pairs(listed: Any) -> list[tuple[str, str]]:
        return [(b.licence_id, b.shortcode) for b in listed.bindings]

    assert pairs(await client.call("list_shortcode_bindings", licence_id="acme")) == [
        ("acme", "36180"),
        ("acme", "60999"),
    ]
    assert pairs(await client.call("list_shortcode_bindings", shortcode="36180")) == [
        ("acme", "36180"),
        ("globex", "36180"),
    ]
    assert len((await client.call("list_shortcode_bindings")).bindings) == 3
    assert (await client.call("unbind_shortcode", "acme", "36180", actor="ana")).removed
    assert not (await client.call("unbind_shortcode", "acme", "36180", actor="ana")).removed
    assert pairs(await client.call("list_shortcode_bindings", licence_id="acme")) == [("acme", "60999")]


async def test_every_server_applies_a_change_within_five_seconds(
    admin: Any, database_url: str, tokens: Any, spawn_server: Any
) -> None:
    other = spawn_server("--database-url", database_url)  # another server process on the same database
    serving = await asyncio.to_thread(other.wait_for, "serving")
    token = await tokens("sender", licences=("acme",))
    metadata = (("authorization", f"Bearer {token}"),)
    request = check_request("acme", common_pb2.Sender(address=BOUND))
    async with grpc.aio.insecure_channel(serving["grpc_addr"]) as channel:
        elsewhere = quarantine_check_pb2_grpc.QuarantineCheckStub(channel)

        async def outcome() -> str:
            """ "OK", or the ErrorInfo reason of the refusal."""
            try:
                await elsewhere.CheckBatch(request, metadata=metadata, timeout=10)
            except grpc.aio.AioRpcError as error:
                return error_reason(error)
            return "OK"

        async def until(expected: str, what: str) -> None:
            started = time.monotonic()
            while await outcome() != expected:
                assert time.monotonic() - started < 5, f"the other server did not apply the {what} in 5 s"
                await asyncio.sleep(0.1)

        assert await outcome() == "SHORTCODE_NOT_BOUND"
        await bind(admin, "acme", BOUND)
        await until("OK", "binding")
        unbind = pb.UnbindShortcodeRequest(licence_id="acme", shortcode=BOUND, actor="ops")
        await admin.UnbindShortcode(unbind, timeout=10)
        await until("SHORTCODE_NOT_BOUND", "unbinding")
