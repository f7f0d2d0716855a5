//! Wearable and consumer-app exports, read into [`Sample`]s: one measurement of one metric
//! over a time span, with its unit normalised to UCUM and its metric mapped to LOINC.
//!
//! Pure and streaming: each reader takes any `Read` and holds one element at a time, so a
//! ten-year export is read in flat memory. Nothing an input points to is ever fetched, and
//! no entity is ever expanded. Every record either becomes a sample or is counted as
//! rejected with a reason: nothing is lost silently.
//!
//! ```
//! let xml = r#"<HealthData><Record type="HKQuantityTypeIdentifierHeartRate" sourceName="Watch"
//!     unit="count/min" startDate="2024-03-01 08:00:00 +0000" endDate="2024-03-01 08:00:00 +0000"
//!     value="61"/></HealthData>"#;
//! let mut reader = hale_import::apple_health::Reader::new(xml.as_bytes());
//! let sample = reader.next().unwrap().unwrap();
//! assert_eq!(sample.metric.loinc, "8867-4");
//! assert_eq!(sample.unit, "/min");
//! assert_eq!(reader.report().imported, 1);
//! ```

pub mod apple_health;
pub mod archive;
mod dates;
pub mod metrics;
pub mod synthetic;

pub use metrics::Metric;

/// One measurement: a metric's value over `[start, end]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// What was measured.
    pub metric: &'static Metric,
    /// Start, milliseconds since the Unix epoch (UTC).
    pub start: i64,
    /// End, milliseconds since the Unix epoch (UTC); equal to `start` for a point.
    pub end: i64,
    /// The value, in `unit`.
    pub value: f64,
    /// The UCUM unit (always the metric's canonical unit).
    pub unit: &'static str,
    /// The app or device that recorded it, without control characters.
    pub source: String,
}

/// Why a record was not imported (counted in the report; never carries the record's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rejection {
    /// A record type Hale does not map yet.
    UnknownType,
    /// The value is missing or not a number.
    BadValue,
    /// A date is missing or malformed.
    BadDate,
    /// The unit cannot be converted to the metric's unit.
    UnknownUnit,
    /// The record's XML could not be read (bad characters, unknown entity).
    Malformed,
}

impl Rejection {
    /// A plain description for the closing report.
    pub fn describe(self) -> &'static str {
        match self {
            Rejection::UnknownType => "record type not imported yet",
            Rejection::BadValue => "missing or non-numeric value",
            Rejection::BadDate => "missing or malformed date",
            Rejection::UnknownUnit => "unit not recognised for this measurement",
            Rejection::Malformed => "unreadable record",
        }
    }
}

/// The closing report of an import.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Records seen.
    pub records: u64,
    /// Samples produced.
    pub imported: u64,
    /// Records not imported, by reason.
    pub rejected: std::collections::BTreeMap<Rejection, u64>,
    /// Bytes read so far (for progress).
    pub bytes: u64,
}

/// A problem that stops an import: the file itself cannot be read further.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Reading the input failed.
    #[error("cannot read the export: {0}")]
    Io(#[from] std::io::Error),
    /// The XML is broken beyond a single record.
    #[error("the export is not readable XML at byte {position}: {message}")]
    Xml {
        /// Where.
        position: u64,
        /// What the parser said (no content).
        message: String,
    },
    /// The archive was refused (not a zip, no export inside, or too big to be real).
    #[error("the archive was refused: {0}")]
    Archive(String),
    /// The file is not an Apple Health export.
    #[error("not an Apple Health export (no <HealthData> root)")]
    NotAnExport,
}
