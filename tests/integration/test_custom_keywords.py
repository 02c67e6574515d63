"""Custom keywords: admins add opt-out, opt-in and help keywords (with replies) to a shortcode or a licence;
ingest and ClassifyText apply them, every server within seconds; built-in keywords keep their meaning.
Against a real PostgreSQL and in-process servers."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from stopgate.v1 import common_pb2, stop_ingest_pb2, stop_ingest_pb2_grpc
from stopgate_server.app import Application
from stopgate_server.store.tokens import create_token

pb = stop_ingest_pb2
OPT_OUT, OPT_IN, HELP = common_pb2.INTENT_OPT_OUT, common_pb2.INTENT_OPT_IN, common_pb2.INTENT_HELP
BRAND_STOP = "Zorglub fini"  # no language's keyword: an admin's own
PHONE = "+33612345678"


@pytest.fixture
def ingest(channel: grpc.aio.Channel) -> Any:
    return stop_ingest_pb2_grpc.StopIngestStub(channel)


def keyword(text: str, intent: Any, **scope: Any) -> pb.SetCustomKeywordRequest:
    replies = scope.pop("replies", {})
    return pb.SetCustomKeywordRequest(
        keyword=common_pb2.CustomKeyword(keyword=text, intent=intent, replies=replies, **scope),
        actor="ops@example.com",
        licence_id=scope.get("licence_id", ""),
    )


async def classify(ingest: Any, text: str, **scope: str) -> pb.ClassifyTextResponse:
    response: pb.ClassifyTextResponse = await ingest.ClassifyText(
        pb.ClassifyTextRequest(text=text, country="FR", **scope), timeout=10
    )
    return response


async def stop(ingest: Any, text: str, event_id: str, **fields: Any) -> pb.EventAck:
    event = pb.InboundEvent(
        event_id=event_id,
        source=common_pb2.EVENT_SOURCE_SMS_REPLY,
        phone_number=PHONE,
        text=text,
        **fields,
    )
    response = await ingest.IngestEvent(pb.IngestEventRequest(event=event), timeout=10)
    ack: pb.EventAck = response.ack
    return ack


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


async def test_a_shortcode_keyword_is_an_opt_out_there_only(ingest: Any) -> None:
    assert (await classify(ingest, BRAND_STOP, shortcode="36180")).intent == common_pb2.INTENT_NONE
    reply = await ingest.SetCustomKeyword(
        keyword(BRAND_STOP, OPT_OUT, shortcode="36180", replies={"fr": "Zorglub ne vous écrira plus."}),
        timeout=10,
    )
    assert reply.created
    assert (reply.keyword.keyword, reply.keyword.shortcode, reply.keyword.updated_by) == (
        BRAND_STOP,
        "36180",
        "ops@example.com",
    )
    read = await classify(ingest, "  zorglub FINI ! ", shortcode="36180")
    assert (read.intent, read.matched_keyword, read.matched_rule) == (OPT_OUT, BRAND_STOP, "custom keyword")
    assert (await classify(ingest, BRAND_STOP, shortcode="60999")).intent == common_pb2.INTENT_NONE
    assert (await classify(ingest, BRAND_STOP)).intent == common_pb2.INTENT_NONE

    ack = await stop(ingest, "Zorglub fini", "evt-custom-1", recipient="36180")
    assert ack.outcome == pb.INGEST_OUTCOME_QUARANTINED
    assert (ack.intent, ack.matched_rule, ack.language) == (OPT_OUT, "custom keyword", "fr")
    assert ack.confirmation_text == "Zorglub ne vous écrira plus."
    other = await stop(ingest, "Zorglub fini", "evt-custom-2", recipient="60999")
    assert other.outcome == pb.INGEST_OUTCOME_NO_ACTION


async def test_a_licence_keyword_applies_to_events_naming_the_licence(ingest: Any) -> None:
    await ingest.SetCustomKeyword(keyword("Renseignements", HELP, licence_id="acme"), timeout=10)
    assert (await classify(ingest, "renseignements", licence_id="acme")).intent == HELP
    assert (await classify(ingest, "renseignements", licence_id="globex")).intent == common_pb2.INTENT_NONE
    ack = await stop(ingest, "Renseignements", "evt-help-1", licence_id="acme")
    assert (ack.intent, ack.outcome) == (HELP, pb.INGEST_OUTCOME_NO_ACTION)
    assert ack.confirmation_text  # the built-in help text: no reply was given for this keyword


@pytest.mark.parametrize("reserved", ["STOP", "arrêt", "Start", "HELP", "stop please", "TSOP", "stoooop"])
async def test_a_built_in_keyword_cannot_be_redefined(ingest: Any, reserved: str) -> None:
    """Built-in keywords keep their meaning, and so does what the classifier already reads in a text."""
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await ingest.SetCustomKeyword(keyword(reserved, OPT_IN, shortcode="36180"), timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "built-in keyword" in violations(refused.value)["keyword.keyword"]
    assert (await classify(ingest, "STOP", shortcode="36180")).intent == OPT_OUT


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (keyword("Zorglub", OPT_OUT), "keyword.shortcode"),  # neither shortcode nor licence
        (keyword("Zorglub", OPT_OUT, shortcode="36180", licence_id="acme"), "keyword.shortcode"),  # both
        (keyword("Zorglub", common_pb2.INTENT_NONE, shortcode="36180"), "keyword.intent"),
        (keyword("x" * 41, OPT_OUT, shortcode="36180"), "keyword.keyword"),
        (keyword("...", OPT_OUT, shortcode="36180"), "keyword.keyword"),
        (keyword("zorglub est vraiment fini", OPT_OUT, shortcode="36180"), "keyword.keyword"),  # 4 words
        (keyword("Zorglub", OPT_OUT, shortcode="36180", replies={"fr": "x" * 161}), "keyword.replies['fr']"),
        (
            keyword("Zorglub", OPT_OUT, shortcode="36180", replies={"french": "Non"}),
            "keyword.replies['french']",
        ),
        (pb.SetCustomKeywordRequest(keyword=keyword("Zorglub", OPT_OUT, shortcode="36180").keyword), "actor"),
    ],
)
async def test_a_bad_keyword_is_refused_naming_the_field(ingest: Any, request_: Any, field: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await ingest.SetCustomKeyword(request_, timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in violations(refused.value)


async def test_list_replace_and_remove(ingest: Any) -> None:
    await ingest.SetCustomKeyword(keyword(BRAND_STOP, OPT_OUT, shortcode="36180"), timeout=10)
    replaced = await ingest.SetCustomKeyword(keyword("ZORGLUB FINI", OPT_IN, shortcode="36180"), timeout=10)
    assert not replaced.created
    await ingest.SetCustomKeyword(keyword("Aide Zorglub", HELP, licence_id="acme"), timeout=10)
    listed = await ingest.ListCustomKeywords(pb.ListCustomKeywordsRequest(shortcode="36180"), timeout=10)
    assert [(k.keyword, k.intent) for k in listed.keywords] == [("ZORGLUB FINI", OPT_IN)]
    everything = await ingest.ListCustomKeywords(pb.ListCustomKeywordsRequest(), timeout=10)
    assert len(everything.keywords) == 2
    remove = pb.RemoveCustomKeywordRequest(keyword="zorglub fini", shortcode="36180", actor="ops")
    assert (await ingest.RemoveCustomKeyword(remove, timeout=10)).removed
    assert not (await ingest.RemoveCustomKeyword(remove, timeout=10)).removed
    assert (await classify(ingest, BRAND_STOP, shortcode="36180")).intent == common_pb2.INTENT_NONE


async def test_every_server_applies_a_change_within_five_seconds(
    ingest: Any, database_url: str, api_token: str, spawn_server: Any
) -> None:
    other = spawn_server("--database-url", database_url)  # another server process on the same database
    serving = await asyncio.to_thread(other.wait_for, "serving")
    metadata = (("authorization", f"Bearer {api_token}"),)
    async with grpc.aio.insecure_channel(serving["grpc_addr"]) as channel:
        elsewhere = stop_ingest_pb2_grpc.StopIngestStub(channel)
        request = pb.ClassifyTextRequest(text=BRAND_STOP, shortcode="36180")
        assert (await elsewhere.ClassifyText(request, metadata=metadata)).intent == common_pb2.INTENT_NONE
        await ingest.SetCustomKeyword(keyword(BRAND_STOP, OPT_OUT, shortcode="36180"), timeout=10)
        started = time.monotonic()
        while (await elsewhere.ClassifyText(request, metadata=metadata)).intent != OPT_OUT:
            assert time.monotonic() - started < 5, "the other server did not apply the keyword in 5 s"
            await asyncio.sleep(0.1)
        remove = pb.RemoveCustomKeywordRequest(keyword=BRAND_STOP, shortcode="36180", actor="ops")
        await ingest.RemoveCustomKeyword(remove, timeout=10)
        started = time.monotonic()
        while (await elsewhere.ClassifyText(request, metadata=metadata)).intent == OPT_OUT:
            assert time.monotonic() - started < 5, "the other server kept a removed keyword past 5 s"
            await asyncio.sleep(0.1)


@pytest.fixture
async def licence_admin(database_url: str) -> str:
    connection = await asyncpg.connect(database_url)
    _, token = await create_token(connection, "acme-admin", ("admin",), ("acme",))
    await connection.close()
    return token


async def test_a_licence_limited_admin_manages_only_its_licence(app: Application, licence_admin: str) -> None:
    metadata = (("authorization", f"Bearer {licence_admin}"),)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
        limited = stop_ingest_pb2_grpc.StopIngestStub(channel)
        own = await limited.SetCustomKeyword(
            keyword("Zorglub", OPT_OUT, licence_id="acme"), metadata=metadata
        )
        assert own.created
        for denied in (
            keyword("Zorglub", OPT_OUT, licence_id="globex"),
            keyword("Zorglub", OPT_OUT, shortcode="36180"),  # a shortcode serves every licence
        ):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await limited.SetCustomKeyword(denied, metadata=metadata)
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await limited.ListCustomKeywords(pb.ListCustomKeywordsRequest(), metadata=metadata)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.aio.AioRpcError) as refused:  # an opt-in releases other licences too
            await limited.SetCustomKeyword(
                keyword("Zorglub oui", OPT_IN, licence_id="acme"), metadata=metadata
            )
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        other = pb.RemoveCustomKeywordRequest(keyword="Zorglub", licence_id="globex", actor="ana")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await limited.RemoveCustomKeyword(other, metadata=metadata)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        mine = await limited.ListCustomKeywords(
            pb.ListCustomKeywordsRequest(licence_id="acme"), metadata=metadata
        )
        assert [k.keyword for k in mine.keywords] == ["Zorglub"]


async def test_thousands_of_bad_replies_get_an_error_that_fits_the_metadata_limit(ingest: Any) -> None:
    replies = {f"{'x' * 2000}{n}": "y" for n in range(30)}
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await ingest.SetCustomKeyword(
            keyword("Zorglub", OPT_OUT, shortcode="36180", replies=replies), timeout=10
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(violations(refused.value)) == ["keyword.replies"]


async def test_the_span_points_into_the_text_as_sent(ingest: Any) -> None:
    text = "Bonjour, merci de ne plus m'écrire !"
    read = await classify(ingest, text)
    assert read.intent == OPT_OUT
    assert read.matched_rule == "natural request"
    assert read.HasField("matched_span")
    assert "plus" in text[read.matched_span.start : read.matched_span.end]
    fullwidth_stop = "".join(chr(0xFEE0 + ord(c)) for c in "STOP")  # the fullwidth forms of S, T, O, P
    ack = await stop(ingest, f"{fullwidth_stop} 🛑", "evt-span-1", recipient="36180")
    assert (ack.intent, ack.matched_rule) == (OPT_OUT, "keyword")
    assert (ack.matched_span.start, ack.matched_span.end) == (0, 4)
