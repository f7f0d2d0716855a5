-- Organisations and their systems (issue 3 §6, SMART Backend Services): an operator
-- registers an organisation, and clients that belong to it authenticate with a signed
-- assertion (private_key_jwt) against the public keys registered with them. What an
-- organisation may reach is a grant (a Consent) in each person's record that names it.
CREATE TABLE organisations (
    org_id          TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    created_at      INTEGER NOT NULL
);

ALTER TABLE oauth_clients ADD COLUMN org_id TEXT REFERENCES organisations (org_id);
ALTER TABLE oauth_clients ADD COLUMN jwks TEXT;

-- Signed assertions already accepted, kept until they expire, so that none is accepted
-- twice: a client's assertions by their jti (RFC 7523 §3), and the nonces of sign-ins
-- through an OpenID provider (client_id `oidc-nonce`).
CREATE TABLE oauth_assertions (
    client_id       TEXT NOT NULL,
    jti             TEXT NOT NULL,
    expires_at      INTEGER NOT NULL,
    PRIMARY KEY (client_id, jti)
);

-- People who sign in through an OpenID Connect provider (NHS login, or another the operator
-- configured): the provider's identifier for them, and what it verified.
CREATE TABLE account_identities (
    issuer          TEXT NOT NULL,
    subject         TEXT NOT NULL,
    account_id      TEXT NOT NULL REFERENCES accounts (account_id),
    nhs_number      TEXT,
    proofing_level  TEXT NOT NULL,
    linked_at       INTEGER NOT NULL,
    PRIMARY KEY (issuer, subject)
);

-- The nonce an app sent with its authorisation request, returned in the ID token
-- (OpenID Connect Core 3.1.2.1).
ALTER TABLE oauth_tokens ADD COLUMN nonce TEXT;

-- A professional's account belongs to the organisation they work for: they reach the
-- records that gave the organisation access.
ALTER TABLE accounts ADD COLUMN org_id TEXT REFERENCES organisations (org_id);

-- Passkeys (WebAuthn), a second factor: the public key credential as webauthn-rs keeps it
-- (public key, signature counter), never a secret.
CREATE TABLE passkeys (
    credential_id   TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL REFERENCES accounts (account_id),
    name            TEXT NOT NULL,
    passkey         TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER
);
CREATE INDEX passkeys_by_account ON passkeys (account_id);
