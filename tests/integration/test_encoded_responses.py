"""A response a servicer encoded itself (api/wire.py's `EncodedResponse`) goes out as it is; any other
response, plain bytes included, goes through the generated serializer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from stopgate.v1 import common_pb2, quarantine_check_pb2, quarantine_check_pb2_grpc
from stopgate_server.api import wire
from stopgate_server.auth import Authoriser
from stopgate_server.config import Settings
from stopgate_server.interceptor import CallInterceptor, Deadlines
from stopgate_server.limits import Limits


class EncodingQuarantine(quarantine_check_pb2_grpc.QuarantineCheckServicer):
    """CheckBatch allows every number, answered as an `EncodedResponse`, or for licence "bytes" as the
    same bytes unwrapped."""

    async def CheckBatch(self, request: Any, context: Any) -> Any:
        numbers = list(request.phone_numbers)
        totals = quarantine_check_pb2.CheckBatchResponse(allowed_count=len(numbers))
        encoded = wire.check_batch_response(numbers, numbers, {}, totals)
        return encoded.payload if request.licence_id == "bytes" else encoded


@pytest.fixture
async def stub() -> AsyncIterator[quarantine_check_pb2_grpc.QuarantineCheckAsyncStub]:
    server = grpc.aio.server(
        interceptors=[CallInterceptor(Authoriser(None), Deadlines(30, 120), Limits.of(Settings()))]
    )
    servicer = EncodingQuarantine()  # type: ignore[abstract]  # the other methods are the generated ones
    quarantine_check_pb2_grpc.add_QuarantineCheckServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield quarantine_check_pb2_grpc.QuarantineCheckStub(channel)
    await server.stop(0)


def _request(licence: str) -> quarantine_check_pb2.CheckBatchRequest:
    return quarantine_check_pb2.CheckBatchRequest(
        licence_id=licence,
        sender=common_pb2.Sender(address="36180"),
        category=common_pb2.MESSAGE_CATEGORY_MARKETING,
        phone_numbers=["+33612345678", "+33612345679"],
    )


async def test_an_encoded_response_is_sent_as_it_is(
    stub: quarantine_check_pb2_grpc.QuarantineCheckAsyncStub,
) -> None:
    reply = await stub.CheckBatch(_request("acme"), timeout=5)
    assert [result.e164 for result in reply.results] == ["+33612345678", "+33612345679"]
    assert reply.allowed_count == 2


async def test_plain_bytes_are_not_taken_for_an_encoded_response(
    stub: quarantine_check_pb2_grpc.QuarantineCheckAsyncStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await stub.CheckBatch(_request("bytes"), timeout=5)
    # The generated serializer refuses bytes: a servicer's mistake, answered with grpc's own error.
    assert failed.value.code() is grpc.StatusCode.UNKNOWN, failed.value
