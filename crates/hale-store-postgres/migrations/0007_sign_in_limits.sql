-- Failed attempts at signing in and at codes, by key (an account, a network address), kept
-- in the database so that every `hale serve` process on it counts the same failures. Keys
-- are HMAC digests: no email address or network address is stored.
CREATE TABLE sign_in_limits (
    key_hash       TEXT PRIMARY KEY,
    failures       BIGINT NOT NULL,
    blocked_until  BIGINT NOT NULL,
    last_at        BIGINT NOT NULL
);
-- Idle counts are swept with each failure: found by age, not by reading every row.
CREATE INDEX sign_in_limits_by_age ON sign_in_limits (last_at);
