-- stopgate schema, version 11: shortcodes bound to the licences that use them.

-- A token limited to licences sends through, and sees the stop list of, only the shortcodes bound to the
-- request's licence. shortcode in ASCII digits; bound_by: the actor of BindShortcode.
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

-- Existing deployments keep working: every licence is bound to each shortcode its recorded sends went
-- through (sent from the shortcode, or from an alias whose reply shortcode it is), and each shortcode a STOP
-- or reply attributed to it was sent to (its sends may be in a month dropped since), from the first of them.
-- Sends store a shortcode sender's address in ASCII digits (3 to 8 of them; aliases hold a letter, longcodes
-- 9 digits or more). One scan of the sends and of the inbound events, once.
INSERT INTO shortcode_licences (licence_id, shortcode, bound_at, bound_by)
SELECT licence_id, route, min(since), 'use before bindings'
FROM (
    SELECT licence_id, sent_at AS since,
        CASE WHEN sender ~ '^[0-9]{3,8}$' THEN sender ELSE reply_shortcode END AS route
    FROM sends
    UNION ALL
    SELECT licence_id, received_at, recipient
    FROM inbound_events
    WHERE licence_id IS NOT NULL AND recipient ~ '^[0-9]{3,8}$'
) routed
WHERE route <> ''
GROUP BY licence_id, route;
