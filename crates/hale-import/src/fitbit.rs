//! Fitbit Web API responses, saved as JSON files: intraday heart rate and steps, daily step
//! totals, weight logs and sleep logs.
//!
//! Fitbit writes local times without an offset; they are read at the offset the person gives
//! (the time zone their Fitbit account is set to). Weights are read as kilograms, which is
//! what the API returns unless asked for another unit system.

use serde_json::Value;

use crate::dates::{UtcOffset, parse_any};
use crate::metrics::by_id;
use crate::{Collected, ImportError, Rejection, measure, read_json};

const SOURCE: &str = "Fitbit";
const MINUTE: i64 = 60_000;
const DAY: i64 = 86_400_000;

/// Reads one saved API response.
pub fn read(input: impl std::io::Read, offset: UtcOffset) -> Result<Collected, ImportError> {
    let json = read_json(input)?;
    let Some(response) = json.as_object() else {
        return Err(ImportError::NotThisKind("a Fitbit API response"));
    };
    let mut out = Collected::default();
    let mut understood = false;
    let day = |series: &str| {
        json.get(series)
            .and_then(|s| s.get(0))
            .and_then(|d| d.get("dateTime"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    for (key, metric, unit) in [
        ("activities-heart-intraday", "heart_rate", "/min"),
        ("activities-steps-intraday", "steps", "{steps}"),
    ] {
        let Some(intraday) = response.get(key) else {
            continue;
        };
        understood = true;
        let date = day(key.trim_end_matches("-intraday"));
        let interval = intraday
            .get("datasetInterval")
            .and_then(Value::as_i64)
            .unwrap_or(1)
            .clamp(1, 60);
        for point in list(intraday.get("dataset")) {
            let start = point
                .get("time")
                .and_then(Value::as_str)
                .and_then(|t| parse_any(&format!("{date}T{t}"), offset));
            // Steps count over the interval; a heart rate is a reading at its minute.
            let end = match metric {
                "steps" => start.map(|s| s + interval * MINUTE),
                _ => start,
            };
            let value = point.get("value").and_then(number);
            out.push(sample(metric, start, end, value, unit));
        }
    }
    // Daily totals, unless the minutes of the same day are in the file (they would count twice).
    if let (Some(days), false) = (
        response.get("activities-steps"),
        response.contains_key("activities-steps-intraday"),
    ) {
        understood = true;
        for d in list(Some(days)) {
            let start = d
                .get("dateTime")
                .and_then(Value::as_str)
                .and_then(|t| parse_any(t, offset));
            let value = d.get("value").and_then(number);
            out.push(sample(
                "steps",
                start,
                start.map(|s| s + DAY),
                value,
                "{steps}",
            ));
        }
    }
    if let Some(weights) = response.get("weight") {
        understood = true;
        for w in list(Some(weights)) {
            let at = match (w.get("date"), w.get("time")) {
                (Some(Value::String(d)), Some(Value::String(t))) => {
                    parse_any(&format!("{d}T{t}"), offset)
                }
                _ => None,
            };
            out.push(sample(
                "body_weight",
                at,
                at,
                w.get("weight").and_then(number),
                "kg",
            ));
            if let Some(bmi) = w.get("bmi") {
                out.push(sample("bmi", at, at, number(bmi), "kg/m2"));
            }
        }
    }
    if let Some(sleeps) = response.get("sleep") {
        understood = true;
        for s in list(Some(sleeps)) {
            let at = |k: &str| {
                s.get(k)
                    .and_then(Value::as_str)
                    .and_then(|t| parse_any(t, offset))
            };
            let value = s.get("minutesAsleep").and_then(number);
            out.push(sample(
                "sleep",
                at("startTime"),
                at("endTime"),
                value,
                "min",
            ));
        }
    }
    // Logged activities (a walk, a run) repeat steps and calories the day's figures already
    // count: each is reported as not imported rather than counted twice.
    if let Some(activities) = response.get("activities") {
        understood = true;
        for _ in list(Some(activities)) {
            out.push(Err(Rejection::UnknownType));
        }
    }
    if !understood {
        return Err(ImportError::NotThisKind(
            "a Fitbit heart rate, steps, weight or sleep response",
        ));
    }
    Ok(out)
}

fn list(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// Fitbit writes some numbers as strings (`"value": "3212"`).
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::String(s) => s.trim().parse().ok(),
        other => other.as_f64(),
    }
}

fn sample(
    metric: &str,
    start: Option<i64>,
    end: Option<i64>,
    value: Option<f64>,
    unit: &str,
) -> Result<crate::Sample, Rejection> {
    let metric = by_id(metric).ok_or(Rejection::UnknownType)?;
    measure(metric, start, end, value, unit, SOURCE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Sample, SampleReader, dates::parse_rfc3339};

    fn file(name: &str, offset: UtcOffset) -> (Vec<Sample>, crate::Report) {
        let path = format!("{}/tests/data/fitbit/{name}", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut read = read(bytes.as_slice(), offset).unwrap();
        let samples = read.by_ref().map(Result::unwrap).collect();
        (samples, read.report().clone())
    }

    #[test]
    fn intraday_heart_rate_is_one_reading_a_minute_at_the_persons_offset() {
        let bst = UtcOffset::from_hms(1, 0, 0).unwrap();
        let (s, report) = file("fitbit-activities-heart-1d-1m-intraday.json", bst);
        assert_eq!(
            s.iter().map(|s| s.value).collect::<Vec<_>>(),
            [64.0, 63.0, 64.0, 65.0, 65.0]
        );
        assert_eq!(s[0].start, parse_rfc3339("2015-08-20T23:01:00Z").unwrap());
        assert_eq!(s[0].start, s[0].end);
        assert_eq!(report.imported, 5);
    }

    #[test]
    fn intraday_steps_count_over_their_minute_and_the_daily_total_is_not_added_again() {
        let (s, _) = file(
            "fitbit-activities-steps-1d-1m-intraday.json",
            UtcOffset::UTC,
        );
        assert_eq!(
            s.iter().map(|s| s.value).collect::<Vec<_>>(),
            [7.0, 0.0, 52.0]
        );
        assert!(s.iter().all(|s| s.end - s.start == MINUTE));
    }

    #[test]
    fn daily_step_totals_span_their_day() {
        let (s, _) = file("fitbit-activities-steps-timeseries.json", UtcOffset::UTC);
        assert_eq!(
            s.iter().map(|s| s.value).collect::<Vec<_>>(),
            [175.0, 2937.0, 0.0]
        );
        assert_eq!(s[0].start, parse_rfc3339("2015-08-23T00:00:00Z").unwrap());
        assert_eq!(s[0].end - s[0].start, DAY);
    }

    #[test]
    fn weight_logs_give_weight_and_bmi() {
        let (s, _) = file("fitbit-body-log-weight.json", UtcOffset::UTC);
        let weights: Vec<f64> = s
            .iter()
            .filter(|s| s.metric.id == "body_weight")
            .map(|s| s.value)
            .collect();
        assert_eq!(weights, [56.7, 55.9, 58.1, 57.2]);
        assert_eq!(s[1].metric.id, "bmi");
        assert_eq!(s[1].value, 21.48);
        assert_eq!(s[0].start, parse_rfc3339("2015-05-13T18:28:59Z").unwrap());
    }

    #[test]
    fn sleep_logs_give_minutes_asleep_over_the_time_in_bed() {
        let (s, _) = file("fitbit-sleep-date.json", UtcOffset::UTC);
        assert_eq!(s.iter().map(|s| s.value).collect::<Vec<_>>(), [63.0, 112.0]);
        assert_eq!(s[1].start, parse_rfc3339("2016-12-13T01:16:00Z").unwrap());
        assert_eq!(s[1].end, parse_rfc3339("2016-12-13T03:14:00Z").unwrap());
    }

    /// Every saved response in the samples (the Shimmer project's), with what it holds.
    #[test]
    fn every_sample_response_is_read_with_each_entry_counted() {
        let table = [
            ("fitbit-activities-date-empty-activities-list.json", 0, 0),
            (
                "fitbit-activities-date-multiple-in-activities-list.json",
                3,
                0,
            ),
            (
                "fitbit-activities-date-single-in-activities-list.json",
                1,
                0,
            ),
            ("fitbit-activities-heart-1d-1m-intraday.json", 5, 5),
            ("fitbit-activities-steps-1d-1m-intraday.json", 3, 3),
            ("fitbit-activities-steps-timeseries.json", 3, 3),
            ("fitbit-body-log-weight.json", 8, 8),
            ("fitbit-sleep-date.json", 2, 2),
            ("fitbit-sleep-date-empty-sleep-list.json", 0, 0),
            ("fitbit-sleep-date-range.json", 2, 2),
            ("fitbit-sleep-date-range-empty-sleep-list.json", 0, 0),
        ];
        for (name, records, imported) in table {
            let (_, report) = file(name, UtcOffset::UTC);
            assert_eq!(
                (report.records, report.imported),
                (records, imported),
                "{name}"
            );
        }
    }

    #[test]
    fn other_json_is_not_taken_for_fitbit() {
        for json in [&br#"{"bucket": []}"#[..], b"[]", b"{}"] {
            assert!(matches!(
                read(json, UtcOffset::UTC),
                Err(ImportError::NotThisKind(_))
            ));
        }
    }
}
