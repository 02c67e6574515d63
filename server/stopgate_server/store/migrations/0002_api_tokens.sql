-- stopgate schema, version 2: API tokens.

-- A caller's credentials. Only the SHA-256 of the token is kept (tokens are 256 random bits, so a slow
-- password hash would add nothing). `licences` empty means every licence. Revoked tokens are kept for
-- the audit trail; names are unique among active tokens, so a rotation can reuse a name after the revoke.
CREATE TABLE api_tokens (
    token_id   text        PRIMARY KEY,
    name       text        NOT NULL,
    token_hash text        NOT NULL UNIQUE,
    roles      text[]      NOT NULL
        CHECK (cardinality(roles) > 0 AND roles <@ ARRAY['sender', 'ingest', 'reporting', 'admin']),
    licences   text[]      NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE revoked_at IS NULL;
