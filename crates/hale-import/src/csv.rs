//! CSV files from any app, with a column mapping: which column holds the time (and, for counts
//! over a span, the end), which holds the value, which metric it is and in what unit.
//!
//! Times may be RFC 3339, Apple's format, or local (`2024-03-01 08:00`, `2024-03-01`) read at
//! the given offset. Streamed a row at a time, so a file of any length is read in flat memory.

use std::io::Read;

use crate::dates::{UtcOffset, parse_any};
use crate::{ImportError, Metric, Rejection, Report, Sample, SampleReader, measure};

/// How to read a CSV file's columns.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// What the values are.
    pub metric: &'static Metric,
    /// The header of the column with the time (or the start of the span).
    pub time: String,
    /// The header of the column with the end of the span, for counts such as steps.
    pub end: Option<String>,
    /// The header of the column with the value.
    pub value: String,
    /// The unit the values are in (one the metric accepts, such as `lb` for weight).
    pub unit: String,
    /// The offset of times written without one.
    pub offset: UtcOffset,
    /// The app or device the file came from.
    pub source: String,
}

/// Streams the rows of a CSV file as samples.
pub struct Reader<R: Read> {
    csv: ::csv::Reader<R>,
    mapping: Mapping,
    columns: (usize, Option<usize>, usize),
    row: ::csv::StringRecord,
    report: Report,
}

impl<R: Read> Reader<R> {
    /// Reads the header row and checks the mapping against it.
    pub fn new(input: R, mapping: Mapping) -> Result<Self, ImportError> {
        if mapping.metric.convert(1.0, &mapping.unit).is_none() {
            return Err(ImportError::Csv(format!(
                "the unit {:?} is not one Hale knows for {}",
                mapping.unit, mapping.metric.name
            )));
        }
        let mut csv = ::csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(input);
        let headers = csv
            .headers()
            .map_err(|_| ImportError::Csv("the file has no readable header row".into()))?
            .clone();
        let column = |name: &str| {
            headers
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(name.trim()))
                .ok_or_else(|| ImportError::Csv(format!("the file has no column named {name:?}")))
        };
        let columns = (
            column(&mapping.time)?,
            mapping.end.as_deref().map(column).transpose()?,
            column(&mapping.value)?,
        );
        Ok(Self {
            csv,
            mapping,
            columns,
            row: ::csv::StringRecord::new(),
            report: Report::default(),
        })
    }

    fn sample(&self) -> Result<Sample, Rejection> {
        let cell = |i: usize| self.row.get(i).map(str::trim).filter(|c| !c.is_empty());
        let (time, end, value) = self.columns;
        let start = cell(time).map(|t| parse_any(t, self.mapping.offset));
        let start = start.ok_or(Rejection::BadDate)?;
        let end = match end {
            Some(i) => cell(i).and_then(|t| parse_any(t, self.mapping.offset)),
            None => start,
        };
        let value = cell(value).and_then(|v| v.parse::<f64>().ok());
        let m = &self.mapping;
        measure(m.metric, start, end, value, &m.unit, &m.source)
    }
}

impl<R: Read> Iterator for Reader<R> {
    type Item = Result<Sample, ImportError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let more = self.csv.read_record(&mut self.row);
            self.report.bytes = self.csv.position().byte();
            let outcome = match more {
                Ok(false) => return None,
                Ok(true) => self.sample(),
                // A row that is not valid UTF-8 or cannot be split is one unreadable record.
                Err(e) if matches!(e.kind(), ::csv::ErrorKind::Utf8 { .. }) => {
                    Err(Rejection::Malformed)
                }
                Err(_) => {
                    return Some(Err(ImportError::Csv(format!(
                        "the file cannot be read past byte {}",
                        self.report.bytes
                    ))));
                }
            };
            self.report.count(&outcome);
            if let Ok(sample) = outcome {
                return Some(Ok(sample));
            }
        }
    }
}

impl<R: Read> SampleReader for Reader<R> {
    fn report(&self) -> &Report {
        &self.report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dates::parse_rfc3339;
    use crate::metrics::by_id;

    fn mapping(metric: &str, unit: &str) -> Mapping {
        Mapping {
            metric: by_id(metric).unwrap(),
            time: "Date".into(),
            end: None,
            value: "Weight".into(),
            unit: unit.into(),
            offset: UtcOffset::from_hms(1, 0, 0).unwrap(),
            source: "Scale app".into(),
        }
    }

    #[test]
    fn rows_become_samples_in_the_metrics_unit_and_bad_rows_are_counted() {
        let file = "Date,Weight,Note\n\
                    2024-06-01 07:30,154,before breakfast\n\
                    2024-06-02T07:30:00Z,155.5,\n\
                    2024-06-03,heavy,\n\
                    yesterday,150,\n";
        let mut reader = Reader::new(file.as_bytes(), mapping("body_weight", "lb")).unwrap();
        let s: Vec<Sample> = reader.by_ref().map(Result::unwrap).collect();
        assert_eq!(s.len(), 2);
        assert!((s[0].value - 69.853).abs() < 1e-3);
        assert_eq!(s[0].start, parse_rfc3339("2024-06-01T06:30:00Z").unwrap());
        assert_eq!(s[1].start, parse_rfc3339("2024-06-02T07:30:00Z").unwrap());
        assert_eq!(s[0].source, "Scale app");
        let report = reader.report();
        assert_eq!((report.records, report.imported), (4, 2));
        assert_eq!(report.rejected[&Rejection::BadValue], 1);
        assert_eq!(report.rejected[&Rejection::BadDate], 1);
    }

    #[test]
    fn counts_over_a_span_take_the_end_column() {
        let file = "from;to;steps\n2024-06-01 08:00;2024-06-01 09:00;1200\n";
        let mut m = mapping("steps", "count");
        m.end = Some("to".into());
        (m.time, m.value) = ("from".into(), "steps".into());
        let mut csv = ::csv::ReaderBuilder::new();
        csv.delimiter(b';');
        let reader = Reader {
            csv: csv.from_reader(file.as_bytes()),
            ..Reader::new("from,to,steps\n".as_bytes(), m).unwrap()
        };
        let s: Vec<Sample> = reader.map(Result::unwrap).collect();
        assert_eq!(s[0].value, 1200.0);
        assert_eq!(s[0].end - s[0].start, 3_600_000);
    }

    #[test]
    fn a_mapping_that_does_not_fit_the_file_is_refused_before_reading() {
        let file = "When,Weight\n2024-06-01,70\n";
        let Err(e) = Reader::new(file.as_bytes(), mapping("body_weight", "kg")) else {
            panic!("missing column accepted");
        };
        assert_eq!(e.to_string(), "the file has no column named \"Date\"");
        let Err(e) = Reader::new(
            "Date,Weight\n".as_bytes(),
            mapping("body_weight", "parsecs"),
        ) else {
            panic!("unknown unit accepted");
        };
        assert!(e.to_string().contains("parsecs"), "{e}");
    }
}
