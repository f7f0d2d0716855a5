-- Wearable samples: see the SQLite migration of the same number for the design.
CREATE TABLE sample_series (
    series_id   BIGSERIAL PRIMARY KEY,
    record_id   TEXT NOT NULL REFERENCES records (record_id),
    metric      TEXT NOT NULL,
    source      TEXT NOT NULL,
    UNIQUE (record_id, metric, source)
);

CREATE TABLE samples (
    series_id   BIGINT NOT NULL,
    start_ms    BIGINT NOT NULL,
    end_ms      BIGINT NOT NULL,
    value       DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (series_id, start_ms, end_ms, value)
);
