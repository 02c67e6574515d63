"""Both clients behind one face, so that one test suite runs against `AsyncClient` and `Client`.

The blocking client is driven from a worker thread: the in-process test server runs on the test's event
loop, which a blocking call made on that loop would freeze.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import grpc
import pytest
from stopgate import AsyncClient, Client
from stopgate_server.app import Application
from stopgate_server.store.embedded import EmbeddedPostgres
from stopgate_server.store.tokens import ROLES, create_token


class EitherClient:
    """Calls a method of an `AsyncClient` or a `Client` by name, from async test code."""

    def __init__(self, client: AsyncClient | Client) -> None:
        self.client = client
        self.kind = type(client).__name__

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """A unary method's result."""
        bound = getattr(self.client, method)
        if isinstance(self.client, AsyncClient):
            return await bound(*args, **kwargs)
        return await asyncio.to_thread(bound, *args, **kwargs)

    async def collect(self, method: str, *args: Any, **kwargs: Any) -> list[Any]:
        """Every item of a streaming method."""
        bound = getattr(self.client, method)
        if isinstance(self.client, AsyncClient):
            return [item async for item in bound(*args, **kwargs)]
        return await asyncio.to_thread(lambda: list(bound(*args, **kwargs)))

    async def collect_until(
        self, method: str, enough: Callable[[list[Any]], bool], *args: Any, **kwargs: Any
    ) -> list[Any]:
        """The items of an endless streaming method, until `enough` of them; the stream is then closed."""
        bound = getattr(self.client, method)
        items: list[Any] = []
        if isinstance(self.client, AsyncClient):
            async with contextlib.aclosing(bound(*args, **kwargs)) as stream:
                async for item in stream:
                    items.append(item)
                    if enough(items):
                        break
            return items

        def read() -> list[Any]:
            stream = bound(*args, **kwargs)
            try:
                for item in stream:
                    items.append(item)
                    if enough(items):
                        break
            finally:
                stream.close()
            return items

        return await asyncio.to_thread(read)

    async def close(self) -> None:
        if isinstance(self.client, AsyncClient):
            await self.client.close()
        else:
            await asyncio.to_thread(self.client.close)


Connect = Callable[..., Awaitable[EitherClient]]


async def open_client(kind: str, target: str, **options: Any) -> EitherClient:
    if kind == "AsyncClient":
        return EitherClient(AsyncClient(target, **options))
    return EitherClient(await asyncio.to_thread(Client, target, **options))


async def new_token(database_url: str) -> str:
    """A token with every role in a migrated database (auth is on in tests, as in production)."""
    connection = await asyncpg.connect(database_url)
    try:
        _, token = await create_token(connection, f"tests-{id(connection):x}", ROLES)
    finally:
        await connection.close()
    return token


@dataclass
class OwnServer:
    """An in-process server on a PostgreSQL cluster of its own, which the test may stop and start again,
    and a channel to it carrying a token."""

    cluster: EmbeddedPostgres
    channel: grpc.aio.Channel


async def wait_until_index_current(app: Application) -> None:
    """Wait until the server's block-list index is loaded and current: it answers CheckBatch on its own."""
    assert app.index is not None
    for _ in range(200):
        if app.index.is_current():
            return
        await asyncio.sleep(0.01)
    pytest.fail("the block list index never became current")
