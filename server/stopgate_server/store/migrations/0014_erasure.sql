-- stopgate schema, version 14: erasure of a number's personal data that keeps its opt-out (GDPR Art. 17 and
-- 21), and the retention of raw inbound texts.

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
