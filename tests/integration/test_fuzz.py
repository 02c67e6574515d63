"""Fuzzing every RPC of a live server with random and malformed requests: random bytes, messages built
from the descriptors with huge, empty and odd values and unknown enum numbers, string fields holding
invalid UTF-8 (written as raw frames), and protobuf-valid requests at the extremes (tests/fuzzing.py):
timestamps over the whole int64 range, NUL, astral text, strings at every length limit, forged page
tokens. No call may end INTERNAL or UNKNOWN, no reply may leak exception text, and the server must still
answer afterwards. `bench/fuzz.py` runs the same requests for longer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from contracts import METHOD_IDS, METHODS
from fuzzing import acceptable, build, call, messages, payloads, with_bad_utf8
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stopgate.v1 import (
    common_pb2,
    stop_ingest_pb2,
    stop_ingest_pb2_grpc,
)
from stopgate_server.app import Application

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# Invariant 7 over every RPC: 500 protobuf-valid requests each, a few seconds per RPC.
EXTREMES = settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@pytest.fixture
async def raw_channel(app: Application, api_token: str) -> AsyncIterator[tuple[grpc.aio.Channel, Any]]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
        yield channel, (("authorization", f"Bearer {api_token}"),)


async def send(channel: grpc.aio.Channel, metadata: Any, path: str, method: Any, frames: list[bytes]) -> None:
    """One call with raw request frames; fails the test on INTERNAL, UNKNOWN or leaked text."""
    code, details = await call(channel, metadata, path, method, frames)
    assert acceptable(code, details), (path, code, details)


@pytest.mark.parametrize(("path", "method"), METHODS, ids=METHOD_IDS)
@FUZZ
@given(payloads=st.lists(st.binary(max_size=300), min_size=1, max_size=3))
async def test_random_bytes(raw_channel: Any, path: str, method: Any, payloads: list[bytes]) -> None:
    channel, metadata = raw_channel
    await send(channel, metadata, path, method, payloads)
    assert await alive(channel, metadata)


@pytest.mark.parametrize(("path", "method"), METHODS, ids=METHOD_IDS)
@FUZZ
@given(data=st.data(), bad_utf8=st.booleans())
async def test_odd_messages_and_bad_utf8(
    raw_channel: Any, path: str, method: Any, data: st.DataObject, bad_utf8: bool
) -> None:
    channel, metadata = raw_channel
    descriptor = method.input_type
    fields = data.draw(st.lists(messages(descriptor), min_size=1, max_size=2))
    payloads = [build(descriptor, f).SerializeToString() for f in fields]
    if bad_utf8:
        payloads = [with_bad_utf8(descriptor, payload) for payload in payloads]
    await send(channel, metadata, path, method, payloads)
    assert await alive(channel, metadata)


@pytest.mark.parametrize(("path", "method"), METHODS, ids=METHOD_IDS)
@EXTREMES
@given(data=st.data())
async def test_valid_requests_at_the_extremes(
    raw_channel: Any, path: str, method: Any, data: st.DataObject
) -> None:
    """Invariant 7: no protobuf-valid request gets INTERNAL or UNKNOWN."""
    channel, metadata = raw_channel
    await send(channel, metadata, path, method, data.draw(payloads(method)))
    assert await alive(channel, metadata)


async def alive(channel: grpc.aio.Channel, metadata: Any) -> bool:
    """The server still answers (a call that needs no database, so that a slow disk cannot fail it)."""
    request = stop_ingest_pb2.ClassifyTextRequest(text="STOP")
    reply = await stop_ingest_pb2_grpc.StopIngestStub(channel).ClassifyText(
        request, metadata=metadata, timeout=10
    )
    return bool(reply.intent == common_pb2.INTENT_OPT_OUT)
