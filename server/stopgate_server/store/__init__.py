"""PostgreSQL: the embedded cluster launcher, the connection pool, migrations and named queries."""

import asyncpg
from asyncpg.pool import PoolConnectionProxy

DbConnection = asyncpg.Connection | PoolConnectionProxy
"""A connection of its own or one borrowed from the pool: the store functions accept either."""

CONNECTION_ERRORS: tuple[type[Exception], ...] = (
    OSError,  # TimeoutError and ConnectionRefusedError among them
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    # A connection whose protocol state was broken by a call cancelled while PostgreSQL went away.
    asyncpg.InternalClientError,
)
"""Failures of the connection to PostgreSQL, as opposed to errors of a statement: the one list the whole
server uses (retry or reconnect on them; answer UNAVAILABLE)."""
