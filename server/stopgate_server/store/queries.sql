-- Named queries of stopgate. Each block starts with `-- name: NAME` and is loaded by store/queries.py.

-- name: ping
SELECT 1;

-- name: ensure_sends_partitions
-- Partitions for the months from two months back (sends may be recorded up to 31 days late) to :months_ahead
-- months ahead of now (UTC).
SELECT stopgate_ensure_sends_partitions(
    (date_trunc('month', now() AT TIME ZONE 'UTC') - interval '2 months')::date, :months_ahead::integer + 3);

-- name: lock_migrations
-- Held until the migrating transaction ends: replicas starting together apply each migration once.
SELECT pg_advisory_xact_lock(:lock_key);

-- name: migrations_without_timeout
-- A migration may scan or index a large table: the pool's statement_timeout (a few seconds, meant for calls)
-- would cut it; this lifts it for the migrating transaction only.
SET LOCAL statement_timeout = 0;

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
INSERT INTO schema_migrations (version, name, checksum) VALUES (:version, :name, :checksum);

-- name: find_blocks
-- What blocks each of the phones :phones for licence :licence_id and, when :shortcode is not '', shortcode
-- :shortcode: kind 'q' for the licence quarantine, 's' for the shortcode stop list.
SELECT phone, since, 'q' AS kind FROM quarantine
WHERE licence_id = :licence_id AND phone = ANY(:phones::text[])
UNION ALL
SELECT phone, since, 's' AS kind FROM shortcode_stop_list
WHERE :shortcode::text <> '' AND shortcode = :shortcode AND phone = ANY(:phones::text[]);

-- name: claim_confirmations
-- Uses up the one free confirmation of the phones :phones that are blocked (for licence :licence_id,
-- shortcode :shortcode when not '') only by STOPs received within the window :confirmation_window whose
-- confirmation is unused, and returns them. The updates re-check confirmation_used under the row lock, so two
-- concurrent claims never both win.
WITH blocks AS (
    SELECT phone, last_stop_at > now() - :confirmation_window::interval AND NOT confirmation_used AS claimable
    FROM quarantine WHERE licence_id = :licence_id AND phone = ANY(:phones::text[])
    UNION ALL
    SELECT phone, last_stop_at > now() - :confirmation_window::interval AND NOT confirmation_used
    FROM shortcode_stop_list
    WHERE :shortcode::text <> '' AND shortcode = :shortcode AND phone = ANY(:phones::text[])
), eligible AS (
    SELECT phone FROM blocks GROUP BY phone HAVING bool_and(coalesce(claimable, false))
), claimed_quarantine AS (
    UPDATE quarantine SET confirmation_used = true
    WHERE licence_id = :licence_id AND phone IN (SELECT phone FROM eligible) AND NOT confirmation_used
    RETURNING phone
), claimed_stop_list AS (
    UPDATE shortcode_stop_list SET confirmation_used = true
    WHERE :shortcode::text <> '' AND shortcode = :shortcode AND phone IN (SELECT phone FROM eligible)
      AND NOT confirmation_used
    RETURNING phone
)
SELECT e.phone FROM eligible e
WHERE (e.phone IN (SELECT phone FROM claimed_quarantine)
       OR NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.licence_id = :licence_id AND q.phone = e.phone))
  AND (e.phone IN (SELECT phone FROM claimed_stop_list)
       OR NOT EXISTS (SELECT 1 FROM shortcode_stop_list s
                      WHERE :shortcode::text <> '' AND s.shortcode = :shortcode AND s.phone = e.phone));

-- name: record_sends
-- Records one send per phone of :phones (duplicates included) for licence :licence_id, campaign :campaign_id,
-- sender :sender (reply shortcode :reply_shortcode for an alias, else '') at :sent_at, and moves the
-- campaign's counters in the same statement. With a request id (:request_id not NULL), first inserts the
-- id's row (method :method, the request's :fingerprint, the response :answer) and records nothing when the
-- id has one already: a concurrent statement inserting the same id waits here until this one's transaction
-- ends, then records nothing if it committed. Returns whether the id was claimed (true without an id) and
-- the number of sends recorded.
WITH claimed AS (
    INSERT INTO send_requests (request_id, licence_id, method, fingerprint, answer)
    SELECT :request_id::uuid, :licence_id, :method, :fingerprint::bytea, :answer::bytea
    WHERE :request_id::uuid IS NOT NULL
    ON CONFLICT DO NOTHING
    RETURNING 1
), input AS (
    SELECT unnest(:phones::text[]) AS phone
    WHERE :request_id::uuid IS NULL OR EXISTS (SELECT FROM claimed)
), inserted AS (
    INSERT INTO sends (phone, sent_at, licence_id, campaign_id, sender, reply_shortcode)
    SELECT phone, :sent_at, :licence_id, :campaign_id, :sender, :reply_shortcode FROM input
    RETURNING 1
), new_recipients AS (
    INSERT INTO campaign_recipients (phone, licence_id, campaign_id, first_sent_at)
    SELECT DISTINCT phone, :licence_id, :campaign_id, :sent_at::timestamptz FROM input
    ON CONFLICT DO NOTHING
    RETURNING 1
), counted AS (
    INSERT INTO campaign_counters AS c (licence_id, campaign_id, sent_count, unique_recipients,
                                        first_send_at, last_send_at)
    SELECT :licence_id, :campaign_id, (SELECT count(*) FROM inserted), (SELECT count(*) FROM new_recipients),
           :sent_at, :sent_at
    WHERE EXISTS (SELECT FROM input)
    ON CONFLICT (licence_id, campaign_id) DO UPDATE SET
        sent_count = c.sent_count + excluded.sent_count,
        unique_recipients = c.unique_recipients + excluded.unique_recipients,
        first_send_at = least(c.first_send_at, excluded.first_send_at),
        last_send_at = greatest(c.last_send_at, excluded.last_send_at)
)
SELECT :request_id::uuid IS NULL OR EXISTS (SELECT FROM claimed) AS claimed,
       (SELECT count(*) FROM inserted) AS recorded;

-- name: send_request
-- The request id :request_id of licence :licence_id and method :method, as recorded: the fingerprint of
-- its request and the answer it was given.
SELECT fingerprint, answer FROM send_requests
WHERE request_id = :request_id AND licence_id = :licence_id AND method = :method;

-- name: purge_send_requests
-- Deletes up to :batch request ids recorded more than :retention ago, oldest first; returns how many.
WITH expired AS (
    SELECT request_id, licence_id, method FROM send_requests
    WHERE created_at < now() - :retention::interval
    ORDER BY created_at
    LIMIT :batch
), deleted AS (
    DELETE FROM send_requests s USING expired e
    WHERE s.request_id = e.request_id AND s.licence_id = e.licence_id AND s.method = e.method
    RETURNING 1
)
SELECT count(*) FROM deleted;

-- name: quarantine_numbers
-- Manual quarantine of the distinct phones :phones in licence :licence_id by actor :actor for reason :reason:
-- every request is audited; returns the phones that were not quarantined before.
WITH input AS (
    SELECT DISTINCT unnest(:phones::text[]) AS phone
), added AS (
    INSERT INTO quarantine (phone, licence_id, since, source)
    SELECT phone, :licence_id, now(), 'MANUAL' FROM input
    ON CONFLICT DO NOTHING
    RETURNING phone
), audited AS (
    INSERT INTO number_history (phone, occurred_at, action, source, licence_id, actor, reason)
    SELECT phone, now(), 'MANUAL_QUARANTINE', 'MANUAL', :licence_id, :actor, :reason FROM input
)
SELECT phone FROM added;

-- name: release_numbers
-- Manual release of the distinct phones :phones from licence :licence_id's quarantine by actor :actor for
-- reason :reason with consent reference :consent_reference: every request is audited; returns the phones that
-- were quarantined.
WITH input AS (
    SELECT DISTINCT unnest(:phones::text[]) AS phone
), released AS (
    DELETE FROM quarantine WHERE licence_id = :licence_id AND phone IN (SELECT phone FROM input)
    RETURNING phone
), audited AS (
    INSERT INTO number_history (phone, occurred_at, action, source, licence_id, actor, reason, consent_reference)
    SELECT phone, now(), 'MANUAL_RELEASE', 'MANUAL', :licence_id, :actor, :reason, :consent_reference FROM input
)
SELECT phone FROM released;

-- name: number_quarantine
SELECT since, source, campaign_id, event_id, attribution FROM quarantine
WHERE phone = :phone AND licence_id = :licence_id;

-- name: number_stop_lists
SELECT shortcode, since, event_id FROM shortcode_stop_list WHERE phone = :phone ORDER BY since, shortcode;

-- name: number_last_send
SELECT campaign_id, sender, reply_shortcode, sent_at FROM sends
WHERE phone = :phone AND licence_id = :licence_id ORDER BY sent_at DESC LIMIT 1;

-- name: number_history
-- The number's history in licence :licence_id, with the unattributed (stop-list only) entries, oldest first.
SELECT occurred_at, action, source, licence_id, campaign_id, shortcode, event_id, actor, reason,
       consent_reference, attribution
FROM number_history
WHERE phone = :phone AND (licence_id = :licence_id OR licence_id IS NULL)
ORDER BY occurred_at, id;

-- name: blocklist_snapshot
-- Every block list entry, for the in-memory index: kind 'q' keyed by licence, 's' keyed by shortcode.
-- `since` in microseconds since the epoch, as the triggers announce it.
SELECT 'q' AS kind, licence_id AS list_key, phone, (extract(epoch FROM since) * 1000000)::bigint AS since
FROM quarantine
UNION ALL
SELECT 's', shortcode, phone, (extract(epoch FROM since) * 1000000)::bigint FROM shortcode_stop_list;

-- name: blocklist_heartbeat
-- Sent by each process's index through the block list channel: once it comes back, every change committed
-- before it has been applied.
SELECT pg_notify('stopgate_blocklist', :payload);

-- name: ingest_round
-- Applies inbound events of distinct phones (one round of a batch) in one statement, so that a batch costs
-- one round trip: usecases/ingest.py documents the rules applied here (attribution, quarantine per licence,
-- shortcode stop lists, opt-in releases, duplicates, campaign unsubscribes), each named as DESIGN.md names
-- it, and which test holds it. One row per event, `idx` its 1-based position. Parameters: one array per
-- field of the events (`:phones` ... `:match_kinds`), the attribution window and the clock skew. One event
-- per phone is what makes the sub-statements, which share one snapshot, touch each row at most once.
WITH batch AS (
    SELECT *
    FROM unnest(:phones::text[], :event_ids::text[], :received_ats::timestamptz[], :sources::text[],
                :recipients::text[], :shortcodes::text[], :networks::text[], :texts::text[],
                :country_prefixes::text[], :reasons::text[], :licence_hints::text[], :intent_hints::text[],
                :intents::text[], :keywords::text[], :match_kinds::text[])
        WITH ORDINALITY AS b(phone, event_id, received_at, source, recipient, shortcode, network, raw_text,
                             country_prefix, reason, licence_hint, intent_hint, intent, matched_keyword,
                             match_kind, idx)
),
-- Duplicates: an event stored before (same phone and event_id) is answered as it was the first time.
stored AS (
    SELECT * FROM stopgate_stored_events(:phones, :event_ids)
),
-- Attribution: the most recent send made before the event (up to :clock_skew after it), routed through the
-- event's shortcode first (SHORTCODE_ROUTE, whatever the licence: a shared shortcode attributes across
-- licences); else the most recent send (MOST_RECENT_SEND; for an opt-out naming a shortcode nothing went
-- through, within :attribution_window); else the licence hint (LICENCE_HINT); else UNATTRIBUTED.
attributed AS (
    SELECT b.*, s.send_id, s.sent_at,
           CASE WHEN b.intent IN ('OPT_OUT', 'OPT_IN') THEN coalesce(s.licence_id, b.licence_hint) ELSE '' END
               AS licence_id,
           coalesce(s.campaign_id, '') AS campaign_id,
           CASE
               WHEN b.intent NOT IN ('OPT_OUT', 'OPT_IN') THEN ''
               WHEN s.routed THEN 'SHORTCODE_ROUTE'
               WHEN s.sent_at IS NOT NULL THEN 'MOST_RECENT_SEND'
               WHEN b.licence_hint <> '' THEN 'LICENCE_HINT'
               ELSE 'UNATTRIBUTED'
           END AS attribution
    FROM batch b
    LEFT JOIN LATERAL (
        SELECT send_id, licence_id, campaign_id, sent_at, routed
        FROM (
            SELECT send_id, licence_id, campaign_id, sent_at,
                   b.shortcode <> '' AND b.shortcode IN (sends.sender, sends.reply_shortcode) AS routed
            FROM sends
            WHERE b.intent IN ('OPT_OUT', 'OPT_IN')
              AND sends.phone = b.phone AND sends.sent_at <= b.received_at + :clock_skew::interval
        ) candidate
        WHERE routed OR b.shortcode = ''
           OR (b.intent = 'OPT_OUT' AND sent_at > b.received_at - :attribution_window::interval)
        ORDER BY routed DESC, sent_at DESC
        LIMIT 1
    ) s ON true
    WHERE b.idx NOT IN (SELECT idx FROM stored)
),
-- Quarantine is per licence: an opt-out quarantines the number in its licence (a new STOP of a quarantined
-- number renews its free confirmation).
quarantined AS (
    INSERT INTO quarantine AS q (phone, licence_id, since, source, campaign_id, event_id, last_stop_at,
                                 attribution)
    SELECT phone, licence_id, received_at, source, nullif(campaign_id, ''), event_id, received_at, attribution
    FROM attributed
    WHERE intent = 'OPT_OUT' AND licence_id <> ''
    ORDER BY phone, licence_id
    ON CONFLICT (phone, licence_id) DO UPDATE SET
        last_stop_at = greatest(q.last_stop_at, excluded.last_stop_at),
        confirmation_used = q.confirmation_used AND q.last_stop_at >= excluded.last_stop_at
    RETURNING phone, (xmax = 0) AS inserted
),
-- Shortcode stop lists: an opt-out to a shortcode puts the number on its stop list.
listed AS (
    INSERT INTO shortcode_stop_list AS s (phone, shortcode, since, event_id, last_stop_at)
    SELECT phone, shortcode, received_at, event_id, received_at
    FROM attributed
    WHERE intent = 'OPT_OUT' AND shortcode <> ''
    ORDER BY phone, shortcode
    ON CONFLICT (phone, shortcode) DO UPDATE SET
        last_stop_at = greatest(s.last_stop_at, excluded.last_stop_at),
        confirmation_used = s.confirmation_used AND s.last_stop_at >= excluded.last_stop_at
    RETURNING phone, (xmax = 0) AS inserted
),
-- An opt-in releases the number from its licence's quarantine and its shortcode's stop list.
released AS (
    DELETE FROM quarantine q USING attributed a
    WHERE a.intent = 'OPT_IN' AND q.phone = a.phone AND q.licence_id = a.licence_id
    RETURNING q.phone
),
unlisted AS (
    DELETE FROM shortcode_stop_list s USING attributed a
    WHERE a.intent = 'OPT_IN' AND s.phone = a.phone AND s.shortcode = a.shortcode
    RETURNING s.phone
),
decided AS (
    SELECT a.*,
           CASE
               WHEN a.intent = 'OPT_OUT' AND (q.inserted OR l.inserted) THEN 'QUARANTINED'
               WHEN a.intent = 'OPT_OUT' AND (q.phone IS NOT NULL OR l.phone IS NOT NULL) THEN 'ALREADY_QUARANTINED'
               WHEN a.intent = 'OPT_IN' AND (r.phone IS NOT NULL OR u.phone IS NOT NULL) THEN 'RELEASED'
               ELSE 'NO_ACTION'
           END AS outcome,
           a.intent = 'OPT_OUT' AND (q.phone IS NOT NULL OR l.phone IS NOT NULL) AS blocked,
           -- a campaign's unsubscribes: the STOPs attributed to it that blocked anew
           a.intent = 'OPT_OUT' AND a.campaign_id <> '' AND (q.inserted OR l.inserted) IS TRUE AS unsubscribed
    FROM attributed a
    LEFT JOIN quarantined q USING (phone)
    LEFT JOIN listed l USING (phone)
    LEFT JOIN released r USING (phone)
    LEFT JOIN unlisted u USING (phone)
),
-- Every opt-out and opt-in goes to the number's history.
history AS (
    INSERT INTO number_history (phone, occurred_at, action, source, licence_id, campaign_id, shortcode,
                                event_id, reason, attribution)
    SELECT phone, received_at, intent, source, nullif(licence_id, ''), nullif(campaign_id, ''),
           nullif(shortcode, ''), event_id, nullif(reason, ''), attribution
    FROM attributed
    WHERE intent IN ('OPT_OUT', 'OPT_IN')
    ORDER BY idx
),
-- Every inbound event is stored with its raw text and outcome (invariant 2), pointing to the send it was
-- attributed to.
events AS (
    INSERT INTO inbound_events (phone, event_id, received_at, source, recipient, network, raw_text,
                                country_prefix, reason, licence_hint, intent_hint, intent, matched_keyword,
                                match_kind, outcome, licence_id, campaign_id, attributed_sent_at, attribution,
                                attributed_send_id)
    SELECT phone, event_id, received_at, source, recipient, network, raw_text, country_prefix, reason,
           licence_hint, intent_hint, intent, matched_keyword, match_kind, outcome, nullif(licence_id, ''),
           nullif(campaign_id, ''), sent_at, attribution, send_id
    FROM decided
),
-- Campaign unsubscribes: the STOPs attributed to a campaign that blocked anew, by source.
counted AS (
    UPDATE campaign_counters c SET
        unsubscribe_count = c.unsubscribe_count + d.total,
        unsubscribes_sms_reply = c.unsubscribes_sms_reply + d.sms_reply,
        unsubscribes_operator = c.unsubscribes_operator + d.operator,
        unsubscribes_web = c.unsubscribes_web + d.web,
        unsubscribes_gateway = c.unsubscribes_gateway + d.gateway,
        unsubscribes_import = c.unsubscribes_import + d.import,
        first_stop_at = least(c.first_stop_at, d.first_stop),
        last_stop_at = greatest(c.last_stop_at, d.last_stop)
    FROM (
        SELECT licence_id, campaign_id, count(*) AS total,
               count(*) FILTER (WHERE source = 'SMS_REPLY') AS sms_reply,
               count(*) FILTER (WHERE source = 'OPERATOR_NOTIFICATION') AS operator,
               count(*) FILTER (WHERE source = 'WEB_UNSUBSCRIBE') AS web,
               count(*) FILTER (WHERE source = 'GATEWAY') AS gateway,
               count(*) FILTER (WHERE source = 'IMPORT') AS import,
               min(received_at) AS first_stop, max(received_at) AS last_stop
        FROM decided
        WHERE unsubscribed
        GROUP BY licence_id, campaign_id
        ORDER BY licence_id, campaign_id
    ) d
    WHERE c.licence_id = d.licence_id AND c.campaign_id = d.campaign_id
)
SELECT idx, outcome, intent, matched_keyword, match_kind, licence_id, campaign_id, attribution, blocked
FROM decided
UNION ALL
SELECT idx, 'DUPLICATE', intent, matched_keyword, match_kind, coalesce(licence_id, ''), coalesce(campaign_id, ''),
       attribution, false
FROM stored;

-- name: ingest_rejected
INSERT INTO rejected_events (event_id, received_at, raw_event, error)
SELECT * FROM unnest(:event_ids::text[], :received_ats::timestamptz[], :raw_events::jsonb[], :errors::text[]);

-- name: report_campaign
SELECT * FROM campaign_counters WHERE licence_id = :licence_id AND campaign_id = :campaign_id;

-- name: report_campaigns_page
-- Campaigns of licence :licence_id sent within [:start_time, :end_time) (NULL: unbounded), newest first sends
-- first, after the keyset (:after_first_send_at, :after_campaign_id) of the previous page (NULL: first page),
-- at most :limit.
SELECT * FROM campaign_counters
WHERE licence_id = :licence_id
  AND first_send_at IS NOT NULL
  AND (:start_time::timestamptz IS NULL OR last_send_at >= :start_time)
  AND (:end_time::timestamptz IS NULL OR first_send_at < :end_time)
  AND (:after_first_send_at::timestamptz IS NULL OR first_send_at < :after_first_send_at
       OR (first_send_at = :after_first_send_at AND campaign_id > :after_campaign_id))
ORDER BY first_send_at DESC, campaign_id
LIMIT :limit;

-- name: export_interactions_end
-- The last send of campaign (:licence_id, :campaign_id) in export order: where an export starting now ends.
SELECT sent_at, phone, send_id FROM sends
WHERE licence_id = :licence_id AND campaign_id = :campaign_id
ORDER BY sent_at DESC, phone DESC, send_id DESC
LIMIT 1;

-- name: export_interactions_page
-- A page of the sends of campaign (:licence_id, :campaign_id) in export order (sent_at, phone, send_id):
-- after the position (:after_sent_at, :after_phone, :after_send_id) (NULL: from the first), up to the end
-- (:last_sent_at, :last_phone, :last_send_id), at most :limit. Times are epoch microseconds (cheaper to turn
-- into protobuf Timestamps than datetimes). The NULL position becomes the lowest one by coalesce, not by an
-- OR, so that the row comparison stays an index condition in the generic plans of prepared statements.
SELECT phone, sender, (extract(epoch FROM sent_at) * 1000000)::bigint AS sent_us, send_id FROM sends
WHERE licence_id = :licence_id AND campaign_id = :campaign_id
  AND (sent_at, phone, send_id) > (coalesce(:after_sent_at::timestamptz, '-infinity'),
                                   coalesce(:after_phone::text, ''),
                                   coalesce(:after_send_id::bigint, -9223372036854775808))
  AND (sent_at, phone, send_id) <= (:last_sent_at::timestamptz, :last_phone::text, :last_send_id::bigint)
ORDER BY sent_at, phone, send_id
LIMIT :limit;

-- name: export_interactions_stops
-- The STOPs of campaign (:licence_id, :campaign_id) attributed to its sends made within [:first_sent_at,
-- :last_sent_at] (a page of the export): the first one of each send, keyed by the send's send_id. One range
-- of inbound_events_by_campaign.
SELECT DISTINCT ON (attributed_send_id) attributed_send_id,
       (extract(epoch FROM received_at) * 1000000)::bigint AS stopped_us, source, event_id
FROM inbound_events
WHERE licence_id = :licence_id AND campaign_id = :campaign_id AND intent = 'OPT_OUT'
  AND outcome IN ('QUARANTINED', 'ALREADY_QUARANTINED')
  AND attributed_sent_at BETWEEN :first_sent_at AND :last_sent_at
ORDER BY attributed_send_id, received_at;

-- name: export_quarantine_end
-- The last entry of licence :licence_id's quarantine in export order: where an export starting now ends.
SELECT since, phone FROM quarantine
WHERE licence_id = :licence_id
ORDER BY since DESC, phone DESC
LIMIT 1;

-- name: export_quarantine_page
-- A page of licence :licence_id's quarantine in export order (since, phone): after the position
-- (:after_since, :after_phone) (NULL: from the first, as in export_interactions_page), up to the end
-- (:last_since, :last_phone), at most :limit.
SELECT phone, since, source, campaign_id, event_id FROM quarantine
WHERE licence_id = :licence_id
  AND (since, phone) > (coalesce(:after_since::timestamptz, '-infinity'), coalesce(:after_phone::text, ''))
  AND (since, phone) <= (:last_since::timestamptz, :last_phone::text)
ORDER BY since, phone
LIMIT :limit;

-- name: licence_quarantine_size
SELECT count(*) FROM quarantine WHERE licence_id = :licence_id;

-- name: licence_daily_activity
-- Opt-outs and opt-ins of licence :licence_id per UTC day within [:start_time, :end_time).
SELECT date_trunc('day', occurred_at AT TIME ZONE 'UTC') AS day,
       count(*) FILTER (WHERE action = 'OPT_OUT') AS stops,
       count(*) FILTER (WHERE action = 'OPT_IN') AS opt_ins
FROM number_history
WHERE licence_id = :licence_id AND occurred_at >= :start_time AND occurred_at < :end_time
GROUP BY 1
ORDER BY 1;

-- name: licence_top_campaigns
-- The campaigns of licence :licence_id sent within [:start_time, :end_time) with the highest unsubscribe
-- rates, at most :limit.
SELECT * FROM campaign_counters
WHERE licence_id = :licence_id AND unique_recipients > 0
  AND last_send_at >= :start_time AND first_send_at < :end_time
ORDER BY unsubscribe_count::float8 / unique_recipients DESC, campaign_id
LIMIT :limit;

-- name: create_token
INSERT INTO api_tokens (token_id, name, token_hash, roles, licences)
VALUES (:token_id, :name, :token_hash, :roles, :licences);

-- name: active_tokens
SELECT token_id, name, token_hash, roles, licences FROM api_tokens WHERE revoked_at IS NULL;

-- name: token_by_hash
SELECT token_id, name, token_hash, roles, licences FROM api_tokens
WHERE token_hash = :token_hash AND revoked_at IS NULL;

-- name: list_tokens
SELECT token_id, name, roles, licences, created_at, revoked_at FROM api_tokens ORDER BY created_at, token_id;

-- name: revoke_token
-- By id or by name; the active token only.
UPDATE api_tokens SET revoked_at = now()
 WHERE (token_id = :token_id_or_name OR name = :token_id_or_name) AND revoked_at IS NULL
RETURNING token_id, name;

-- name: any_token
SELECT EXISTS (SELECT 1 FROM api_tokens);

-- name: blocklist_summary
-- Each block list summed up in four numbers, compared with the in-memory index's (phone_set.Digest) to find
-- the lists that writes bypassing the triggers changed: its size, the sum and the bit_xor of its phones'
-- keys (the digits of a plain E.164 phone as a bigint; for any other string, the first 64 bits of its md5),
-- and the bit_xor of the keys scrambled (phone_set.scrambled: remainder by 2^31 - 1, times 2147483629).
-- One aggregate per table (hashed, parallel). `~ '^\+[1-9][0-9]*$' AND length(phone) <= 16` means
-- `~ '^\+[1-9][0-9]{0,14}$'` (phone_set.number_of), at a fraction of the cost.
SELECT 'q' AS kind, licence_id AS list_key, count(*) AS size, sum(key) AS total, bit_xor(key) AS mixed,
       bit_xor(key % 2147483647 * 2147483629) AS scrambled
FROM (SELECT licence_id,
             CASE WHEN phone ~ '^\+[1-9][0-9]*$' AND length(phone) <= 16 THEN substr(phone, 2)::bigint
                  ELSE ('x' || left(md5(phone), 16))::bit(64)::bigint END AS key
      FROM quarantine) q
GROUP BY licence_id
UNION ALL
SELECT 's', shortcode, count(*), sum(key), bit_xor(key),
       bit_xor(key % 2147483647 * 2147483629)
FROM (SELECT shortcode,
             CASE WHEN phone ~ '^\+[1-9][0-9]*$' AND length(phone) <= 16 THEN substr(phone, 2)::bigint
                  ELSE ('x' || left(md5(phone), 16))::bit(64)::bigint END AS key
      FROM shortcode_stop_list) s
GROUP BY shortcode;

-- name: blocklist_summary_of
-- blocklist_summary of the quarantines of licences :licences and the stop lists of shortcodes :shortcodes
-- only.
SELECT 'q' AS kind, licence_id AS list_key, count(*) AS size, sum(key) AS total, bit_xor(key) AS mixed,
       bit_xor(key % 2147483647 * 2147483629) AS scrambled
FROM (SELECT licence_id,
             CASE WHEN phone ~ '^\+[1-9][0-9]*$' AND length(phone) <= 16 THEN substr(phone, 2)::bigint
                  ELSE ('x' || left(md5(phone), 16))::bit(64)::bigint END AS key
      FROM quarantine WHERE licence_id = ANY(:licences::text[])) q
GROUP BY licence_id
UNION ALL
SELECT 's', shortcode, count(*), sum(key), bit_xor(key),
       bit_xor(key % 2147483647 * 2147483629)
FROM (SELECT shortcode,
             CASE WHEN phone ~ '^\+[1-9][0-9]*$' AND length(phone) <= 16 THEN substr(phone, 2)::bigint
                  ELSE ('x' || left(md5(phone), 16))::bit(64)::bigint END AS key
      FROM shortcode_stop_list WHERE shortcode = ANY(:shortcodes::text[])) s
GROUP BY shortcode;

-- name: blocklist_snapshot_of
-- blocklist_snapshot of the quarantines of licences :licences and the stop lists of shortcodes :shortcodes
-- only.
SELECT 'q' AS kind, licence_id AS list_key, phone, (extract(epoch FROM since) * 1000000)::bigint AS since
FROM quarantine WHERE licence_id = ANY(:licences::text[])
UNION ALL
SELECT 's', shortcode, phone, (extract(epoch FROM since) * 1000000)::bigint
FROM shortcode_stop_list WHERE shortcode = ANY(:shortcodes::text[]);

-- name: blocklist_members_of
-- Which of the entries (:kinds kind 'q' or 's', :list_keys licence or shortcode, :phones phone) are on their
-- list.
SELECT t.kind, t.list_key, t.phone
FROM unnest(:kinds::text[], :list_keys::text[], :phones::text[]) AS t(kind, list_key, phone)
WHERE (t.kind = 'q' AND EXISTS (SELECT 1 FROM quarantine q WHERE q.phone = t.phone AND q.licence_id = t.list_key))
   OR (t.kind = 's' AND EXISTS (SELECT 1 FROM shortcode_stop_list s
                                WHERE s.phone = t.phone AND s.shortcode = t.list_key));

-- name: set_custom_keyword
-- Adds or replaces the keyword :keyword (normalised; :written as written) of :scope :scope_key, and moves the
-- revision. Returns the row and whether it was added.
WITH revised AS (
    UPDATE custom_keywords_revision SET revision = revision + 1 RETURNING revision
)
INSERT INTO custom_keywords AS k (scope, scope_key, keyword, written, intent, replies, updated_at, updated_by)
SELECT :scope, :scope_key, :keyword, :written, :intent, :replies::jsonb, now(), :actor FROM revised
ON CONFLICT (scope, scope_key, keyword) DO UPDATE SET
    written = excluded.written, intent = excluded.intent, replies = excluded.replies,
    updated_at = excluded.updated_at, updated_by = excluded.updated_by
RETURNING scope, scope_key, written, intent, replies, updated_at, updated_by, (xmax = 0) AS created;

-- name: remove_custom_keyword
-- Removes the keyword :keyword (normalised) of :scope :scope_key, and moves the revision; returns the count.
WITH revised AS (
    UPDATE custom_keywords_revision SET revision = revision + 1 RETURNING revision
), removed AS (
    DELETE FROM custom_keywords WHERE scope = :scope AND scope_key = :scope_key AND keyword = :keyword
    RETURNING 1
)
SELECT count(*) FROM removed, revised;

-- name: list_custom_keywords
-- The keywords of :scope :scope_key ('' and '' for all), by scope, scope key and keyword.
SELECT scope, scope_key, written, intent, replies, updated_at, updated_by FROM custom_keywords
WHERE (:scope = '' OR scope = :scope) AND (:scope_key = '' OR scope_key = :scope_key)
ORDER BY scope, scope_key, keyword;

-- name: custom_keywords_revision
SELECT revision FROM custom_keywords_revision;

-- name: all_custom_keywords
SELECT scope, scope_key, keyword, written, intent, replies FROM custom_keywords;

-- name: bind_shortcode
-- Binds :shortcode to :licence_id (by :actor) unless it is bound already, and moves the revision when it
-- adds one. Returns the binding and whether it was added.
WITH added AS (
    INSERT INTO shortcode_licences (licence_id, shortcode, bound_at, bound_by)
    VALUES (:licence_id, :shortcode, now(), :actor)
    ON CONFLICT (licence_id, shortcode) DO NOTHING
    RETURNING licence_id, shortcode, bound_at, bound_by
), revised AS (
    UPDATE shortcode_licences_revision SET revision = revision + 1 WHERE EXISTS (SELECT FROM added)
)
SELECT licence_id, shortcode, bound_at, bound_by, true AS created FROM added
UNION ALL
SELECT licence_id, shortcode, bound_at, bound_by, false FROM shortcode_licences
WHERE licence_id = :licence_id AND shortcode = :shortcode AND NOT EXISTS (SELECT FROM added);

-- name: unbind_shortcode
-- Removes the binding of :shortcode to :licence_id, and moves the revision; returns the count removed.
WITH revised AS (
    UPDATE shortcode_licences_revision SET revision = revision + 1 RETURNING revision
), removed AS (
    DELETE FROM shortcode_licences WHERE licence_id = :licence_id AND shortcode = :shortcode
    RETURNING 1
)
SELECT count(*) FROM removed, revised;

-- name: list_shortcode_bindings
-- The bindings of :licence_id and of :shortcode ('' for any), by licence and shortcode.
SELECT licence_id, shortcode, bound_at, bound_by FROM shortcode_licences
WHERE (:licence_id = '' OR licence_id = :licence_id) AND (:shortcode = '' OR shortcode = :shortcode)
ORDER BY licence_id, shortcode;

-- name: shortcode_licences_revision
SELECT revision FROM shortcode_licences_revision;

-- name: all_shortcode_licences
SELECT licence_id, shortcode FROM shortcode_licences;

-- The change feed (migration 0013 says how ticks order the changes). The changes of tick t, whose previous
-- tick is p, are those visible in t's snapshot among the transactions that p saw neither committed nor
-- visible: at or after p's xmax, or in progress in p. Two index ranges, however long a transaction held
-- p's xmin back.

-- name: tick_blocklist_changes
-- A new tick when changes have committed since the last one, by one process at a time (the lock); the
-- latest tick either way. Two processes ticking at once: one tick is kept, the other does nothing.
WITH last AS (
    SELECT tick, snapshot FROM blocklist_change_ticks ORDER BY tick DESC LIMIT 1
), ticked AS (
    INSERT INTO blocklist_change_ticks (tick, snapshot)
    SELECT last.tick + 1, pg_current_snapshot() FROM last
    -- Written as index lookups: an EXISTS over a range of txid, whose size the planner cannot know, was
    -- planned as a scan of the whole table, every 50 ms in every process (BENCHMARKS.md, issue 24).
    WHERE ((SELECT max(txid) FROM blocklist_changes) >= pg_snapshot_xmax(last.snapshot)
           OR EXISTS (  -- a change of a transaction in progress at the last tick that has committed since
               SELECT FROM pg_snapshot_xip(last.snapshot) x
               WHERE pg_visible_in_snapshot(x, pg_current_snapshot())
                 AND EXISTS (SELECT FROM blocklist_changes c WHERE c.txid = x)))
      AND pg_try_advisory_xact_lock(:lock_key)
    ON CONFLICT (tick) DO NOTHING
    RETURNING tick
)
SELECT coalesce((SELECT tick FROM ticked), (SELECT tick FROM last));

-- name: blocklist_change_ticks_bounds
-- The oldest tick kept (a consumer can resume from its end) and the latest.
SELECT min(tick) AS oldest, max(tick) AS latest FROM blocklist_change_ticks;

-- name: blocklist_change_ticks_oldest
SELECT min(tick) FROM blocklist_change_ticks;

-- name: blocklist_changes_page
-- The changes of ticks :from_tick (after change :after_id) to :to_tick, tick by tick and by id within a
-- tick, at most :limit; of the licences :licences only (NULL: every change): their quarantines, and the
-- stop lists of the shortcodes bound to them.
SELECT t.tick, c.id, c.changed_at, c.list, c.added, c.owner, c.phone, c.since, c.source, c.campaign_id,
       c.event_id
FROM blocklist_change_ticks t
JOIN blocklist_change_ticks p ON p.tick = t.tick - 1
CROSS JOIN LATERAL (
    SELECT * FROM (  -- two index ranges (an OR of the two would scan the table)
        SELECT * FROM blocklist_changes
        WHERE txid >= pg_snapshot_xmax(p.snapshot) AND txid < pg_snapshot_xmax(t.snapshot)
        UNION ALL
        SELECT * FROM blocklist_changes  -- of the transactions in progress in p that t sees committed
        WHERE txid = ANY(ARRAY(
            SELECT x FROM pg_snapshot_xip(p.snapshot) x WHERE pg_visible_in_snapshot(x, t.snapshot)))
    ) c
    WHERE pg_visible_in_snapshot(c.txid, t.snapshot)
      AND (t.tick > :from_tick OR c.id > :after_id)
      AND (:licences::text[] IS NULL
           OR c.list = 'q' AND c.owner = ANY(:licences::text[])
           OR c.list = 's' AND c.owner IN (
               SELECT shortcode FROM shortcode_licences WHERE licence_id = ANY(:licences::text[])))
    ORDER BY c.id LIMIT :limit  -- a large tick (an import) is read a page at a time: a top-N, not a sort
) c
WHERE t.tick BETWEEN :from_tick AND :to_tick
ORDER BY t.tick, c.id
LIMIT :limit;

-- name: purge_blocklist_change_ticks
-- The ticks before the first one recorded at :before or later (or before the latest): always a prefix, even
-- if the clock stepped back, so that every tick after the oldest left can be read.
DELETE FROM blocklist_change_ticks
WHERE tick < coalesce((SELECT min(tick) FROM blocklist_change_ticks WHERE ticked_at >= :before),
                      (SELECT max(tick) FROM blocklist_change_ticks));

-- name: purge_blocklist_changes
-- Up to :batch changes of the ticks no longer kept (visible in the oldest tick's snapshot: of it or before
-- it, which no consumer can read any more); how many.
WITH oldest AS (
    SELECT snapshot FROM blocklist_change_ticks ORDER BY tick LIMIT 1
), purged AS (
    DELETE FROM blocklist_changes WHERE ctid = ANY(ARRAY(
        SELECT c.ctid FROM blocklist_changes c, oldest
        WHERE c.txid < pg_snapshot_xmin(oldest.snapshot) LIMIT :batch))
    RETURNING 1
)
SELECT count(*) FROM purged;

-- Erasure of a number's personal data (store/erasure.py), and the retention of raw texts. In the erase_*
-- queries, :licence_id NULL means every licence (and the rows attributed to none); each touches only rows
-- that still hold something to erase, so a repeat erases nothing and counts 0.

-- name: erase_inbound_events
-- Clears the personal fields of :phone's inbound events: the raw text, the network (the person's operator),
-- the reason typed on a web page, the matched keyword (an extract of the text) and the campaign attribution.
-- The event stays, as the record of the objection and so that a retried event_id is still a DUPLICATE.
WITH cleared AS (
    UPDATE inbound_events SET raw_text = '', network = '', reason = '', matched_keyword = '',
                              campaign_id = NULL, attributed_sent_at = NULL, attributed_send_id = NULL
    WHERE phone = :phone AND (:licence_id::text IS NULL OR licence_id = :licence_id)
      AND (raw_text <> '' OR network <> '' OR reason <> '' OR matched_keyword <> '' OR campaign_id IS NOT NULL
           OR attributed_sent_at IS NOT NULL OR attributed_send_id IS NOT NULL)
    RETURNING 1
)
SELECT count(*) FROM cleared;

-- name: erase_sends
-- Deletes :phone's sends (campaign_counters keep counting them).
WITH deleted AS (
    DELETE FROM sends WHERE phone = :phone AND (:licence_id::text IS NULL OR licence_id = :licence_id)
    RETURNING 1
)
SELECT count(*) FROM deleted;

-- name: erase_campaign_recipients
-- Deletes :phone's campaign memberships (campaign_counters.unique_recipients keeps counting them).
WITH deleted AS (
    DELETE FROM campaign_recipients
    WHERE phone = :phone AND (:licence_id::text IS NULL OR licence_id = :licence_id)
    RETURNING 1
)
SELECT count(*) FROM deleted;

-- name: erase_number_history
-- Clears the free-text details of :phone's history (an administrator's reason, a consent reference) and its
-- campaign; the entry stays (when, what, channel, licence, shortcode, event, actor, attribution rule): it
-- proves the objection, and the licence summary counts it.
WITH cleared AS (
    UPDATE number_history SET reason = NULL, consent_reference = NULL, campaign_id = NULL
    WHERE phone = :phone AND (:licence_id::text IS NULL OR licence_id = :licence_id)
      AND (reason IS NOT NULL OR consent_reference IS NOT NULL OR campaign_id IS NOT NULL)
    RETURNING 1
)
SELECT count(*) FROM cleared;

-- name: minimise_blocklist_changes
-- Clears the campaign of :phone's quarantine changes in the change feed, as minimise_quarantine does for
-- the entries themselves (a consumer may read changes as old as the feed's retention).
WITH cleared AS (
    UPDATE blocklist_changes SET campaign_id = NULL
    WHERE phone = :phone AND list = 'q' AND (:licence_id::text IS NULL OR owner = :licence_id)
      AND campaign_id IS NOT NULL
    RETURNING 1
)
SELECT count(*) FROM cleared;

-- name: minimise_quarantine
-- Reduces :phone's quarantine entries to what blocking needs: the campaign the STOP was attributed to goes;
-- phone, licence, since, source, event, attribution rule and the free confirmation's state stay. Neither the
-- key nor `since` changes: the block-list index is not concerned.
WITH minimised AS (
    UPDATE quarantine SET campaign_id = NULL
    WHERE phone = :phone AND (:licence_id::text IS NULL OR licence_id = :licence_id) AND campaign_id IS NOT NULL
    RETURNING 1
)
SELECT count(*) FROM minimised;

-- name: record_erasure
-- The audit record of an erasure: never the erased data, only what was erased (:counts, by kind).
INSERT INTO erasures (phone, licence_id, actor, reason, counts)
VALUES (:phone, :licence_id, :actor, :reason, :counts::jsonb)
RETURNING id, erased_at;

-- name: raw_text_purged_before
-- Where the retention of raw texts got in table :table_name: everything stored before it was purged.
SELECT purged_before FROM raw_text_retention WHERE table_name = :table_name;

-- name: raw_text_purged_up_to
-- Every raw text of table :table_name stored before :purged_before is purged (never moves back).
UPDATE raw_text_retention SET purged_before = :purged_before
WHERE table_name = :table_name AND purged_before < :purged_before;

-- name: purge_raw_texts
-- Empties the raw text of up to :batch inbound events stored within [:after, :before) that still have one
-- (one range of inbound_events_by_stored_at). Returns how many rows held one (`selected`: fewer than :batch
-- means no row of the range has one left) and how many it emptied (rows emptied meanwhile by a concurrent
-- purge or erasure are skipped).
WITH old AS (
    SELECT ctid FROM inbound_events
    WHERE stored_at >= :after AND stored_at < :before AND raw_text <> ''
    LIMIT :batch
), purged AS (
    UPDATE inbound_events SET raw_text = ''
    WHERE ctid = ANY(ARRAY(SELECT ctid FROM old)) AND raw_text <> ''
    RETURNING 1
)
SELECT (SELECT count(*) FROM old) AS selected, (SELECT count(*) FROM purged) AS purged;

-- name: purge_raw_events
-- The same for rejected events: their raw input (which may hold a number and a text) becomes '{}'.
WITH old AS (
    SELECT ctid FROM rejected_events
    WHERE stored_at >= :after AND stored_at < :before AND raw_event <> '{}'::jsonb
    LIMIT :batch
), purged AS (
    UPDATE rejected_events SET raw_event = '{}'::jsonb
    WHERE ctid = ANY(ARRAY(SELECT ctid FROM old)) AND raw_event <> '{}'::jsonb
    RETURNING 1
)
SELECT (SELECT count(*) FROM old) AS selected, (SELECT count(*) FROM purged) AS purged;
