-- Records, their wrapped keys, resources with every version, and the typed search index.
-- The record id leads every key: one person's data is one range.

CREATE TABLE records (
    record_id   TEXT PRIMARY KEY,
    created_at  BIGINT NOT NULL
);

-- Destroying a row here makes the record's content unrecoverable (crypto-shredding).
CREATE TABLE record_keys (
    record_id   TEXT PRIMARY KEY REFERENCES records (record_id),
    wrapped_key BYTEA NOT NULL
);

CREATE TABLE resources (
    record_id   TEXT NOT NULL,
    rtype       TEXT NOT NULL,
    id          TEXT NOT NULL,
    version     BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    deleted     BIGINT NOT NULL,
    PRIMARY KEY (record_id, rtype, id)
);
-- Ids are unique per type across records, so a reference names one resource.
CREATE UNIQUE INDEX resources_by_id ON resources (rtype, id);
CREATE INDEX resources_by_updated ON resources (record_id, rtype, updated_at);

CREATE TABLE resource_versions (
    record_id   TEXT NOT NULL,
    rtype       TEXT NOT NULL,
    id          TEXT NOT NULL,
    version     BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    method      TEXT NOT NULL,
    content     BYTEA,
    PRIMARY KEY (record_id, rtype, id, version)
);
CREATE INDEX resource_versions_by_time ON resource_versions (record_id, updated_at);

-- Index tables are keyed by value within a record (WITHOUT ROWID: the table is that index),
-- plus a row index (rewriting a resource's entries, row-by-row probes and _sort). Tokens and
-- references also have a cross-record index, for system searches by identifier or patient.
CREATE TABLE idx_token (record_id TEXT NOT NULL, rtype TEXT NOT NULL, param TEXT NOT NULL,
    code TEXT NOT NULL, system TEXT NOT NULL, text TEXT COLLATE "C" NOT NULL, id TEXT NOT NULL,
    PRIMARY KEY (record_id, rtype, param, code, system, text, id));
CREATE INDEX idx_token_global ON idx_token (rtype, param, code, system);
CREATE INDEX idx_token_row ON idx_token (record_id, rtype, id, param);

CREATE TABLE idx_string (record_id TEXT NOT NULL, rtype TEXT NOT NULL, param TEXT NOT NULL,
    norm TEXT COLLATE "C" NOT NULL, exact TEXT NOT NULL, id TEXT NOT NULL,
    PRIMARY KEY (record_id, rtype, param, norm, exact, id));
CREATE INDEX idx_string_row ON idx_string (record_id, rtype, id, param);

CREATE TABLE idx_date (record_id TEXT NOT NULL, rtype TEXT NOT NULL, param TEXT NOT NULL,
    lo BIGINT NOT NULL, hi BIGINT NOT NULL, id TEXT NOT NULL,
    PRIMARY KEY (record_id, rtype, param, lo, hi, id));
CREATE INDEX idx_date_row ON idx_date (record_id, rtype, id, param);

CREATE TABLE idx_ref (record_id TEXT NOT NULL, rtype TEXT NOT NULL, param TEXT NOT NULL,
    target_id TEXT NOT NULL, target_type TEXT NOT NULL, url TEXT NOT NULL, id TEXT NOT NULL,
    PRIMARY KEY (record_id, rtype, param, target_id, target_type, url, id));
CREATE INDEX idx_ref_global ON idx_ref (rtype, param, target_id);
CREATE INDEX idx_ref_target ON idx_ref (record_id, target_type, target_id);
CREATE INDEX idx_ref_row ON idx_ref (record_id, rtype, id, param);

CREATE TABLE idx_quantity (record_id TEXT NOT NULL, rtype TEXT NOT NULL, param TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL, system TEXT NOT NULL, code TEXT NOT NULL, id TEXT NOT NULL,
    PRIMARY KEY (record_id, rtype, param, value, system, code, id));
CREATE INDEX idx_quantity_row ON idx_quantity (record_id, rtype, id, param);

CREATE TABLE idx_number (record_id TEXT NOT NULL, rtype TEXT NOT NULL, param TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL, id TEXT NOT NULL,
    PRIMARY KEY (record_id, rtype, param, value, id));
CREATE INDEX idx_number_row ON idx_number (record_id, rtype, id, param);

CREATE TABLE idx_uri (record_id TEXT NOT NULL, rtype TEXT NOT NULL, param TEXT NOT NULL,
    value TEXT NOT NULL, id TEXT NOT NULL,
    PRIMARY KEY (record_id, rtype, param, value, id));
CREATE INDEX idx_uri_row ON idx_uri (record_id, rtype, id, param);
