//! Google Fit REST API datasets saved as JSON: a dataset (`{"point": [...]}`) or an
//! aggregate response (`{"bucket": [{"dataset": [...]}]}`).
//!
//! | data type | metric |
//! |---|---|
//! | `com.google.heart_rate.bpm` | heart rate |
//! | `com.google.step_count.delta` | steps |
//! | `com.google.weight` | weight (kg) |
//! | `com.google.height` | height (m) |
//! | `com.google.body.fat.percentage` | body fat |
//! | `com.google.oxygen_saturation` | oxygen saturation |
//! | `com.google.body.temperature` | body temperature |
//! | `com.google.blood_glucose` | blood glucose (mmol/L) |
//! | `com.google.blood_pressure` | systolic and diastolic blood pressure |
//! | `com.google.activity.segment` of a sleep type (72, 109–111) | sleep |
//!
//! Other types (total calories, location, speed, other activities) are reported as not
//! imported. Google Fit keeps decimals as 32-bit floats (`72.0999984741211`); they are read
//! back as the shortest decimal that float stands for (`72.1`).

use serde_json::Value;

use crate::metrics::by_id;
use crate::{Collected, ImportError, Rejection, Sample, measure, read_json};

const SLEEP_SEGMENTS: &[i64] = &[72, 109, 110, 111];

/// Reads one saved dataset or aggregate response.
pub fn read(input: impl std::io::Read) -> Result<Collected, ImportError> {
    let json = read_json(input)?;
    let mut points: Vec<&Value> = Vec::new();
    if let Some(p) = json.get("point").and_then(Value::as_array) {
        points.extend(p);
    } else if let Some(buckets) = json.get("bucket").and_then(Value::as_array) {
        for set in buckets.iter().filter_map(|b| b.get("dataset")?.as_array()) {
            points.extend(
                set.iter()
                    .filter_map(|d| d.get("point")?.as_array())
                    .flatten(),
            );
        }
    } else if json.get("dataSourceId").is_none() {
        // A dataset names its data source even when it holds no points.
        return Err(ImportError::NotThisKind("a Google Fit dataset"));
    }
    let mut out = Collected::default();
    for point in points {
        for outcome in samples(point) {
            out.push(outcome);
        }
    }
    Ok(out)
}

fn nanos_to_ms(v: Option<&Value>) -> Option<i64> {
    let nanos: i128 = match v? {
        Value::String(s) => s.parse().ok()?,
        other => other.as_i64()?.into(),
    };
    i64::try_from(nanos / 1_000_000).ok()
}

/// The `n`th value of a point: `intVal` as it is, `fpVal` as the float32 it was.
fn value(point: &Value, n: usize) -> Option<f64> {
    let v = point.get("value")?.get(n)?;
    if let Some(i) = v.get("intVal") {
        return i.as_f64();
    }
    let fp = v.get("fpVal")?.as_f64()?;
    format!("{}", fp as f32).parse().ok()
}

fn samples(point: &Value) -> Vec<Result<Sample, Rejection>> {
    let start = nanos_to_ms(point.get("startTimeNanos"));
    let end = nanos_to_ms(point.get("endTimeNanos"));
    // "raw:com.google.weight:com.fatsecret.android:" was written by com.fatsecret.android.
    let source = point
        .get("originDataSourceId")
        .and_then(Value::as_str)
        .and_then(|id| id.split(':').nth(2))
        .filter(|app| !app.is_empty())
        .unwrap_or("Google Fit");
    let one = |metric: &str, n: usize, unit: &str| {
        let metric = by_id(metric).ok_or(Rejection::UnknownType)?;
        measure(metric, start, end, value(point, n), unit, source)
    };
    match point.get("dataTypeName").and_then(Value::as_str) {
        Some("com.google.heart_rate.bpm") => vec![one("heart_rate", 0, "/min")],
        Some("com.google.step_count.delta") => vec![one("steps", 0, "{steps}")],
        Some("com.google.weight") => vec![one("body_weight", 0, "kg")],
        Some("com.google.height") => vec![one("body_height", 0, "m")],
        Some("com.google.body.fat.percentage") => vec![one("body_fat", 0, "%")],
        Some("com.google.oxygen_saturation") => vec![one("oxygen_saturation", 0, "%")],
        Some("com.google.body.temperature") => vec![one("body_temperature", 0, "Cel")],
        Some("com.google.blood_glucose") => vec![one("blood_glucose", 0, "mmol/L")],
        Some("com.google.blood_pressure") => vec![
            one("systolic_bp", 0, "mm[Hg]"),
            one("diastolic_bp", 1, "mm[Hg]"),
        ],
        Some("com.google.activity.segment")
            if value(point, 0).is_some_and(|t| SLEEP_SEGMENTS.contains(&(t as i64))) =>
        {
            let minutes = match (start, end) {
                (Some(s), Some(e)) => Some((e - s) as f64 / 60_000.0),
                _ => None,
            };
            let sleep = by_id("sleep").ok_or(Rejection::UnknownType);
            vec![sleep.and_then(|m| measure(m, start, end, minutes, "min", source))]
        }
        _ => vec![Err(Rejection::UnknownType)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SampleReader;

    fn file(name: &str) -> (Vec<Sample>, crate::Report) {
        let file = if name == "empty" {
            "googlefit-empty".to_owned()
        } else {
            format!("googlefit-merge-{name}")
        };
        let path = format!(
            "{}/tests/data/google-fit/{file}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut read = read(bytes.as_slice()).unwrap();
        let samples = read.by_ref().map(Result::unwrap).collect();
        (samples, read.report().clone())
    }

    #[test]
    fn weights_are_read_as_the_decimals_the_app_wrote_with_their_source() {
        let (s, _) = file("weight");
        assert_eq!(
            s.iter().map(|s| s.value).collect::<Vec<_>>(),
            [72.1, 72.0, 75.7507]
        );
        assert_eq!(s[0].source, "com.fatsecret.android");
        assert_eq!(s[0].start, 1_423_785_600_000);
    }

    #[test]
    fn step_deltas_keep_their_spans() {
        let (s, _) = file("step-deltas");
        assert_eq!(
            s.iter().map(|s| s.value).collect::<Vec<_>>(),
            [4146.0, 0.0, 17.0, 184.0]
        );
        assert_eq!(s[0].end - s[0].start, 2_141_000);
    }

    #[test]
    fn heights_in_metres_become_centimetres() {
        let (s, _) = file("height");
        assert!((s[0].value - 182.88).abs() < 1e-3, "{}", s[0].value);
        assert_eq!(s[0].unit, "cm");
    }

    #[test]
    fn heart_rate_points_are_read() {
        let (s, report) = file("heart-rate");
        assert_eq!(s.iter().map(|s| s.value).collect::<Vec<_>>(), [54.0, 58.0]);
        assert_eq!(report.imported, 2);
    }

    #[test]
    fn only_sleep_segments_become_sleep_and_the_rest_is_reported() {
        let (s, report) = file("activity-segments");
        assert!(s.is_empty(), "biking, running and walking are not sleep");
        assert_eq!(report.rejected[&Rejection::UnknownType], 3);
        let sleep = br#"{"point": [{"startTimeNanos": "1436275800000000000",
            "endTimeNanos": "1436277600000000000", "dataTypeName": "com.google.activity.segment",
            "value": [{"intVal": 72}]}]}"#;
        let s: Vec<Sample> = read(&sleep[..]).unwrap().map(Result::unwrap).collect();
        assert_eq!((s[0].metric.id, s[0].value), ("sleep", 30.0));
    }

    /// Every saved response in the samples (the Shimmer project's), with what it holds.
    #[test]
    fn every_sample_response_is_read_with_each_point_counted() {
        let table = [
            ("activity-segments", 3, 0),
            ("activity-segments-only-sleep", 1, 1),
            ("activity-segments-only-stationary-activity", 1, 0),
            ("calories-expended", 3, 0),
            ("empty", 0, 0),
            ("heart-rate", 2, 2),
            ("height", 2, 2),
            ("location-samples", 2, 0),
            ("speed", 2, 0),
            ("step-deltas", 4, 4),
            ("weight", 3, 3),
        ];
        for (name, records, imported) in table {
            let (_, report) = file(name);
            assert_eq!(
                (report.records, report.imported),
                (records, imported),
                "{name}"
            );
        }
    }

    #[test]
    fn total_calories_are_not_taken_for_active_energy() {
        let (s, report) = file("calories-expended");
        assert!(s.is_empty());
        assert_eq!(report.records, 3);
    }
}
