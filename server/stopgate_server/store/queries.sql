-- Named queries of stopgate. Each block starts with `-- name: NAME` and is loaded by store/queries.py.

-- name: ping
SELECT 1;

-- name: ensure_sends_partitions
-- Partitions for the months from two months back (sends may be recorded up to 31 days late) to $1
-- months ahead of now (UTC).
SELECT stopgate_ensure_sends_partitions(
    (date_trunc('month', now() AT TIME ZONE 'UTC') - interval '2 months')::date, $1::integer + 3);

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

-- name: find_blocks
-- What blocks each of the phones $3 for licence $1 and, when $2 is not '', shortcode $2: kind 'q' for the
-- licence quarantine, 's' for the shortcode stop list.
SELECT phone, since, 'q' AS kind FROM quarantine WHERE licence_id = $1 AND phone = ANY($3::text[])
UNION ALL
SELECT phone, since, 's' AS kind FROM shortcode_stop_list
WHERE $2::text <> '' AND shortcode = $2 AND phone = ANY($3::text[]);

-- name: claim_confirmations
-- Uses up the one free confirmation of the phones $3 that are blocked (for licence $1, shortcode $2 when
-- not '') only by STOPs received within the window $4 whose confirmation is unused, and returns them.
-- The updates re-check confirmation_used under the row lock, so two concurrent claims never both win.
WITH blocks AS (
    SELECT phone, last_stop_at > now() - $4::interval AND NOT confirmation_used AS claimable
    FROM quarantine WHERE licence_id = $1 AND phone = ANY($3::text[])
    UNION ALL
    SELECT phone, last_stop_at > now() - $4::interval AND NOT confirmation_used
    FROM shortcode_stop_list WHERE $2::text <> '' AND shortcode = $2 AND phone = ANY($3::text[])
), eligible AS (
    SELECT phone FROM blocks GROUP BY phone HAVING bool_and(coalesce(claimable, false))
), claimed_quarantine AS (
    UPDATE quarantine SET confirmation_used = true
    WHERE licence_id = $1 AND phone IN (SELECT phone FROM eligible) AND NOT confirmation_used
    RETURNING phone
), claimed_stop_list AS (
    UPDATE shortcode_stop_list SET confirmation_used = true
    WHERE $2::text <> '' AND shortcode = $2 AND phone IN (SELECT phone FROM eligible) AND NOT confirmation_used
    RETURNING phone
)
SELECT e.phone FROM eligible e
WHERE (e.phone IN (SELECT phone FROM claimed_quarantine)
       OR NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.licence_id = $1 AND q.phone = e.phone))
  AND (e.phone IN (SELECT phone FROM claimed_stop_list)
       OR NOT EXISTS (SELECT 1 FROM shortcode_stop_list s
                      WHERE $2::text <> '' AND s.shortcode = $2 AND s.phone = e.phone));

-- name: record_sends
-- Records one send per phone of $5 (duplicates included) for licence $1, campaign $2, sender $3 at $4,
-- and moves the campaign's counters in the same statement. Returns the number of sends recorded.
WITH input AS (
    SELECT unnest($5::text[]) AS phone
), inserted AS (
    INSERT INTO sends (phone, sent_at, licence_id, campaign_id, sender)
    SELECT phone, $4, $1, $2, $3 FROM input
    RETURNING 1
), new_recipients AS (
    INSERT INTO campaign_recipients (phone, licence_id, campaign_id, first_sent_at)
    SELECT DISTINCT phone, $1, $2, $4::timestamptz FROM input
    ON CONFLICT DO NOTHING
    RETURNING 1
), counted AS (
    INSERT INTO campaign_counters AS c (licence_id, campaign_id, sent_count, unique_recipients,
                                        first_send_at, last_send_at)
    VALUES ($1, $2, (SELECT count(*) FROM inserted), (SELECT count(*) FROM new_recipients), $4, $4)
    ON CONFLICT (licence_id, campaign_id) DO UPDATE SET
        sent_count = c.sent_count + excluded.sent_count,
        unique_recipients = c.unique_recipients + excluded.unique_recipients,
        first_send_at = least(c.first_send_at, excluded.first_send_at),
        last_send_at = greatest(c.last_send_at, excluded.last_send_at)
    RETURNING sent_count
)
SELECT (SELECT count(*) FROM inserted) FROM counted;

-- name: quarantine_numbers
-- Manual quarantine of the distinct phones $2 in licence $1 by actor $3 for reason $4: every request is
-- audited; returns the phones that were not quarantined before.
WITH input AS (
    SELECT DISTINCT unnest($2::text[]) AS phone
), added AS (
    INSERT INTO quarantine (phone, licence_id, since, source)
    SELECT phone, $1, now(), 'MANUAL' FROM input
    ON CONFLICT DO NOTHING
    RETURNING phone
), audited AS (
    INSERT INTO number_history (phone, occurred_at, action, source, licence_id, actor, reason)
    SELECT phone, now(), 'MANUAL_QUARANTINE', 'MANUAL', $1, $3, $4 FROM input
)
SELECT phone FROM added;

-- name: release_numbers
-- Manual release of the distinct phones $2 from licence $1's quarantine by actor $3 for reason $4 with
-- consent reference $5: every request is audited; returns the phones that were quarantined.
WITH input AS (
    SELECT DISTINCT unnest($2::text[]) AS phone
), released AS (
    DELETE FROM quarantine WHERE licence_id = $1 AND phone IN (SELECT phone FROM input)
    RETURNING phone
), audited AS (
    INSERT INTO number_history (phone, occurred_at, action, source, licence_id, actor, reason, consent_reference)
    SELECT phone, now(), 'MANUAL_RELEASE', 'MANUAL', $1, $3, $4, $5 FROM input
)
SELECT phone FROM released;

-- name: number_quarantine
SELECT since, source, campaign_id FROM quarantine WHERE phone = $1 AND licence_id = $2;

-- name: number_stop_lists
SELECT shortcode, since, event_id FROM shortcode_stop_list WHERE phone = $1 ORDER BY since, shortcode;

-- name: number_last_send
SELECT campaign_id, sender, sent_at FROM sends
WHERE phone = $1 AND licence_id = $2 ORDER BY sent_at DESC LIMIT 1;

-- name: number_history
-- The number's history in licence $2, with the unattributed (stop-list only) entries, oldest first.
SELECT occurred_at, action, source, licence_id, campaign_id, shortcode, event_id, actor, reason,
       consent_reference
FROM number_history
WHERE phone = $1 AND (licence_id = $2 OR licence_id IS NULL)
ORDER BY occurred_at, id;

-- name: blocklist_snapshot
-- Every block list entry, for the in-memory index: kind 'q' keyed by licence, 's' keyed by shortcode.
SELECT 'q' AS kind, licence_id AS list_key, phone FROM quarantine
UNION ALL
SELECT 's', shortcode, phone FROM shortcode_stop_list;

-- name: blocklist_heartbeat
-- Sent by each process's index through the block list channel: once it comes back, every change committed
-- before it has been applied.
SELECT pg_notify('stopgate_blocklist', $1);
