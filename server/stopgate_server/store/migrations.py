"""Forward-only schema migrations: migrations/NNNN_name.sql, applied in order, each exactly once.

`migrate` holds a transaction-scoped advisory lock, so replicas starting together apply each migration
once; it applies everything pending in one transaction (all or nothing). An applied migration whose file
changed afterwards is an error: migrations are never edited, a new one is added instead.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from stopgate_server.store import DbConnection
from stopgate_server.store.queries import QUERIES

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
ADVISORY_LOCK_KEY = 0x5709_6A7E  # any constant; identifies "stopgate migrations" among advisory locks
_FILE_NAME = re.compile(r"^(\d{4})_(\w+)\.sql$")


class MigrationError(RuntimeError):
    """The migrations on disk and in the database disagree; the message says how."""


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations of a directory, in order; versions must run 1, 2, 3... without gaps."""
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        migrations.append(Migration(int(match.group(1)), match.group(2), path.read_text()))
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise MigrationError(f"migration {expected:04d} is missing (found {migration.version:04d})")
    return migrations


async def migrate(connection: DbConnection, migrations: list[Migration] | None = None) -> list[Migration]:
    """Apply the pending migrations; return those applied (none when the schema is current)."""
    migrations = load_migrations() if migrations is None else migrations
    async with connection.transaction():
        await connection.execute(*QUERIES["lock_migrations"].bind(lock_key=ADVISORY_LOCK_KEY))
        await connection.execute(QUERIES["migrations_without_timeout"].sql)
        await connection.execute(QUERIES["create_schema_migrations"].sql)
        applied = {row["version"]: row for row in await connection.fetch(QUERIES["applied_migrations"].sql)}
        pending = []
        for migration in migrations:
            row = applied.pop(migration.version, None)
            if row is None:
                pending.append(migration)
            elif row["checksum"] != migration.checksum:
                raise MigrationError(
                    f"migration {migration.version:04d}_{migration.name}.sql changed after it was applied; "
                    "migrations are forward-only: restore it and add a new migration instead"
                )
        if applied:
            newest = max(applied)
            log.warning(
                "the database has migrations this version does not know (it is newer); continuing",
                extra={"database_version": newest, "known_version": len(migrations)},
            )
        for migration in pending:
            await connection.execute(migration.sql)
            await connection.execute(
                *QUERIES["record_migration"].bind(
                    version=migration.version, name=migration.name, checksum=migration.checksum
                )
            )
            log.info("applied migration", extra={"version": migration.version, "migration": migration.name})
    return pending
