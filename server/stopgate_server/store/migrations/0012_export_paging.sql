-- stopgate schema, version 12: the exports read a page per query, by keyset, and each page is one index
-- range. Each index is built under a new name first and swapped in at the end: the migration's transaction
-- then holds the exclusive lock that dropping an index takes (blocking reads too) only for the swap, not for
-- the build (which blocks writes only).

-- The quarantine export reads a licence's entries in (since, phone) order from the last one read: with the
-- phone in the index, a page is one index range even where thousands of entries share one `since` (a manual
-- quarantine of many numbers at once). Every query by licence alone uses it as before.
CREATE INDEX quarantine_by_licence_since_phone ON quarantine (licence_id, since, phone);

-- The interactions export finds the STOPs attributed to a page of sends by the time of the send they were
-- attributed to: one index range per page, instead of every STOP of the campaign on every page.
CREATE INDEX inbound_events_by_campaign_sent ON inbound_events (licence_id, campaign_id, attributed_sent_at)
    WHERE intent = 'OPT_OUT';

DROP INDEX quarantine_by_licence;
ALTER INDEX quarantine_by_licence_since_phone RENAME TO quarantine_by_licence;
DROP INDEX inbound_events_by_campaign;
ALTER INDEX inbound_events_by_campaign_sent RENAME TO inbound_events_by_campaign;
