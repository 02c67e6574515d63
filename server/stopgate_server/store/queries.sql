-- Named queries of stopgate. Each block starts with `-- name: NAME` and is loaded by store/queries.py.

-- name: ping
SELECT 1;

-- name: ensure_sends_partitions
-- Partitions for the months from one month back to $1 months ahead of now (UTC).
SELECT stopgate_ensure_sends_partitions(
    (date_trunc('month', now() AT TIME ZONE 'UTC') - interval '1 month')::date, $1::integer + 2);
