-- stopgate schema, version 7: alias routes, and the rule that attributed each event.

-- A send from an alphanumeric alias records the alias's reply shortcode (the one the operator substitutes
-- for "00000" in "STOP 00000"), so that a STOP sent to that shortcode is attributed to it. '' for other
-- senders: a shortcode's replies come to `sender` itself, a longcode's to the longcode. Adding a column
-- with a constant default rewrites no partition.
ALTER TABLE sends ADD COLUMN reply_shortcode text NOT NULL DEFAULT '';

-- Which rule attributed an opt-out or opt-in to its licence and campaign: SHORTCODE_ROUTE (a send routed
-- through the event's shortcode), MOST_RECENT_SEND (the most recent send at all), LICENCE_HINT (no send:
-- the event's hint) or UNATTRIBUTED; '' for other events, manual actions and rows older than this version.
ALTER TABLE inbound_events ADD COLUMN attribution text NOT NULL DEFAULT '';
ALTER TABLE number_history ADD COLUMN attribution text NOT NULL DEFAULT '';
ALTER TABLE quarantine ADD COLUMN attribution text NOT NULL DEFAULT '';

-- The duplicate check answers a repeated event with its first attribution, the rule included.
DROP FUNCTION stopgate_stored_events(text[], text[]);
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
