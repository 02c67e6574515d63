-- stopgate schema, version 8: each send has an id, and an inbound event points to the send it was attributed
-- to (until now a STOP found its send again by the equality of their times).

-- From a sequence: PostgreSQL 15 has no identity columns on partitioned tables. Each connection takes 100
-- ids at a time, so that concurrent recordings do not queue on the sequence: ids are unique, but neither
-- gapless nor in the order of the sends. Existing sends are numbered here: this rewrites every row of
-- `sends` once, under a lock that holds recordings back meanwhile (docs/RUNBOOK.md, Migrations).
CREATE SEQUENCE sends_send_id_seq AS bigint CACHE 100;
ALTER TABLE sends ADD COLUMN send_id bigint;
UPDATE sends SET send_id = nextval('sends_send_id_seq');
ALTER TABLE sends ALTER COLUMN send_id SET DEFAULT nextval('sends_send_id_seq');
ALTER TABLE sends ALTER COLUMN send_id SET NOT NULL;
ALTER SEQUENCE sends_send_id_seq OWNED BY sends.send_id;

-- The send an opt-out or opt-in was attributed to (NULL: none). Events stored before this version are
-- pointed to theirs here, found by phone, licence, campaign and time (one of them when a number was sent the
-- campaign twice at the same instant).
ALTER TABLE inbound_events ADD COLUMN attributed_send_id bigint;
UPDATE inbound_events e SET attributed_send_id = s.send_id
FROM sends s
WHERE e.attributed_sent_at IS NOT NULL
  AND s.phone = e.phone AND s.sent_at = e.attributed_sent_at
  AND s.licence_id = e.licence_id AND s.campaign_id = e.campaign_id;
