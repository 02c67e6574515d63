-- stopgate schema, version 4: no index of inbound events by licence.

-- No query reads inbound_events by (licence_id, received_at): reports and exports go through
-- inbound_events_by_campaign, status look-ups through the primary key. The index cost every ingested event
-- a B-tree insertion (about a tenth of the database's work per STOP).
DROP INDEX inbound_events_by_licence;
