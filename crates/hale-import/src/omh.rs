//! Open mHealth data points (IEEE 1752): one data point, a list of them, or bare bodies.
//!
//! The body's measure names the metric (`heart_rate`, `step_count`, `body_weight`,
//! `body_height`, `body_mass_index`, `body_fat_percentage`, `body_temperature`,
//! `oxygen_saturation`, `respiratory_rate`, `blood_glucose`, `systolic_blood_pressure` with
//! `diastolic_blood_pressure`, `sleep_duration`, `kcal_burned`). A body with a
//! `descriptive_statistic` (an average or a minimum over a period) is a summary, not a
//! measurement, and is reported as such rather than stored beside the real values.

use serde_json::Value;

use crate::metrics::by_id;
use crate::{Collected, ImportError, Rejection, dates, measure, read_json};

/// Body measures and the metrics they carry.
const MEASURES: &[(&str, &str)] = &[
    ("heart_rate", "heart_rate"),
    ("step_count", "steps"),
    ("body_weight", "body_weight"),
    ("body_height", "body_height"),
    ("body_mass_index", "bmi"),
    ("body_fat_percentage", "body_fat"),
    ("body_temperature", "body_temperature"),
    ("oxygen_saturation", "oxygen_saturation"),
    ("respiratory_rate", "respiratory_rate"),
    ("blood_glucose", "blood_glucose"),
    ("systolic_blood_pressure", "systolic_bp"),
    ("diastolic_blood_pressure", "diastolic_bp"),
    ("sleep_duration", "sleep"),
    ("kcal_burned", "active_energy"),
];

/// Reads a JSON file of Open mHealth data points.
pub fn read(input: impl std::io::Read) -> Result<Collected, ImportError> {
    let json = read_json(input)?;
    let points: Vec<&Value> = match &json {
        Value::Array(points) => points.iter().collect(),
        Value::Object(_) => vec![&json],
        _ => return Err(ImportError::NotThisKind("Open mHealth data points")),
    };
    let mut out = Collected::default();
    for point in points {
        let (header, body) = match point.get("body") {
            Some(body) => (point.get("header"), body),
            None => (None, point),
        };
        let source = header
            .and_then(|h| h.pointer("/acquisition_provenance/source_name"))
            .and_then(Value::as_str)
            .unwrap_or("Open mHealth");
        let measures: Vec<_> = MEASURES
            .iter()
            .filter_map(|(key, metric)| Some((body.get(*key)?, *metric)))
            .collect();
        if measures.is_empty() {
            out.push(Err(Rejection::UnknownType));
            continue;
        }
        let statistic = body.get("descriptive_statistic").is_some();
        let span = time_frame(body.get("effective_time_frame"));
        for (measure_value, metric) in measures {
            let outcome = if statistic {
                Err(Rejection::Statistic)
            } else {
                one(measure_value, metric, span, source)
            };
            out.push(outcome);
        }
    }
    Ok(out)
}

fn one(
    measure_value: &Value,
    metric: &str,
    (start, end): (Option<i64>, Option<i64>),
    source: &str,
) -> Result<crate::Sample, Rejection> {
    let metric = by_id(metric).ok_or(Rejection::UnknownType)?;
    // Older step-count versions write a bare number.
    let (value, unit) = match measure_value {
        Value::Number(n) => (n.as_f64(), "steps"),
        other => (
            other.get("value").and_then(Value::as_f64),
            other.get("unit").and_then(Value::as_str).unwrap_or(""),
        ),
    };
    measure(metric, start, end, value, omh_unit(unit), source)
}

/// Open mHealth's unit names where they differ from the ones the metric table knows.
fn omh_unit(unit: &str) -> &str {
    match unit {
        "kg/m^2" | "kg/m²" => "kg/m2",
        "sec" => "s",
        "beats/min" | "breaths/min" => "/min",
        other => other,
    }
}

/// `date_time`, or `time_interval` as start and end, start and duration, or end and duration.
fn time_frame(frame: Option<&Value>) -> (Option<i64>, Option<i64>) {
    let Some(frame) = frame else {
        return (None, None);
    };
    let at = |v: Option<&Value>| v.and_then(Value::as_str).and_then(dates::parse_rfc3339);
    if let Some(t) = at(frame.get("date_time")) {
        return (Some(t), Some(t));
    }
    let Some(interval) = frame.get("time_interval") else {
        return (None, None);
    };
    // A date and a part of the day ("2013-02-05", "evening"): that part, in UTC.
    if let Some(day) = interval
        .get("date")
        .and_then(Value::as_str)
        .and_then(|d| dates::parse_any(d, dates::UtcOffset::UTC))
    {
        let hours = match interval.get("part_of_day").and_then(Value::as_str) {
            Some("morning") => (6, 12),
            Some("afternoon") => (12, 18),
            Some("evening") => (18, 24),
            Some("night") => (0, 6),
            _ => (0, 24),
        };
        return (
            Some(day + hours.0 * 3_600_000),
            Some(day + hours.1 * 3_600_000 - 1),
        );
    }
    let start = at(interval.get("start_date_time"));
    let end = at(interval.get("end_date_time"));
    let duration = interval.get("duration").and_then(duration_ms);
    match (start, end, duration) {
        (Some(s), Some(e), _) => (Some(s), Some(e)),
        (Some(s), None, Some(d)) => (Some(s), Some(s + d)),
        (None, Some(e), Some(d)) => (Some(e - d), Some(e)),
        _ => (None, None),
    }
}

fn duration_ms(d: &Value) -> Option<i64> {
    let value = d.get("value")?.as_f64()?;
    let per: f64 = match d.get("unit")?.as_str()? {
        "ms" => 1.0,
        "sec" | "s" => 1e3,
        "min" => 60e3,
        "h" => 3_600e3,
        "d" => 86_400e3,
        "wk" => 604_800e3,
        _ => return None,
    };
    let ms = value * per;
    (0.0..1e15).contains(&ms).then_some(ms as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Sample, SampleReader};

    fn fixture(path: &str) -> Vec<u8> {
        let path = format!("{}/tests/data/omh/{path}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn all(bytes: &[u8]) -> (Vec<Sample>, crate::Report) {
        let mut read = read(bytes).unwrap();
        let samples = read.by_ref().map(Result::unwrap).collect();
        (samples, read.report().clone())
    }

    #[test]
    fn a_blood_pressure_data_point_gives_both_readings_at_its_time() {
        let (s, _) = all(&fixture("blood-pressure.json"));
        let at = dates::parse_rfc3339("2020-02-05T15:25:00Z").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].metric.id, s[0].value, s[0].start),
            ("systolic_bp", 115.0, at)
        );
        assert_eq!(
            (s[1].metric.id, s[1].value, s[1].end),
            ("diastolic_bp", 60.0, at)
        );
        assert_eq!(s[0].unit, "mm[Hg]");
    }

    #[test]
    fn a_step_count_over_an_hour_keeps_its_span() {
        let (s, _) = all(&fixture("step-count.json"));
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].value, 10600.0);
        assert_eq!(s[0].end - s[0].start, 3_600_000);
    }

    #[test]
    fn a_full_data_point_names_its_source_and_units_are_converted() {
        let point = br#"{"header": {"uuid": "x", "schema_id": {"namespace": "omh",
            "name": "body-temperature", "version": "3.0"},
            "source_creation_date_time": "2024-01-02T08:00:00Z",
            "acquisition_provenance": {"source_name": "Thermo app"}},
          "body": {"body_temperature": {"value": 98.6, "unit": "F"},
            "effective_time_frame": {"time_interval": {"start_date_time": "2024-01-02T08:00:00Z",
              "duration": {"value": 30, "unit": "sec"}}}}}"#;
        let (s, _) = all(point);
        assert_eq!(s[0].source, "Thermo app");
        assert!((s[0].value - 37.0).abs() < 1e-9);
        assert_eq!(s[0].end - s[0].start, 30_000);
    }

    #[test]
    fn summaries_unknown_measures_and_bad_values_are_reported_not_stored() {
        let list = format!(
            "[{}, {}, {}, {}]",
            String::from_utf8(fixture("heart-rate-minimum.json")).unwrap(),
            r#"{"ambient_temperature": {"value": 20, "unit": "C"}}"#,
            r#"{"heart_rate": {"value": "fast", "unit": "beats/min"},
                "effective_time_frame": {"date_time": "2024-01-02T08:00:00Z"}}"#,
            r#"{"heart_rate": {"value": 60, "unit": "beats/min"}}"#,
        );
        let (s, report) = all(list.as_bytes());
        assert!(s.is_empty());
        assert_eq!(report.records, 4);
        assert_eq!(report.rejected[&Rejection::Statistic], 1);
        assert_eq!(report.rejected[&Rejection::UnknownType], 1);
        assert_eq!(report.rejected[&Rejection::BadValue], 1);
        assert_eq!(report.rejected[&Rejection::BadDate], 1);
    }

    /// Every valid example of the schemas Hale maps (the Open mHealth project's own test
    /// data): each is imported, or is a summary, or has no time to put it at; none is
    /// misread as an unknown measure, value or unit.
    #[test]
    fn every_valid_example_of_the_mapped_schemas_is_imported_or_rightly_reported() {
        fn walk(d: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, out);
                } else {
                    out.push(p);
                }
            }
        }
        let mut files = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/omh/schemas"),
            &mut files,
        );
        assert_eq!(files.len(), 118);
        let (mut imported, mut summaries, mut undated) = (0, 0, 0);
        for file in &files {
            let read = read(std::fs::read(file).unwrap().as_slice()).unwrap();
            let report = read.report();
            for (why, n) in &report.rejected {
                match why {
                    Rejection::Statistic => summaries += n,
                    Rejection::BadDate => undated += n,
                    other => panic!("{}: {other:?}", file.display()),
                }
            }
            imported += report.imported;
        }
        assert_eq!((imported, summaries, undated), (67, 44, 25));
    }

    #[test]
    fn broken_json_says_where_and_never_what() {
        let Err(e) = read(&b"[{\"heart_rate\": {\"value\": 61,"[..]) else {
            panic!("broken JSON was read");
        };
        assert!(e.to_string().contains("line 1"), "{e}");
        assert!(!e.to_string().contains("61"));
    }
}
