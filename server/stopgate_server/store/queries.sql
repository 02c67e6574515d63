-- Named queries of stopgate. Each block starts with `-- name: NAME` and is loaded by store/queries.py.

-- name: ping
SELECT 1;

-- name: ensure_sends_partitions
-- Partitions for the months from one month back to $1 months ahead of now (UTC).
SELECT stopgate_ensure_sends_partitions(
    (date_trunc('month', now() AT TIME ZONE 'UTC') - interval '1 month')::date, $1::integer + 2);

-- name: lock_migrations
-- Held until the migrating transaction ends: replicas starting together apply each migration once.
SELECT pg_advisory_xact_lock($1);

-- name: create_schema_migrations
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- name: applied_migrations
SELECT version, name, checksum FROM schema_migrations;

-- name: record_migration
INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3);
