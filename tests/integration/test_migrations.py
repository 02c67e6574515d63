"""Migrations: idempotent, safe under concurrency, forward-only, and reproducing store/schema.sql."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
import stopgate_server.store as store
from stopgate_server.store.embedded import CLUSTER_USER, PORT, EmbeddedPostgres
from stopgate_server.store.migrations import Migration, MigrationError, load_migrations, migrate

SCHEMA_SQL = Path(store.__file__).with_name("schema.sql")


async def _empty_database(cluster: EmbeddedPostgres, name: str) -> str:
    admin = await asyncpg.connect(cluster.admin_dsn())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return cluster.admin_dsn(name)


def _schema_dump(cluster: EmbeddedPostgres, database: str) -> list[str]:
    """The schema as pg_dump prints it, without comments and the per-dump random \\restrict keys."""
    command = [
        str(cluster.bindir / "pg_dump"),
        *("-h", str(cluster.socket_dir), "-p", str(PORT), "-U", CLUSTER_USER),
        "--schema-only",
        "--no-owner",
        "--no-privileges",
        "--exclude-table=schema_migrations",
        database,
    ]
    dump = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return [
        line
        for line in dump.splitlines()
        if line.strip() and not line.startswith(("--", "\\restrict", "\\unrestrict"))
    ]


async def test_migrations_reproduce_schema_sql(cluster: EmbeddedPostgres) -> None:
    migrated = await asyncpg.connect(await _empty_database(cluster, "schema_by_migrations"))
    reference = await asyncpg.connect(await _empty_database(cluster, "schema_by_schema_sql"))
    try:
        await migrate(migrated)
        await reference.execute(SCHEMA_SQL.read_text())
    finally:
        await migrated.close()
        await reference.close()
    by_migrations = await asyncio.to_thread(_schema_dump, cluster, "schema_by_migrations")
    by_schema_sql = await asyncio.to_thread(_schema_dump, cluster, "schema_by_schema_sql")
    assert any("CREATE TABLE public.quarantine" in line for line in by_migrations)
    assert by_migrations == by_schema_sql


async def test_migrate_is_idempotent(database_url: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        assert await migrate(connection) == []  # the template was migrated already
        assert await migrate(connection) == []
        versions = await connection.fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [row["version"] for row in versions] == [m.version for m in load_migrations()]
    finally:
        await connection.close()


async def test_concurrent_migrations_apply_each_once(cluster: EmbeddedPostgres) -> None:
    dsn = await _empty_database(cluster, "schema_concurrent")
    connections = [await asyncpg.connect(dsn) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in connections))
        applied = [m.version for result in results for m in result]
        assert sorted(applied) == [m.version for m in load_migrations()]
    finally:
        for connection in connections:
            await connection.close()


async def test_a_changed_migration_is_refused(database_url: str) -> None:
    first = load_migrations()[0]
    edited = Migration(first.version, first.name, first.sql + "\n-- edited")
    connection = await asyncpg.connect(database_url)
    try:
        with pytest.raises(MigrationError, match="forward-only"):
            await migrate(connection, [edited])
    finally:
        await connection.close()


def test_a_gap_in_versions_is_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_first.sql").write_text("SELECT 1;")
    (tmp_path / "0003_third.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="0002 is missing"):
        load_migrations(tmp_path)


async def test_sends_partitions_exist_around_now(database_url: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        await connection.fetchval("SELECT stopgate_ensure_sends_partitions(now()::date, 2)")
        now = datetime.now(UTC)
        await connection.execute(
            "INSERT INTO sends (phone, sent_at, licence_id, campaign_id, sender)"
            " VALUES ($1, $2, 'licence', 'campaign', 'ACME')",
            "+33612345678",
            now,
        )
        partition = await connection.fetchval("SELECT tableoid::regclass::text FROM sends")
        assert partition == f"sends_{now:%Y_%m}"
        assert await connection.fetchval("SELECT stopgate_ensure_sends_partitions(now()::date, 2)") == 0
    finally:
        await connection.close()


async def test_stop_lists_keyed_in_other_digits_move_to_ascii(cluster: EmbeddedPostgres) -> None:
    """Before version 7, a STOP to "３６１８０" was listed under those characters, where no check from 36180
    looked: migration 0007 moves such entries to the ASCII key, keeping an entry already there."""
    connection = await asyncpg.connect(await _empty_database(cluster, "digits_before_0007"))
    try:
        await migrate(connection, load_migrations()[:6])
        await connection.executemany(
            "INSERT INTO shortcode_stop_list (phone, shortcode, since) VALUES ($1, $2, $3)",
            [
                ("+33612340001", "３６１８０", datetime(2026, 1, 1, tzinfo=UTC)),  # fullwidth
                ("+33612340002", "٣٦١٨٠", datetime(2026, 1, 2, tzinfo=UTC)),  # Arabic-Indic
                ("+33612340002", "36180", datetime(2026, 1, 3, tzinfo=UTC)),  # already listed in ASCII
                ("+33612340003", "60999", datetime(2026, 1, 4, tzinfo=UTC)),
            ],
        )
        await migrate(connection)
        rows = await connection.fetch(
            "SELECT phone, shortcode, since FROM shortcode_stop_list ORDER BY phone"
        )
    finally:
        await connection.close()
    assert [(r["phone"], r["shortcode"], r["since"].day) for r in rows] == [
        ("+33612340001", "36180", 1),
        ("+33612340002", "36180", 3),
        ("+33612340003", "60999", 4),
    ]


async def test_events_stored_before_0008_point_to_their_send(cluster: EmbeddedPostgres) -> None:
    """Before version 8 an event kept only the time of its send: migration 0008 numbers every send and
    points each attributed event to the send with its phone, licence, campaign and time."""
    connection = await asyncpg.connect(await _empty_database(cluster, "sends_before_0008"))
    sent = datetime(2026, 1, 5, tzinfo=UTC)
    try:
        await migrate(connection, load_migrations()[:7])
        await connection.execute("SELECT stopgate_ensure_sends_partitions(date '2026-01-01', 1)")
        await connection.executemany(
            "INSERT INTO sends (phone, sent_at, licence_id, campaign_id, sender)"
            " VALUES ($1, $2, $3, $4, 'ACME')",
            [
                ("+33612340001", sent, "acme", "spring"),
                ("+33612340001", sent, "acme", "summer"),  # the same phone and time, another campaign
                ("+33612340002", sent, "acme", "spring"),
            ],
        )
        await connection.executemany(
            "INSERT INTO inbound_events (phone, event_id, received_at, source, intent, outcome, licence_id,"
            " campaign_id, attributed_sent_at) VALUES ($1, $2, $3, 'SMS_REPLY', 'OPT_OUT', 'QUARANTINED',"
            " $4, $5, $6)",
            [
                ("+33612340001", "e1", sent, "acme", "summer", sent),
                ("+33612340002", "e2", sent, None, None, None),  # attributed to nothing
            ],
        )
        await migrate(connection)
        pointed = await connection.fetch(
            "SELECT e.event_id, s.campaign_id FROM inbound_events e"
            " LEFT JOIN sends s ON s.send_id = e.attributed_send_id ORDER BY e.event_id"
        )
        ids = await connection.fetch("SELECT send_id FROM sends")
    finally:
        await connection.close()
    assert [(r["event_id"], r["campaign_id"]) for r in pointed] == [("e1", "summer"), ("e2", None)]
    assert len({r["send_id"] for r in ids}) == 3


async def test_licences_are_bound_to_the_shortcodes_their_sends_and_replies_went_through(
    cluster: EmbeddedPostgres,
) -> None:
    """Version 11 binds shortcodes to licences; existing deployments keep working: every licence is bound to
    each shortcode its recorded sends went through (sent from it, or from an alias replying to it) and each
    one a STOP attributed to it was sent to, since the first of them."""
    connection = await asyncpg.connect(await _empty_database(cluster, "sends_before_0011"))
    first, later = datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 9, tzinfo=UTC)
    try:
        await migrate(connection, load_migrations()[:10])
        await connection.execute("SELECT stopgate_ensure_sends_partitions(date '2026-01-01', 1)")
        await connection.executemany(
            "INSERT INTO sends (phone, sent_at, licence_id, campaign_id, sender, reply_shortcode)"
            " VALUES ('+33612340001', $1, $2, 'spring', $3, $4)",
            [
                (later, "acme", "36180", ""),
                (first, "acme", "36180", ""),
                (later, "acme", "ACME", "60999"),  # an alias: its reply shortcode
                (later, "acme", "ACME", ""),  # an alias without a known route: none
                (later, "acme", "+447700900123", ""),  # a longcode: none
                (later, "globex", "36180", ""),
            ],
        )
        await connection.executemany(
            "INSERT INTO inbound_events (phone, event_id, received_at, source, recipient, intent, outcome,"
            " licence_id) VALUES ('+33612340001', $1, $2, 'SMS_REPLY', $3, 'OPT_OUT', 'QUARANTINED', $4)",
            [
                ("e1", later, "38100", "initech"),  # its sends are in a month dropped since
                ("e2", first, "38100", None),  # not attributed: no licence to bind
                ("e3", first, "ACME", "initech"),  # not a shortcode
            ],
        )
        await migrate(connection)
        rows = await connection.fetch(
            "SELECT licence_id, shortcode, bound_at, bound_by FROM shortcode_licences"
            " ORDER BY licence_id, shortcode"
        )
    finally:
        await connection.close()
    assert [(r["licence_id"], r["shortcode"], r["bound_at"], r["bound_by"]) for r in rows] == [
        ("acme", "36180", first, "use before bindings"),
        ("acme", "60999", later, "use before bindings"),
        ("globex", "36180", later, "use before bindings"),
        ("initech", "38100", later, "use before bindings"),
    ]
