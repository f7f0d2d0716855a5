-- Organisations and their systems (issue 3 §6, SMART Backend Services): an operator
-- registers an organisation, and clients that belong to it authenticate with a signed
-- assertion (private_key_jwt) against the public keys registered with them. What an
-- organisation may reach is a grant (a Consent) in each person's record that names it.
CREATE TABLE organisations (
    org_id          TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);

ALTER TABLE oauth_clients ADD COLUMN org_id TEXT REFERENCES organisations (org_id);
ALTER TABLE oauth_clients ADD COLUMN jwks TEXT;

-- Client assertions already accepted (by their jti), kept until they expire, so that none
-- is accepted twice (RFC 7523 §3).
CREATE TABLE oauth_assertions (
    client_id       TEXT NOT NULL REFERENCES oauth_clients (client_id),
    jti             TEXT NOT NULL,
    expires_at      BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
