"""StopIngest.ClassifyText through the gRPC stubs."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from stopgate.v1 import common_pb2, stop_ingest_pb2, stop_ingest_pb2_grpc

pb = stop_ingest_pb2


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> Any:
    return stop_ingest_pb2_grpc.StopIngestStub(channel)


@pytest.mark.parametrize(
    ("text", "country", "intent", "keyword", "kind", "language"),
    [
        ("Arrêt", "", common_pb2.INTENT_OPT_OUT, "ARRET", common_pb2.MATCH_KIND_EXACT, "fr"),
        (
            "ask yourcompanycode stop",
            "GB",
            common_pb2.INTENT_OPT_OUT,
            "ask <company> stop",
            common_pb2.MATCH_KIND_EXACT,
            "en",
        ),
        ("TSOP", "BE", common_pb2.INTENT_OPT_OUT, "STOP (misspelt)", common_pb2.MATCH_KIND_INFERRED, "fr"),
        (
            "please stop texting me",
            "US",
            common_pb2.INTENT_OPT_OUT,
            "stop <texting>",
            common_pb2.MATCH_KIND_INFERRED,
            "en",
        ),
        ("START", "", common_pb2.INTENT_OPT_IN, "START", common_pb2.MATCH_KIND_EXACT, ""),
        ("AIDE", "", common_pb2.INTENT_HELP, "AIDE", common_pb2.MATCH_KIND_EXACT, "fr"),
        ("don't stop", "US", common_pb2.INTENT_NONE, "", common_pb2.MATCH_KIND_UNSPECIFIED, ""),
    ],
)
async def test_classify_text(
    stub: Any, text: str, country: str, intent: int, keyword: str, kind: int, language: str
) -> None:
    reply = await stub.ClassifyText(pb.ClassifyTextRequest(text=text, country=country), timeout=5)
    assert (reply.intent, reply.matched_keyword, reply.match_kind, reply.language) == (
        intent,
        keyword,
        kind,
        language,
    )


@pytest.mark.parametrize(
    ("text", "country", "field"),
    [("", "", "text"), ("   ", "FR", "text"), ("x" * 1601, "", "text"), ("STOP", "ZZ", "country")],
)
async def test_bad_requests_name_the_field(stub: Any, text: str, country: str, field: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ClassifyText(pb.ClassifyTextRequest(text=text, country=country), timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(caught.value)
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    assert [v.field for v in bad_request.field_violations] == [field]
