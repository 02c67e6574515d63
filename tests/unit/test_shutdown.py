"""The pieces of a shutdown: the registry of running calls, request streams told to end, and the guard
that keeps one server per port."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from google.rpc import code_pb2
from stopgate_server.address_guard import AddressGuard, AddressInUse, describe_owner
from stopgate_server.config import Settings
from stopgate_server.errors import Unavailable, status_for
from stopgate_server.shutdown import InFlightCalls, StreamsEnding


def test_running_calls_are_listed_longest_first_and_forgotten_when_done() -> None:
    calls = InFlightCalls()
    with calls.track("/a/First"):
        with calls.track("/a/Second"):
            assert [call.method for call in calls.running()] == ["/a/First", "/a/Second"]
        assert [call.method for call in calls.running()] == ["/a/First"]
    with pytest.raises(RuntimeError), calls.track("/a/Failing"):
        raise RuntimeError
    assert calls.running() == []


async def _requests(queue: asyncio.Queue[str | None]) -> AsyncIterator[str]:
    while (item := await queue.get()) is not None:
        yield item


async def test_a_stream_ends_while_waiting_for_its_next_request() -> None:
    ending, queue = StreamsEnding(), asyncio.Queue[str | None]()
    received: list[str] = []

    async def consume() -> None:
        async for request in ending.requests(_requests(queue)):
            received.append(request)

    consumer = asyncio.create_task(consume())
    await queue.put("first")
    await asyncio.sleep(0.01)
    ending.begin()
    with pytest.raises(Unavailable) as ended:
        await asyncio.wait_for(consumer, 1)
    assert received == ["first"]
    status, unexpected = status_for(ended.value)
    assert not unexpected
    assert status.code == code_pb2.UNAVAILABLE
    assert "another server" in status.message
    assert ended.value.reason == "SERVER_SHUTTING_DOWN"


async def test_a_request_being_handled_is_finished_before_the_stream_ends() -> None:
    ending, queue = StreamsEnding(), asyncio.Queue[str | None]()
    for item in ("first", "second"):
        queue.put_nowait(item)
    handled: list[str] = []

    async def handle() -> None:
        async for request in ending.requests(_requests(queue)):
            ending.begin()  # while "first" is handled: it is finished, "second" is never read
            await asyncio.sleep(0)
            handled.append(request)

    with pytest.raises(Unavailable):
        await handle()
    assert handled == ["first"]


async def test_a_stream_the_client_closes_ends_normally() -> None:
    ending, queue = StreamsEnding(), asyncio.Queue[str | None]()
    for item in ("only", None):
        queue.put_nowait(item)
    assert [request async for request in ending.requests(_requests(queue))] == ["only"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_second_claim_on_a_port_names_the_owner_until_it_is_released() -> None:
    settings = Settings(grpc_addr=f"127.0.0.1:{_free_port()}", database_url="postgresql://db.internal/sg")
    guard = await AddressGuard.claim(settings)
    assert guard is not None
    try:
        with pytest.raises(AddressInUse, match=rf"stopgate pid {os.getpid()} .*database db.internal/sg"):
            await AddressGuard.claim(settings)
        other_host = Settings(grpc_addr=f"0.0.0.0:{settings.grpc_addr.rpartition(':')[2]}")
        with pytest.raises(AddressInUse):  # the port is the key: 0.0.0.0 overlaps 127.0.0.1
            await AddressGuard.claim(other_host)
    finally:
        await guard.release()
    again = await AddressGuard.claim(settings)
    assert again is not None
    await again.release()


async def test_port_zero_needs_no_guard() -> None:
    assert await AddressGuard.claim(Settings(grpc_addr="127.0.0.1:0")) is None


@pytest.mark.parametrize(
    ("database_url", "shown"),
    [
        ("postgresql://stopgate:pa55word@db.internal:5433/sg", "db.internal:5433/sg"),
        ("postgresql://postgres:pa55word@/sg?host=/run/postgresql&port=5432", "/run/postgresql:5432/sg"),
        (None, f"embedded under {Path('.stopgate').resolve() / 'pg'}"),
    ],
)
def test_the_owner_is_described_without_credentials(database_url: str | None, shown: str) -> None:
    owner = describe_owner(Settings(database_url=database_url))
    assert owner["database"] == shown
    assert owner["pid"] == os.getpid()
    assert "pa55word" not in str(owner)
