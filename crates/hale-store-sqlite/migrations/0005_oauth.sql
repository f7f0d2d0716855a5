-- The OAuth 2.0 authorisation server (issue 3 §6): clients an operator registered, and the
-- authorisation codes and refresh tokens issued to them, as SHA-256 digests, each spent once.
-- What an app may reach is a grant (a Consent) in the person's record, named by grant_id.
CREATE TABLE oauth_clients (
    client_id       TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    redirect_uris   TEXT NOT NULL,
    public          INTEGER NOT NULL,
    created_at      INTEGER NOT NULL
);

CREATE TABLE oauth_tokens (
    token_hash      TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    client_id       TEXT NOT NULL REFERENCES oauth_clients (client_id),
    grant_id        TEXT NOT NULL,
    record_id       TEXT NOT NULL REFERENCES records (record_id),
    account_id      TEXT NOT NULL REFERENCES accounts (account_id),
    scope           TEXT NOT NULL,
    redirect_uri    TEXT,
    challenge       TEXT,
    expires_at      INTEGER NOT NULL,
    used_at         INTEGER
);
CREATE INDEX oauth_tokens_by_grant ON oauth_tokens (grant_id);
