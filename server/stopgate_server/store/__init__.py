"""PostgreSQL: the embedded cluster launcher, the connection pool, migrations and named queries."""

import asyncpg
from asyncpg.pool import PoolConnectionProxy

DbConnection = asyncpg.Connection | PoolConnectionProxy
"""A connection of its own or one borrowed from the pool: the store functions accept either."""
