"""Shared fixtures: one real PostgreSQL cluster per test session (started by the same launcher as
`stopgate serve`), a migrated template database cloned per test, and an in-process server on 127.0.0.1:0."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
from certificates import Certificates, make_certificates
from clients import Connect, EitherClient, OwnServer, new_token, open_client
from processes import ServerProcess, SpawnServer
from stopgate.interceptors import bearer_token
from stopgate_server.app import Application
from stopgate_server.config import Settings
from stopgate_server.store.embedded import EmbeddedPostgres
from stopgate_server.store.migrations import migrate
from stopgate_server.store.tokens import create_token

TEMPLATE = "stopgate_template"
_database_numbers = itertools.count()


@pytest.fixture(scope="session")
def reachable_tmp() -> Iterator[Path]:
    """A temporary directory the `postgres` system user can enter (when the tests run as root)."""
    path = Path(tempfile.mkdtemp(prefix="stopgate-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def cluster(reachable_tmp: Path) -> Iterator[EmbeddedPostgres]:
    cluster = EmbeddedPostgres(reachable_tmp / "session-pg")
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
async def template_database(cluster: EmbeddedPostgres) -> str:
    """A database with every migration applied, cloned by each test (cloning costs milliseconds)."""
    admin = await asyncpg.connect(cluster.admin_dsn())
    try:
        await admin.execute(f'CREATE DATABASE "{TEMPLATE}"')
    finally:
        await admin.close()
    connection = await asyncpg.connect(cluster.admin_dsn(TEMPLATE))
    try:
        await migrate(connection)
    finally:
        await connection.close()
    return TEMPLATE


@pytest.fixture
async def database_url(cluster: EmbeddedPostgres, template_database: str) -> AsyncIterator[str]:
    """A fresh, migrated database of its own for one test."""
    name = f"test_{next(_database_numbers)}"
    admin = await asyncpg.connect(cluster.admin_dsn())
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
        yield cluster.admin_dsn(name)
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection to the test's database, to arrange and inspect rows."""
    connection = await asyncpg.connect(database_url)
    yield connection
    await connection.close()


@pytest.fixture
async def tokens(database_url: str) -> AsyncIterator[Callable[..., Any]]:
    """Make tokens in the test's database: `await tokens(*roles, licences=(...))`."""
    connection = await asyncpg.connect(database_url)
    made = itertools.count(1)

    async def make(*roles: str, licences: tuple[str, ...] = ()) -> str:
        _, token = await create_token(connection, f"t{next(made)}", roles, licences)
        return token

    yield make
    await connection.close()


def settings_for(database_url: str) -> Settings:
    """Settings of an in-process test server: free loopback ports, fast health probes, no drain delay,
    short grace."""
    return Settings(
        database_url=database_url,
        grpc_addr="127.0.0.1:0",
        metrics_addr="127.0.0.1:0",
        db_pool_size=4,
        health_interval_s=0.2,
        drain_delay_s=0.0,
        shutdown_grace_s=1.0,
    )


@pytest.fixture
def server_settings() -> Callable[[str], Settings]:
    return settings_for


@pytest.fixture
async def api_token(database_url: str) -> str:
    """A token with every role in the test's database (auth is on in tests, as in production)."""
    return await new_token(database_url)


@pytest.fixture
async def app(database_url: str, api_token: str) -> AsyncIterator[Application]:
    """A started in-process server on a free loopback port, using the test's database."""
    application = Application(settings_for(database_url))
    await application.start()
    yield application
    await application.stop()


@pytest.fixture
async def channel(app: Application, api_token: str) -> AsyncIterator[grpc.aio.Channel]:
    """A raw channel to the in-process server whose calls carry the test token."""
    target = f"127.0.0.1:{app.grpc_port}"
    async with grpc.aio.insecure_channel(target, interceptors=bearer_token(api_token)) as channel:
        yield channel


@pytest.fixture
def spawn_server() -> Iterator[SpawnServer]:
    """Start `stopgate serve` processes (free loopback ports); any still running are killed afterwards."""
    started: list[ServerProcess] = []

    def spawn(*args: str, env: dict[str, str] | None = None) -> ServerProcess:
        server = ServerProcess(*args, env=env)
        started.append(server)
        return server

    yield spawn
    for server in started:
        server.kill()


@pytest.fixture(params=["AsyncClient", "Client"])
async def connect(request: pytest.FixtureRequest) -> AsyncIterator[Connect]:
    """Open clients of the kind under test (each test runs with both); closed afterwards."""
    opened: list[EitherClient] = []

    async def connect(target: str, **options: Any) -> EitherClient:
        client = await open_client(request.param, target, **options)
        opened.append(client)
        return client

    yield connect
    for client in opened:
        await client.close()


@pytest.fixture
async def client(app: Application, connect: Connect, api_token: str) -> EitherClient:
    """A client of the kind under test, connected to the in-process server with the test token."""
    return await connect(f"127.0.0.1:{app.grpc_port}", token=api_token)


@pytest.fixture(scope="session")
def certificates(reachable_tmp: Path) -> Certificates:
    directory = reachable_tmp / "certificates"
    directory.mkdir()
    return make_certificates(directory)


@pytest.fixture
async def own_server(reachable_tmp: Path) -> AsyncIterator[OwnServer]:
    cluster = EmbeddedPostgres(reachable_tmp / f"own-{uuid.uuid4().hex[:6]}")
    dsn = await asyncio.to_thread(cluster.start)
    application = Application(settings_for(dsn))
    try:
        await application.start()
        token = await new_token(dsn)
        target = f"127.0.0.1:{application.grpc_port}"
        async with grpc.aio.insecure_channel(target, interceptors=bearer_token(token)) as channel:
            yield OwnServer(cluster, channel)
    finally:
        await application.stop()
        await asyncio.to_thread(cluster.stop)
