-- stopgate schema, version 6: the duplicate check of ingest can only probe the primary key.

-- The events among (phones[i], event_ids[i]) stored before, with what was done with them: i (from 1) and
-- the stored outcome. One primary-key probe per event, never a scan of inbound_events, whatever its
-- statistics say: with enable_seqscan on, a plan made while the table looked empty (statistics taken then)
-- scanned the whole table once per event and stayed cached while the table grew, until the next ANALYZE
-- (an 800-event batch took 1.9 s). STABLE: it reads the snapshot of the statement that calls it.
CREATE FUNCTION stopgate_stored_events(phones text[], event_ids text[])
RETURNS TABLE (idx bigint, outcome text, intent text, matched_keyword text, match_kind text, licence_id text,
               campaign_id text)
LANGUAGE plpgsql STABLE SET enable_seqscan = off AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT b.idx, e.outcome, e.intent, e.matched_keyword, e.match_kind, e.licence_id, e.campaign_id
    FROM unnest(phones, event_ids) WITH ORDINALITY AS b(phone, event_id, idx)
    JOIN LATERAL (  -- a probe per event: never a join over the whole table
        SELECT outcome, intent, matched_keyword, match_kind, licence_id, campaign_id FROM inbound_events
        WHERE inbound_events.phone = b.phone AND inbound_events.event_id = b.event_id
        LIMIT 1
    ) e ON true;
END
$$;
