"""Errors that fit: an INVALID_ARGUMENT for thousands of bad inputs lists the first violations and counts
the rest, so that a default gRPC channel receives it (trailers beyond the client's metadata limits would
turn it into RESOURCE_EXHAUSTED "received metadata size exceeds ... limit")."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from stopgate.v1 import (
    common_pb2,
    message_compliance_pb2,
    message_compliance_pb2_grpc,
    quarantine_check_pb2,
    quarantine_check_pb2_grpc,
)
from stopgate_server.errors import MAX_DETAILS_BYTES, MAX_MESSAGE_BYTES

SENDER = common_pb2.Sender(address="ACME")
# The budget both directions of the trailers must keep to: gRPC C-core's default soft metadata limit.
SOFT_METADATA_LIMIT = 8 * 1024


def details_of(error: grpc.aio.AioRpcError) -> tuple[list[str], dict[str, str]]:
    """The fields named in BadRequest and ErrorInfo's metadata of an INVALID_ARGUMENT."""
    status = rpc_status.from_call(error)
    assert status is not None
    bad_request, info = error_details_pb2.BadRequest(), error_details_pb2.ErrorInfo()
    assert any(detail.Unpack(bad_request) for detail in status.details)
    assert any(detail.Unpack(info) for detail in status.details)
    return [v.field for v in bad_request.field_violations], dict(info.metadata)


def trailer_bytes(error: grpc.aio.AioRpcError) -> int:
    """What the status took on the wire: the percent-encoded message and the base64 details."""
    details = next(value for key, value in error.trailing_metadata() if key == "grpc-status-details-bin")
    return len(message_of(error).encode()) * 3 + (len(details) * 4) // 3


def message_of(error: grpc.aio.AioRpcError) -> str:
    return error.details() or ""


async def test_ten_thousand_invalid_numbers_arrive_as_one_bounded_invalid_argument(
    channel: grpc.aio.Channel,
) -> None:
    stub = quarantine_check_pb2_grpc.QuarantineCheckStub(channel)
    numbers = [f"not-a-number-{i:05d}" for i in range(10_000)]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.RecordSends(
            quarantine_check_pb2.RecordSendsRequest(
                licence_id="acme", campaign_id="c1", sender=SENDER, phone_numbers=numbers
            ),
            timeout=30,
        )
    error = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    fields, metadata = details_of(error)
    assert fields[:3] == ["phone_numbers[0]", "phone_numbers[1]", "phone_numbers[2]"]
    assert 10 <= len(fields) < 10_000
    assert metadata == {"violations": "10000", "violations_listed": str(len(fields))}
    assert message_of(error).startswith("invalid request: phone_numbers[0]: not a valid phone number")
    assert message_of(error).endswith("; and 9,990 more")
    assert trailer_bytes(error) < SOFT_METADATA_LIMIT


async def test_a_thousand_over_long_texts_arrive_as_one_bounded_invalid_argument(
    channel: grpc.aio.Channel,
) -> None:
    stub = message_compliance_pb2_grpc.MessageComplianceStub(channel)
    texts = ["é" * 2_000] * 1_000  # non-ASCII: the message is percent-encoded at 3 bytes per byte
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CheckMessages(
            message_compliance_pb2.CheckMessagesRequest(
                texts=texts,
                country="FR",
                sender=SENDER,
                category=common_pb2.MESSAGE_CATEGORY_MARKETING,
            ),
            timeout=30,
        )
    error = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    fields, metadata = details_of(error)
    assert fields[0] == "texts[0]"
    assert len(fields) < 1_000
    assert metadata["violations"] == "1000"
    assert len(message_of(error).encode()) <= MAX_MESSAGE_BYTES
    assert trailer_bytes(error) < SOFT_METADATA_LIMIT


async def test_long_inputs_quoted_in_descriptions_are_clipped(channel: grpc.aio.Channel) -> None:
    """Even one violation cannot grow the trailers: its description is clipped, never the field path."""
    stub = quarantine_check_pb2_grpc.QuarantineCheckStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.RecordSends(
            quarantine_check_pb2.RecordSendsRequest(
                licence_id="x" * 60_000, campaign_id="c1", sender=SENDER, phone_numbers=["+33612345678"]
            ),
            timeout=30,
        )
    error = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields, _ = details_of(error)
    assert fields == ["licence_id"]
    assert trailer_bytes(error) < MAX_DETAILS_BYTES + 3 * MAX_MESSAGE_BYTES


@pytest.mark.parametrize("field", ["text", "texts"])
async def test_check_message_refuses_nul_characters(channel: grpc.aio.Channel, field: str) -> None:
    """SECURITY.md: text holding U+0000 is refused everywhere, CheckMessage(s) included."""
    stub = message_compliance_pb2_grpc.MessageComplianceStub(channel)
    common: dict[str, Any] = {
        "country": "FR",
        "sender": SENDER,
        "category": common_pb2.MESSAGE_CATEGORY_MARKETING,
    }
    text = "Soldes\x00 STOP 36180"
    call = (
        stub.CheckMessage(message_compliance_pb2.CheckMessageRequest(text=text, **common), timeout=10)
        if field == "text"
        else stub.CheckMessages(
            message_compliance_pb2.CheckMessagesRequest(texts=["Bonjour", text], **common), timeout=10
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields, _ = details_of(caught.value)
    assert fields == (["text"] if field == "text" else ["texts[1]"])
    assert "NUL" in message_of(caught.value)
