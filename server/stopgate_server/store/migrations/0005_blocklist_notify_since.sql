-- stopgate schema, version 5: block-list notifications carry each entry's `since`.

-- With the time of every entry, a current in-memory index answers a check on its own instead of asking
-- PostgreSQL for the `since` of the numbers it finds blocked (one query per batch). Each changed row is now
-- a line "#@<since, microseconds since the epoch>" followed by its line "<q|s>|<+|->|<key>|<phone>".
-- Listeners of version 4 skip "#" lines, so they keep working while a rollout replaces them. 64 rows per
-- notification (not 80): with 64-character licence ids 64 rows of two lines stay within 8,000 bytes.
-- TRUNCATE fires no delete trigger: it is now announced as a line "#!q" or "#!s" (the list emptied), so that
-- an index answering alone does not keep blocking numbers that are gone.
CREATE OR REPLACE FUNCTION stopgate_notify_quarantine() RETURNS trigger
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

CREATE OR REPLACE FUNCTION stopgate_notify_shortcode_stop_list() RETURNS trigger
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

CREATE FUNCTION stopgate_notify_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('stopgate_blocklist', '#' || gen_random_uuid() || E'\n#!' || TG_ARGV[0]);
    RETURN NULL;
END
$$;

CREATE TRIGGER quarantine_truncate_notify AFTER TRUNCATE ON quarantine
    FOR EACH STATEMENT EXECUTE FUNCTION stopgate_notify_truncate('q');
CREATE TRIGGER shortcode_stop_list_truncate_notify AFTER TRUNCATE ON shortcode_stop_list
    FOR EACH STATEMENT EXECUTE FUNCTION stopgate_notify_truncate('s');
