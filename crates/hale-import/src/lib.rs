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
pub mod csv;
mod dates;
pub mod fhir;
pub mod fit;
pub mod fitbit;
pub mod google_fit;
pub mod metrics;
pub mod omh;
pub mod synthetic;

pub use dates::{UtcOffset, parse_offset};

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
    /// A summary over a period (an average, a minimum) rather than a measurement.
    Statistic,
    /// About another person than the record's.
    OtherPerson,
}

impl Rejection {
    /// A stable key for messages in other languages (`unknown-type`, `bad-value`, …).
    pub fn key(self) -> &'static str {
        match self {
            Rejection::UnknownType => "unknown-type",
            Rejection::BadValue => "bad-value",
            Rejection::BadDate => "bad-date",
            Rejection::UnknownUnit => "unknown-unit",
            Rejection::Malformed => "malformed",
            Rejection::Statistic => "statistic",
            Rejection::OtherPerson => "other-person",
        }
    }

    /// A plain description for the closing report.
    pub fn describe(self) -> &'static str {
        match self {
            Rejection::UnknownType => "record type not imported yet",
            Rejection::BadValue => "missing or non-numeric value",
            Rejection::BadDate => "missing or malformed date",
            Rejection::UnknownUnit => "unit not recognised for this measurement",
            Rejection::Malformed => "unreadable record",
            Rejection::Statistic => "a summary (average, minimum or maximum), not a measurement",
            Rejection::OtherPerson => "about another person",
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
    /// Files, or parts of files, that could not be read, and what was kept (no content).
    pub damaged: Vec<String>,
}

impl Report {
    fn count(&mut self, outcome: &Result<Sample, Rejection>) {
        self.records += 1;
        match outcome {
            Ok(_) => self.imported += 1,
            Err(why) => *self.rejected.entry(*why).or_insert(0) += 1,
        }
    }
}

/// A stream of samples with a running report: what every importer gives the application.
pub trait SampleReader: Iterator<Item = Result<Sample, ImportError>> {
    /// Counts so far (complete once the iterator has ended).
    fn report(&self) -> &Report;
}

/// Samples of a small file (a FIT activity, a day of JSON), read whole and then handed out.
#[derive(Debug, Default)]
pub struct Collected {
    samples: std::collections::VecDeque<Sample>,
    report: Report,
}

impl Collected {
    /// Counts a record's outcome and keeps its sample.
    fn push(&mut self, outcome: Result<Sample, Rejection>) {
        self.report.count(&outcome);
        if let Ok(sample) = outcome {
            self.samples.push_back(sample);
        }
    }

    /// Notes a part of the input that could not be read.
    fn damaged(&mut self, what: String) {
        self.report.damaged.push(what);
    }
}

impl Iterator for Collected {
    type Item = Result<Sample, ImportError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.samples.pop_front().map(Ok)
    }
}

impl SampleReader for Collected {
    fn report(&self) -> &Report {
        &self.report
    }
}

/// One measurement, checked: a known unit, a finite value, an end not before its start.
fn measure(
    metric: &'static Metric,
    start: Option<i64>,
    end: Option<i64>,
    value: Option<f64>,
    unit: &str,
    source: &str,
) -> Result<Sample, Rejection> {
    let value = value.filter(|v| v.is_finite()).ok_or(Rejection::BadValue)?;
    let start = start.ok_or(Rejection::BadDate)?;
    let end = end.ok_or(Rejection::BadDate)?;
    if end < start {
        return Err(Rejection::BadDate);
    }
    let value = metric.convert(value, unit).ok_or(Rejection::UnknownUnit)?;
    Ok(Sample {
        metric,
        start,
        end,
        value,
        unit: metric.unit,
        source: source.chars().filter(|c| !c.is_control()).collect(),
    })
}

/// The largest JSON or FIT file read whole (a day, a month or an activity is far smaller).
pub const MAX_WHOLE_FILE: u64 = 64 * 1024 * 1024;

/// Reads a file that is parsed whole, refusing one over [`MAX_WHOLE_FILE`].
fn read_whole(input: impl std::io::Read) -> Result<Vec<u8>, ImportError> {
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut input.take(MAX_WHOLE_FILE + 1), &mut bytes)?;
    if bytes.len() as u64 > MAX_WHOLE_FILE {
        return Err(ImportError::TooBig {
            limit_mb: MAX_WHOLE_FILE / (1024 * 1024),
        });
    }
    Ok(bytes)
}

/// Reads a JSON file whole (see [`MAX_WHOLE_FILE`]).
fn read_json(input: impl std::io::Read) -> Result<serde_json::Value, ImportError> {
    let bytes = read_whole(input)?;
    serde_json::from_slice(&bytes).map_err(|e| ImportError::Json {
        line: e.line(),
        column: e.column(),
    })
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
    /// The JSON is broken (where, never what).
    #[error("the file is not readable JSON (line {line}, column {column})")]
    Json {
        /// Line.
        line: usize,
        /// Column.
        column: usize,
    },
    /// A file read whole is bigger than any real one of its kind.
    #[error("the file is larger than {limit_mb} MB, more than any export of this kind")]
    TooBig {
        /// The limit.
        limit_mb: u64,
    },
    /// The file is not of the kind asked for.
    #[error("not {0}")]
    NotThisKind(&'static str),
    /// A CSV file or its column mapping is unusable.
    #[error("{0}")]
    Csv(String),
}
