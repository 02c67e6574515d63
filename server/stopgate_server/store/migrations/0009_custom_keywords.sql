-- stopgate schema, version 9: opt-out, opt-in and help keywords that admins add to a shortcode or a licence.

-- scope 'shortcode' or 'licence', scope_key the shortcode (ASCII digits) or licence id; keyword normalised
-- as the classifier reads texts (domain/keywords.normalise), written as the admin wrote it; replies by ISO
-- 639-1 language.
CREATE TABLE custom_keywords (
    scope      text        NOT NULL CHECK (scope IN ('shortcode', 'licence')),
    scope_key  text        NOT NULL,
    keyword    text        NOT NULL,
    written    text        NOT NULL,
    intent     text        NOT NULL CHECK (intent IN ('OPT_OUT', 'OPT_IN', 'HELP')),
    replies    jsonb       NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text        NOT NULL,
    PRIMARY KEY (scope, scope_key, keyword)
);

-- Moved by every change of custom_keywords, in the same statement (so it moves when the change commits):
-- each server process reads it every second and reloads the keywords when it moved.
CREATE TABLE custom_keywords_revision (
    revision bigint NOT NULL
);
INSERT INTO custom_keywords_revision VALUES (0);
