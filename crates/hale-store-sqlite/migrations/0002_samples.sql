-- Wearable samples: a narrow time series, not one FHIR resource each (a ten-year export holds
-- millions). A series is one record's one metric from one source; a sample is keyed by its
-- series and times and value, so importing the same export twice stores nothing new.
CREATE TABLE sample_series (
    series_id   INTEGER PRIMARY KEY,
    record_id   TEXT NOT NULL REFERENCES records (record_id),
    metric      TEXT NOT NULL,
    source      TEXT NOT NULL,
    UNIQUE (record_id, metric, source)
);

CREATE TABLE samples (
    series_id   INTEGER NOT NULL,
    start_ms    INTEGER NOT NULL,
    end_ms      INTEGER NOT NULL,
    value       REAL NOT NULL,
    PRIMARY KEY (series_id, start_ms, end_ms, value)
) WITHOUT ROWID;
