-- The audit log (issue 4): who did what to which record, when, through which app and why.
-- Append-only and hash-chained: each entry's hash covers the one before, and the head (the
-- newest entry's number and hash) is kept with a MAC under a key derived from the master key,
-- so an edited, removed, inserted, reordered or cut-off entry is found by `hale audit verify`.
-- Entries name resources and search parameters, never their values.
CREATE TABLE audit_events (
    seq           BIGINT PRIMARY KEY,
    at_ms         BIGINT NOT NULL,
    record_id     TEXT,
    actor         TEXT NOT NULL,
    on_behalf_of  TEXT,
    app           TEXT,
    action        TEXT NOT NULL,
    what          TEXT NOT NULL,
    purpose       TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    request_id    TEXT NOT NULL,
    hash          TEXT NOT NULL
);

CREATE INDEX audit_events_by_record ON audit_events (record_id, seq);

-- One row: the newest entry, with its MAC. It is also what writers lock on PostgreSQL, so
-- entries are numbered one after another across processes.
CREATE TABLE audit_head (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seq   BIGINT NOT NULL,
    hash  TEXT NOT NULL,
    mac   TEXT NOT NULL
);

-- Signed points on the chain an operator exports and keeps elsewhere (`hale audit checkpoint`).
CREATE TABLE audit_checkpoints (
    seq    BIGINT PRIMARY KEY,
    hash   TEXT NOT NULL,
    at_ms  BIGINT NOT NULL,
    mac    TEXT NOT NULL
);
