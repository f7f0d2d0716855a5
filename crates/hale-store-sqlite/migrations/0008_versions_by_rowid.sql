-- Resource content moves out of a WITHOUT ROWID table. There, every row is a key: SQLite keeps
-- at most about 1,000 bytes of a key on its page, so nearly every sealed resource spilled into
-- overflow pages; each comparison while looking a version up read that whole row (content
-- included) back into memory; and each page split copied a whole row, content and all, into
-- the level above. A rowid table keeps content on its leaf pages, and the lookup is by a narrow
-- unique index.
CREATE TABLE resource_versions_by_rowid (
    record_id   TEXT NOT NULL,
    rtype       TEXT NOT NULL,
    id          TEXT NOT NULL,
    version     INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    method      TEXT NOT NULL,
    content     BLOB
);
INSERT INTO resource_versions_by_rowid (record_id, rtype, id, version, updated_at, method, content)
    SELECT record_id, rtype, id, version, updated_at, method, content FROM resource_versions
    ORDER BY record_id, rtype, id, version;
DROP TABLE resource_versions;
ALTER TABLE resource_versions_by_rowid RENAME TO resource_versions;
CREATE UNIQUE INDEX resource_versions_key ON resource_versions (record_id, rtype, id, version);
CREATE INDEX resource_versions_by_time ON resource_versions (record_id, updated_at);
