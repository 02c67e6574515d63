-- stopgate schema, version 10: the request ids (AIP-155) of RecordSends and of CheckBatch with a campaign,
-- so that a retried request records its sends once and gets the first answer again.

-- One row per request id of a licence and method, inserted by the statement that records the request's
-- sends (so it exists exactly when they do): a concurrent copy's insert waits for that statement's
-- transaction, then finds the row. fingerprint: SHA-256 of the request, to refuse the id for a different
-- one; answer: the response first sent, encoded. Deleted after the retention (STOPGATE_REQUEST_ID_RETENTION_S)
-- by the periodic maintenance.
CREATE TABLE send_requests (
    request_id  uuid        NOT NULL,
    licence_id  text        NOT NULL,
    method      text        NOT NULL CHECK (method IN ('CheckBatch', 'RecordSends')),
    fingerprint bytea       NOT NULL,
    answer      bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (request_id, licence_id, method)
);
CREATE INDEX send_requests_by_age ON send_requests (created_at);
