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
