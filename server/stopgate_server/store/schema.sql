-- The whole stopgate schema as the migrations leave it, for readers: a test checks that applying
-- migrations/ produces exactly this. Change the schema with a new migration, then update this file.
-- Every primary or unique key of a per-number table starts with `phone` (E.164), so that the tables can
-- be distributed by phone later; per-campaign counters are keyed by (licence_id, campaign_id).

-- A number that opted out of a licence: every campaign of that licence is filtered for it.
-- last_stop_at / confirmation_used: the one free confirmation allowed within 5 minutes of each STOP.
-- attribution: the rule that attributed the quarantining STOP (see inbound_events), '' for a manual one.
CREATE TABLE quarantine (
    phone             text        NOT NULL,
    licence_id        text        NOT NULL,
    since             timestamptz NOT NULL,
    source            text        NOT NULL,
    campaign_id       text,
    event_id          text,
    last_stop_at      timestamptz,
    confirmation_used boolean     NOT NULL DEFAULT false,
    attribution       text        NOT NULL DEFAULT '',
    PRIMARY KEY (phone, licence_id)
);
-- In the export's order (since, phone): a page of it is one index range.
CREATE INDEX quarantine_by_licence ON quarantine (licence_id, since, phone);

-- A number that sent STOP to a shortcode: nothing is sent to it from that shortcode, whatever the licence,
-- until it opts in again there.
CREATE TABLE shortcode_stop_list (
    phone             text        NOT NULL,
    shortcode         text        NOT NULL,
    since             timestamptz NOT NULL,
    event_id          text,
    last_stop_at      timestamptz,
    confirmation_used boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (phone, shortcode)
);

-- Every insert into or delete from the block lists (quarantine, shortcode_stop_list) is announced on the
-- channel `stopgate_blocklist` when it commits, so that every server process keeps its in-memory index
-- current. A payload holds a line "#<random uuid>" (PostgreSQL would drop a notification identical to one
-- already sent in the same transaction: of "+", "-", "+" for one number, the second "+" would be lost), then
-- for each of up to 64 changed rows a line "#@<since, microseconds since the epoch>" and a line
-- "<q|s>|<+|->|<licence_id or shortcode>|<phone>" (statement-level triggers: one notification per 64
-- changed rows, not one per row; 64 rows with 64-character licence ids stay within the 8,000-byte payload
-- limit). Rows are never updated in their keys or their `since`.
-- One function per list, reading its columns directly; trigger argument: the operation's sign.
CREATE FUNCTION stopgate_notify_quarantine() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    nonce text := '#' || gen_random_uuid();
BEGIN
    PERFORM pg_notify('stopgate_blocklist', nonce || E'\n' || string_agg(
        '#@' || (extract(epoch FROM since) * 1000000)::bigint || E'\n'
        || concat_ws('|', 'q', TG_ARGV[0], licence_id, phone), E'\n'))
    FROM (SELECT licence_id, phone, since, (row_number() OVER () - 1) / 64 AS part FROM changed) c
    GROUP BY part;
    RETURN NULL;
END
$$;

CREATE FUNCTION stopgate_notify_shortcode_stop_list() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    nonce text := '#' || gen_random_uuid();
BEGIN
    PERFORM pg_notify('stopgate_blocklist', nonce || E'\n' || string_agg(
        '#@' || (extract(epoch FROM since) * 1000000)::bigint || E'\n'
        || concat_ws('|', 's', TG_ARGV[0], shortcode, phone), E'\n'))
    FROM (SELECT shortcode, phone, since, (row_number() OVER () - 1) / 64 AS part FROM changed) c
    GROUP BY part;
    RETURN NULL;
END
$$;

-- TRUNCATE fires no delete trigger: it is announced as a line "#!q" or "#!s", the whole list emptied.
CREATE FUNCTION stopgate_notify_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('stopgate_blocklist', '#' || gen_random_uuid() || E'\n#!' || TG_ARGV[0]);
    RETURN NULL;
END
$$;

CREATE TRIGGER quarantine_insert_notify AFTER INSERT ON quarantine REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION stopgate_notify_quarantine('+');
CREATE TRIGGER quarantine_delete_notify AFTER DELETE ON quarantine REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION stopgate_notify_quarantine('-');
CREATE TRIGGER shortcode_stop_list_insert_notify AFTER INSERT ON shortcode_stop_list
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION stopgate_notify_shortcode_stop_list('+');
CREATE TRIGGER shortcode_stop_list_delete_notify AFTER DELETE ON shortcode_stop_list
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION stopgate_notify_shortcode_stop_list('-');
CREATE TRIGGER quarantine_truncate_notify AFTER TRUNCATE ON quarantine
    FOR EACH STATEMENT EXECUTE FUNCTION stopgate_notify_truncate('q');
CREATE TRIGGER shortcode_stop_list_truncate_notify AFTER TRUNCATE ON shortcode_stop_list
    FOR EACH STATEMENT EXECUTE FUNCTION stopgate_notify_truncate('s');

-- reply_shortcode: the reply shortcode of an alias sender (the one the operator substitutes for "00000" in
-- "STOP 00000"): a STOP to it is attributed to this send. '' for other senders. send_id: what an inbound
-- event attributed to this send points to; from a sequence whose ids each connection takes 100 at a time
-- (unique, neither gapless nor in send order).
CREATE SEQUENCE sends_send_id_seq AS bigint CACHE 100;
CREATE TABLE sends (
    phone           text        NOT NULL,
    sent_at         timestamptz NOT NULL,
    licence_id      text        NOT NULL,
    campaign_id     text        NOT NULL,
    sender          text        NOT NULL,
    reply_shortcode text        NOT NULL DEFAULT '',
    send_id         bigint      NOT NULL DEFAULT nextval('sends_send_id_seq')
) PARTITION BY RANGE (sent_at);
ALTER SEQUENCE sends_send_id_seq OWNED BY sends.send_id;
CREATE INDEX sends_by_phone ON sends (phone, sent_at DESC);
CREATE INDEX sends_by_campaign ON sends (licence_id, campaign_id, sent_at, phone);

-- Every inbound event whose number could be read, with its raw fields and what stopgate did with it.
-- event_id is the idempotency key of ingress. attribution: the rule that attributed an opt-out or opt-in
-- (SHORTCODE_ROUTE, MOST_RECENT_SEND, LICENCE_HINT, UNATTRIBUTED), '' for other events. attributed_send_id:
-- the send it was attributed to (sends.send_id), NULL when none.
CREATE TABLE inbound_events (
    phone              text        NOT NULL,
    event_id           text        NOT NULL,
    received_at        timestamptz NOT NULL,
    stored_at          timestamptz NOT NULL DEFAULT now(),
    source             text        NOT NULL,
    recipient          text        NOT NULL DEFAULT '',
    network            text        NOT NULL DEFAULT '',
    raw_text           text        NOT NULL DEFAULT '',
    country_prefix     text        NOT NULL DEFAULT '',
    reason             text        NOT NULL DEFAULT '',
    licence_hint       text        NOT NULL DEFAULT '',
    intent_hint        text        NOT NULL DEFAULT '',
    intent             text        NOT NULL,
    matched_keyword    text        NOT NULL DEFAULT '',
    match_kind         text        NOT NULL DEFAULT '',
    outcome            text        NOT NULL,
    licence_id         text,
    campaign_id        text,
    attributed_sent_at timestamptz,
    attribution        text        NOT NULL DEFAULT '',
    attributed_send_id bigint,
    PRIMARY KEY (phone, event_id)
);
-- A campaign's STOPs by the time of the send they were attributed to: the interactions export finds those of a
-- page of sends in one index range.
CREATE INDEX inbound_events_by_campaign ON inbound_events (licence_id, campaign_id, attributed_sent_at)
    WHERE intent = 'OPT_OUT';

-- The events among (phones[i], event_ids[i]) stored before, with what was done with them: i (from 1) and
-- the stored outcome. One primary-key probe per event, never a scan of inbound_events, whatever its
-- statistics say: with enable_seqscan on, a plan made while the table looked empty (statistics taken then)
-- scanned the whole table once per event and stayed cached while the table grew, until the next ANALYZE
-- (BENCHMARKS.md, History, has what that cost). STABLE: it reads the snapshot of the statement that calls it.
CREATE FUNCTION stopgate_stored_events(phones text[], event_ids text[])
RETURNS TABLE (idx bigint, outcome text, intent text, matched_keyword text, match_kind text, licence_id text,
               campaign_id text, attribution text)
LANGUAGE plpgsql STABLE SET enable_seqscan = off AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT b.idx, e.outcome, e.intent, e.matched_keyword, e.match_kind, e.licence_id, e.campaign_id,
           e.attribution
    FROM unnest(phones, event_ids) WITH ORDINALITY AS b(phone, event_id, idx)
    JOIN LATERAL (  -- a probe per event: never a join over the whole table
        SELECT outcome, intent, matched_keyword, match_kind, licence_id, campaign_id, attribution
        FROM inbound_events
        WHERE inbound_events.phone = b.phone AND inbound_events.event_id = b.event_id
        LIMIT 1
    ) e ON true;
END
$$;

-- Inbound events rejected before a phone number could be read: kept with the raw input, never dropped.
CREATE TABLE rejected_events (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id    text        NOT NULL DEFAULT '',
    received_at timestamptz,
    stored_at   timestamptz NOT NULL DEFAULT now(),
    raw_event   jsonb       NOT NULL,
    error       text        NOT NULL
);

-- The audit history of a number: opt-outs, opt-ins and manual actions. licence_id is NULL for an event
-- that reached only a shortcode stop list (unattributed).
CREATE TABLE number_history (
    phone             text        NOT NULL,
    id                bigint      GENERATED ALWAYS AS IDENTITY,
    occurred_at       timestamptz NOT NULL,
    action            text        NOT NULL
        CHECK (action IN ('OPT_OUT', 'OPT_IN', 'MANUAL_QUARANTINE', 'MANUAL_RELEASE')),
    source            text        NOT NULL,
    licence_id        text,
    campaign_id       text,
    shortcode         text,
    event_id          text,
    actor             text,
    reason            text,
    consent_reference text,
    attribution       text        NOT NULL DEFAULT '',
    PRIMARY KEY (phone, id)
);
CREATE INDEX number_history_by_licence ON number_history (licence_id, occurred_at);

-- Per-campaign counters, moved in the same transaction as the sends and stops they count, so that a report
-- costs one row read whatever the campaign's size.
CREATE TABLE campaign_counters (
    licence_id                     text        NOT NULL,
    campaign_id                    text        NOT NULL,
    sent_count                     bigint      NOT NULL DEFAULT 0,
    unique_recipients              bigint      NOT NULL DEFAULT 0,
    unsubscribe_count              bigint      NOT NULL DEFAULT 0,
    unsubscribes_sms_reply         bigint      NOT NULL DEFAULT 0,
    unsubscribes_operator          bigint      NOT NULL DEFAULT 0,
    unsubscribes_web               bigint      NOT NULL DEFAULT 0,
    unsubscribes_gateway           bigint      NOT NULL DEFAULT 0,
    unsubscribes_import            bigint      NOT NULL DEFAULT 0,
    first_send_at                  timestamptz,
    last_send_at                   timestamptz,
    first_stop_at                  timestamptz,
    last_stop_at                   timestamptz,
    PRIMARY KEY (licence_id, campaign_id)
);
CREATE INDEX campaign_counters_by_first_send ON campaign_counters (licence_id, first_send_at DESC, campaign_id);

-- The distinct recipients of each campaign (campaign_counters.unique_recipients counts the rows added).
CREATE TABLE campaign_recipients (
    phone         text        NOT NULL,
    licence_id    text        NOT NULL,
    campaign_id   text        NOT NULL,
    first_sent_at timestamptz NOT NULL,
    PRIMARY KEY (phone, licence_id, campaign_id)
);

-- Creates the monthly partitions of `sends` covering `months` months from the month of `first_month`
-- (UTC) that do not exist yet, and returns how many it created. Safe to call from several processes.
CREATE FUNCTION stopgate_ensure_sends_partitions(first_month date, months integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    month_start date;
    partition_name text;
    created integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('stopgate_ensure_sends_partitions'));
    FOR i IN 0 .. months - 1 LOOP
        month_start := (date_trunc('month', first_month) + make_interval(months => i))::date;
        partition_name := format('sends_%s', to_char(month_start, 'YYYY_MM'));
        IF to_regclass(partition_name) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF sends FOR VALUES FROM (%L) TO (%L)',
                partition_name,
                month_start::timestamp AT TIME ZONE 'UTC',
                (month_start + interval '1 month')::timestamp AT TIME ZONE 'UTC'
            );
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END
$$;

-- A caller's credentials. Only the SHA-256 of the token is kept (tokens are 256 random bits, so a slow
-- password hash would add nothing). `licences` empty means every licence. Revoked tokens are kept for
-- the audit trail; names are unique among active tokens, so a rotation can reuse a name after the revoke.
CREATE TABLE api_tokens (
    token_id   text        PRIMARY KEY,
    name       text        NOT NULL,
    token_hash text        NOT NULL UNIQUE,
    roles      text[]      NOT NULL
        CHECK (cardinality(roles) > 0 AND roles <@ ARRAY['sender', 'ingest', 'reporting', 'admin']),
    licences   text[]      NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE revoked_at IS NULL;

-- Opt-out, opt-in and help keywords that admins add to a shortcode or a licence (scope 'shortcode' or
-- 'licence', scope_key the shortcode in ASCII digits or the licence id). keyword: normalised as the
-- classifier reads texts (domain/keywords.normalise); written: as the admin wrote it; replies by ISO 639-1
-- language.
CREATE TABLE custom_keywords (
    scope      text        NOT NULL CHECK (scope IN ('shortcode', 'licence')),
    scope_key  text        NOT NULL,
    keyword    text        NOT NULL,
    written    text        NOT NULL,
    intent     text        NOT NULL CHECK (intent IN ('OPT_OUT', 'OPT_IN', 'HELP')),
    replies    jsonb       NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text        NOT NULL,
    PRIMARY KEY (scope, scope_key, keyword)
);

-- Moved by every change of custom_keywords, in the same statement (so it moves when the change commits):
-- each server process reads it every second and reloads the keywords when it moved.
CREATE TABLE custom_keywords_revision (
    revision bigint NOT NULL
);
INSERT INTO custom_keywords_revision VALUES (0);

-- The request ids (AIP-155) of RecordSends and of CheckBatch with a campaign: one row per id of a licence
-- and method, inserted by the statement that records the request's sends (so it exists exactly when they
-- do); a concurrent copy's insert waits for that statement's transaction, then finds the row. fingerprint:
-- SHA-256 of the request, to refuse the id for a different one; answer: the response first sent, encoded.
-- Deleted after the retention (STOPGATE_REQUEST_ID_RETENTION_S) by the periodic maintenance.
CREATE TABLE send_requests (
    request_id  uuid        NOT NULL,
    licence_id  text        NOT NULL,
    method      text        NOT NULL CHECK (method IN ('CheckBatch', 'RecordSends')),
    fingerprint bytea       NOT NULL,
    answer      bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (request_id, licence_id, method)
);
CREATE INDEX send_requests_by_age ON send_requests (created_at);
-- Shortcodes bound to the licences that use them: a token limited to licences sends through, and sees the
-- stop list of, only the shortcodes bound to the request's licence. shortcode in ASCII digits; bound_by:
-- the actor of BindShortcode ('use before bindings' for those found in the sends and attributed inbound
-- events when the table was made, bound_at then being the first of them).
CREATE TABLE shortcode_licences (
    licence_id text        NOT NULL,
    shortcode  text        NOT NULL,
    bound_at   timestamptz NOT NULL DEFAULT now(),
    bound_by   text        NOT NULL,
    PRIMARY KEY (licence_id, shortcode)
);
CREATE INDEX shortcode_licences_by_shortcode ON shortcode_licences (shortcode);

-- Moved by every change of shortcode_licences, in the same statement (so it moves when the change commits):
-- each server process reads it every second and reloads the bindings when it moved.
CREATE TABLE shortcode_licences_revision (
    revision bigint NOT NULL
);
INSERT INTO shortcode_licences_revision VALUES (0);

-- The change feed (Reporting.WatchBlocklistChanges): every change of the block lists, in an order a
-- consumer can resume, built the way PgQ builds its queues. A trigger records each change in the same
-- transaction as the change itself, with that transaction's id. A ticker (one at a time, in any server
-- process) records a tick, a snapshot of which transactions have committed, whenever changes have committed
-- since the last one. The changes of tick n are those of the transactions visible in tick n's snapshot and
-- not in tick n-1's: each committed change belongs to exactly one tick, later ticks never gain changes, and a
-- change committed after another one that it waited for (the same number) is in the same tick or a later
-- one. Within a tick, changes are in `id` order, which is the order of the statements that made them.
-- A log, read by tick and purged by age: its key is its id, not the phone (the per-number tables' rule).
CREATE TABLE blocklist_changes (
    id          bigint      GENERATED ALWAYS AS IDENTITY,
    txid        xid8        NOT NULL DEFAULT pg_current_xact_id(),
    changed_at  timestamptz NOT NULL DEFAULT now(),
    list        text        NOT NULL CHECK (list IN ('q', 's')),  -- licence quarantine, shortcode stop list
    added       boolean     NOT NULL,                            -- false: the entry was removed
    owner       text        NOT NULL,                            -- the licence (q) or the shortcode (s)
    phone       text        NOT NULL,
    since       timestamptz NOT NULL,
    source      text,
    campaign_id text,
    event_id    text
);
-- The only index: the changes of a tick are one range of transaction ids (kept small to keep ingest fast).
CREATE INDEX blocklist_changes_by_txid ON blocklist_changes (txid);

CREATE TABLE blocklist_change_ticks (
    tick      bigint      PRIMARY KEY,
    snapshot  pg_snapshot NOT NULL,
    ticked_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO blocklist_change_ticks (tick, snapshot) VALUES (1, pg_current_snapshot());  -- where the feed starts

-- One function per list, reading its columns directly; trigger argument: true for an insert.
CREATE FUNCTION stopgate_record_quarantine_changes() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO blocklist_changes (list, added, owner, phone, since, source, campaign_id, event_id)
    SELECT 'q', TG_ARGV[0]::boolean, licence_id, phone, since, source, campaign_id, event_id FROM changed;
    RETURN NULL;
END
$$;

CREATE FUNCTION stopgate_record_shortcode_stop_list_changes() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO blocklist_changes (list, added, owner, phone, since, event_id)
    SELECT 's', TG_ARGV[0]::boolean, shortcode, phone, since, event_id FROM changed;
    RETURN NULL;
END
$$;

CREATE TRIGGER quarantine_insert_record AFTER INSERT ON quarantine REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION stopgate_record_quarantine_changes('true');
CREATE TRIGGER quarantine_delete_record AFTER DELETE ON quarantine REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION stopgate_record_quarantine_changes('false');
CREATE TRIGGER shortcode_stop_list_insert_record AFTER INSERT ON shortcode_stop_list
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION stopgate_record_shortcode_stop_list_changes('true');
CREATE TRIGGER shortcode_stop_list_delete_record AFTER DELETE ON shortcode_stop_list
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION stopgate_record_shortcode_stop_list_changes('false');

-- One row per ErasePersonalData call, whatever it erased (a repeat erases nothing and is recorded too): when,
-- who (the request's actor), the scope (licence_id NULL: every licence), the reason (the reference of the
-- person's request) and how many rows of each kind it erased (`counts`, by kind: inbound_events_cleared,
-- sends_deleted, ...), never the erased data. The number stays: it is what the request was about, and it
-- stays on the block lists anyway.
CREATE TABLE erasures (
    phone      text        NOT NULL,
    id         bigint      GENERATED ALWAYS AS IDENTITY,
    erased_at  timestamptz NOT NULL DEFAULT now(),
    licence_id text,
    actor      text        NOT NULL,
    reason     text        NOT NULL,
    counts     jsonb       NOT NULL,
    PRIMARY KEY (phone, id)
);

-- The retention of raw texts (STOPGATE_RAW_TEXT_RETENTION_DAYS) finds old rows by the time they were stored.
-- Rows arrive in time order, so a BRIN index (a summary per 128 pages) finds them at almost no cost to ingest:
-- an insert into the table's last, not yet summarised, range does not touch it. Plain minmax: minmax_multi
-- would keep a range's summary narrower where rows rewritten by the retention land among new ones, but every
-- insert into a summarised range then merges its values (measured: ingest 0.74x; BENCHMARKS.md).
CREATE INDEX inbound_events_by_stored_at ON inbound_events USING brin (stored_at timestamptz_minmax_ops);
CREATE INDEX rejected_events_by_stored_at ON rejected_events USING brin (stored_at timestamptz_minmax_ops);

-- How far the retention of raw texts got, per table: every row stored before `purged_before` has had its raw
-- text purged, so each round reads only the rows stored since (never the whole past again). Starts at the
-- oldest row present.
CREATE TABLE raw_text_retention (
    table_name    text        PRIMARY KEY CHECK (table_name IN ('inbound_events', 'rejected_events')),
    purged_before timestamptz NOT NULL
);
INSERT INTO raw_text_retention (table_name, purged_before)
SELECT 'inbound_events', coalesce(min(stored_at), now()) FROM inbound_events
UNION ALL
SELECT 'rejected_events', coalesce(min(stored_at), now()) FROM rejected_events;
