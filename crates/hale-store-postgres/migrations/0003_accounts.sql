-- Accounts, sign-in sessions and one-time tokens (issue 3). Not record data: an account
-- points at the record it owns, and sessions are shared by every `hale serve` process.
-- Secrets are never stored as given: passwords as argon2id hashes, session keys, email
-- links and recovery codes as SHA-256 digests, TOTP secrets sealed by the application.
CREATE TABLE accounts (
    account_id          TEXT PRIMARY KEY,
    email               TEXT NOT NULL UNIQUE,
    kind                TEXT NOT NULL,
    record_id           TEXT REFERENCES records (record_id),
    password_hash       TEXT NOT NULL,
    email_verified_at   BIGINT,
    verification_level  TEXT NOT NULL,
    totp_sealed         BYTEA,
    totp_last_step      BIGINT,
    created_at          BIGINT NOT NULL
);

CREATE TABLE sessions (
    key_hash            TEXT PRIMARY KEY,
    account_id          TEXT NOT NULL REFERENCES accounts (account_id),
    created_at          BIGINT NOT NULL,
    last_seen_at        BIGINT NOT NULL,
    second_factor_at    BIGINT,
    user_agent          TEXT NOT NULL
);
CREATE INDEX sessions_by_account ON sessions (account_id);

CREATE TABLE one_time_tokens (
    token_hash          TEXT PRIMARY KEY,
    account_id          TEXT NOT NULL REFERENCES accounts (account_id),
    purpose             TEXT NOT NULL,
    expires_at          BIGINT NOT NULL,
    used_at             BIGINT
);

CREATE TABLE recovery_codes (
    account_id          TEXT NOT NULL REFERENCES accounts (account_id),
    code_hash           TEXT NOT NULL,
    PRIMARY KEY (account_id, code_hash)
);
