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

-- Shortcodes are compared in ASCII digits from this version on (domain/senders.py, ascii_digits). Earlier
-- versions stored a STOP sent to "３６１８０" on a stop list keyed by those very characters, which no check
-- from 36180 would ever find: such entries move to the ASCII key (an entry already there is kept as it is).
-- The code points of the digit zero of every script after ASCII (Unicode 14): each script's digits 0 to 9
-- follow its zero.
WITH zeros (zero) AS (VALUES
    (1632), (1776), (1984), (2406), (2534), (2662), (2790), (2918), (3046), (3174), (3302), (3430), (3558),
    (3664), (3792), (3872), (4160), (4240), (6112), (6160), (6470), (6608), (6784), (6800), (6992), (7088),
    (7232), (7248), (42528), (43216), (43264), (43472), (43504), (43600), (44016), (65296), (66720),
    (68912), (69734), (69872), (69942), (70096), (70384), (70736), (70864), (71248), (71360), (71472),
    (71904), (72016), (72784), (73040), (73120), (92768), (92864), (93008), (120782), (120792), (120802),
    (120812), (120822), (123200), (123632), (125264), (130032)
), digits AS (
    SELECT string_agg(chr(zero + digit), '' ORDER BY zero, digit) AS other,
           string_agg(digit::text, '' ORDER BY zero, digit) AS ascii
    FROM zeros, generate_series(0, 9) AS digit
), moved AS (
    INSERT INTO shortcode_stop_list (phone, shortcode, since, event_id, last_stop_at, confirmation_used)
    SELECT phone, translate(shortcode, digits.other, digits.ascii), since, event_id, last_stop_at,
           confirmation_used
    FROM shortcode_stop_list, digits
    WHERE shortcode !~ '^[0-9]*$'
    ON CONFLICT (phone, shortcode) DO NOTHING
)
DELETE FROM shortcode_stop_list WHERE shortcode !~ '^[0-9]*$';
