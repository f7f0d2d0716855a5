//! FIT files (Garmin and other devices), decoded with the `fitparser` crate's FIT profile.
//!
//! | FIT message | field | metric |
//! |---|---|---|
//! | `record` (activities, about one a second) | `heart_rate` | heart rate |
//! | `monitoring` (all-day tracking) | `heart_rate` | heart rate |
//! | `monitoring` | `steps` (walking and running) | steps, as the steps since the previous message |
//! | `weight_scale` | `weight`, `percent_fat` | weight, body fat |
//! | `hrv` (beat-to-beat intervals) | `time` | heart rate variability: SDNN of the file's intervals, over the activity |
//!
//! A damaged file keeps what was read before the damage; the report says where it stopped,
//! and the next file is read as usual.

use std::collections::HashMap;

use fitparser::de::{FitObject, FitStreamProcessor};
use fitparser::{FitDataRecord, Value};

#[cfg(test)]
use crate::Sample;
use crate::metrics::by_id;
use crate::{Collected, ImportError, Rejection, measure, read_whole};

/// Seconds from the Unix epoch to the FIT epoch (1989-12-31T00:00:00Z).
const FIT_EPOCH: i64 = 631_065_600;

/// Reads one FIT file (or several concatenated), named `name` in the report.
pub fn read(input: impl std::io::Read, name: &str) -> Result<Collected, ImportError> {
    let bytes = read_whole(input)?;
    let mut file = FitFile::default();
    // fitparser can panic on some damaged input (a fuzz test found one); a damaged file must
    // never take the import, or the server, down with it.
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decode(&bytes, name, &mut file)
    }));
    let messages = decoded.unwrap_or_else(|_| {
        file.out
            .damaged(format!("{name}: it is damaged; what came before was read"));
        file.messages
    });
    if messages == 0 {
        return Err(ImportError::NotThisKind("a FIT file"));
    }
    file.finish();
    file.out.report.bytes = bytes.len() as u64;
    Ok(file.out)
}

/// Decodes every message of `bytes` into `file`; returns how many there were.
fn decode(bytes: &[u8], name: &str, file: &mut FitFile) -> u64 {
    let mut processor = FitStreamProcessor::new();
    let mut rest: &[u8] = bytes;
    let mut at_header = true;
    while !rest.is_empty() {
        let at = bytes.len() - rest.len();
        if at_header && !plausible_header(rest) {
            if file.messages > 0 {
                file.out
                    .damaged(damage_at(name, "it is damaged", at, file.messages));
            }
            break;
        }
        at_header = false;
        let (next, object) = match processor.deserialize_next(rest) {
            Ok(found) => found,
            Err(e) => {
                file.out.damaged(damage(name, &e, at, file.messages));
                break;
            }
        };
        rest = next;
        match object {
            // A file ends with its checksum; the next may start a new file with new definitions.
            FitObject::Crc(_) => {
                processor.reset();
                at_header = true;
            }
            FitObject::DataMessage(message) => match processor.decode_message(message) {
                Ok(record) => {
                    file.messages += 1;
                    file.message(&record);
                }
                Err(e) => {
                    file.out.damaged(damage(name, &e, at, file.messages));
                    break;
                }
            },
            FitObject::Header(_) | FitObject::DefinitionMessage(_) => {}
        }
    }
    file.messages
}

/// A FIT header: 12 or 14 bytes, all present, with the `.FIT` signature.
fn plausible_header(bytes: &[u8]) -> bool {
    let size = usize::from(bytes.first().copied().unwrap_or(0));
    (size == 12 || size == 14) && bytes.len() >= size && bytes.get(8..12) == Some(b".FIT")
}

/// Where a file broke, without its content.
fn damage(name: &str, e: &fitparser::Error, at: usize, messages: u64) -> String {
    let why = match &**e {
        fitparser::ErrorKind::UnexpectedEof(_) => "it ends early",
        fitparser::ErrorKind::InvalidCrc(_) => "its checksum does not match",
        _ => "it is damaged",
    };
    damage_at(name, why, at, messages)
}

fn damage_at(name: &str, why: &str, at: usize, messages: u64) -> String {
    format!("{name}: {why} (at byte {at}); the {messages} messages before that were read")
}

#[derive(Default)]
struct FitFile {
    out: Collected,
    messages: u64,
    source: String,
    /// The latest full timestamp (FIT seconds), which `timestamp_16` fields count from.
    last_timestamp: Option<i64>,
    /// Cumulative steps by activity type: (count, when), to turn totals into steps per span.
    steps_so_far: HashMap<String, (f64, i64)>,
    /// Beat-to-beat intervals (seconds) and the span of the activity they belong to.
    intervals: Vec<f64>,
    first: Option<i64>,
    last: Option<i64>,
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Array(_) | Value::String(_) | Value::Invalid | Value::Timestamp(_) => None,
        other => other.clone().try_into().ok(),
    }
}

fn field<'a>(record: &'a FitDataRecord, name: &str) -> Option<&'a Value> {
    record
        .fields()
        .iter()
        .find(|f| f.name() == name)
        .map(|f| f.value())
}

impl FitFile {
    fn message(&mut self, record: &FitDataRecord) {
        let full = match field(record, "timestamp") {
            Some(Value::Timestamp(t)) => Some(t.timestamp() - FIT_EPOCH),
            _ => None,
        };
        if full.is_some() {
            self.last_timestamp = full;
        }
        let when = full.or_else(|| self.expand_timestamp_16(record));
        let millis = when.map(|t| (t + FIT_EPOCH) * 1000);
        match record.kind().to_string().as_str() {
            "file_id" => {
                let part = |name| match field(record, name) {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(v) => number(v).map(|n| n.to_string()),
                    None => None,
                };
                let product = part("garmin_product").or_else(|| part("product"));
                self.source = match (part("manufacturer"), product) {
                    (Some(m), Some(p)) => format!("{m} {p}"),
                    (Some(m), None) => m,
                    _ => String::new(),
                };
            }
            "record" => {
                self.span(millis);
                if let Some(hr) = field(record, "heart_rate") {
                    self.sample("heart_rate", millis, millis, number(hr), "/min");
                }
            }
            "monitoring" => {
                if let Some(hr) = field(record, "heart_rate") {
                    self.sample("heart_rate", millis, millis, number(hr), "/min");
                }
                self.monitoring_steps(record, millis);
            }
            "weight_scale" => {
                // The FIT profile stores weight in hundredths of a kilogram; fitparser hands the
                // `weight` type over unscaled, as an integer.
                let weight = field(record, "weight").and_then(|v| match v {
                    Value::Float32(_) | Value::Float64(_) => number(v),
                    other => number(other).map(|n| n / 100.0),
                });
                self.sample("body_weight", millis, millis, weight, "kg");
                if let Some(fat) = field(record, "percent_fat") {
                    self.sample("body_fat", millis, millis, number(fat), "%");
                }
            }
            "hrv" => {
                if let Some(Value::Array(times)) = field(record, "time") {
                    self.intervals.extend(
                        times
                            .iter()
                            .filter_map(number)
                            .filter(|s| (0.2..=3.0).contains(s)),
                    );
                }
            }
            _ => {}
        }
    }

    /// A `timestamp_16` counts seconds from the last full timestamp, modulo 2^16.
    fn expand_timestamp_16(&self, record: &FitDataRecord) -> Option<i64> {
        let short = number(field(record, "timestamp_16")?)? as i64;
        let last = self.last_timestamp?;
        Some(last + ((short - (last & 0xFFFF)) & 0xFFFF))
    }

    fn span(&mut self, at: Option<i64>) {
        if let Some(at) = at {
            self.first = Some(self.first.map_or(at, |f| f.min(at)));
            self.last = Some(self.last.map_or(at, |l| l.max(at)));
        }
    }

    /// Monitoring messages carry the day's steps so far for each activity type; a sample is
    /// the steps since the previous message (or since the count restarted).
    fn monitoring_steps(&mut self, record: &FitDataRecord, at: Option<i64>) {
        let activity = match field(record, "activity_type") {
            Some(Value::String(a)) if a == "walking" || a == "running" => a.clone(),
            _ => return,
        };
        // The profile's `steps` is `cycles` at scale 1; where fitparser resolves the activity
        // type too late to pick that subfield it applies `cycles`' own scale of 2.
        let total = match (field(record, "steps"), field(record, "cycles")) {
            (Some(steps), _) => number(steps),
            (None, Some(cycles)) => number(cycles).map(|c| c * 2.0),
            (None, None) => return,
        };
        let (Some(total), Some(at)) = (total, at) else {
            self.out.push(Err(Rejection::BadValue));
            return;
        };
        let (count, since) = match self.steps_so_far.get(&activity) {
            Some(&(before, when)) if total >= before => (total - before, when),
            _ => (total, at),
        };
        self.steps_so_far.insert(activity, (total, at));
        if count > 0.0 {
            self.sample("steps", Some(since), Some(at), Some(count), "{steps}");
        }
    }

    fn sample(
        &mut self,
        metric: &str,
        start: Option<i64>,
        end: Option<i64>,
        value: Option<f64>,
        unit: &str,
    ) {
        if let Some(metric) = by_id(metric) {
            let source = if self.source.is_empty() {
                "FIT file"
            } else {
                &self.source
            };
            let outcome = measure(metric, start, end, value, unit, source);
            self.out.push(outcome);
        }
    }

    /// Heart rate variability as the SDNN of every beat-to-beat interval in the file.
    fn finish(&mut self) {
        if self.intervals.len() < 2 {
            return;
        }
        let n = self.intervals.len() as f64;
        let mean = self.intervals.iter().sum::<f64>() / n;
        let variance = self
            .intervals
            .iter()
            .map(|x| (x - mean).powi(2))
            .sum::<f64>()
            / (n - 1.0);
        let sdnn_ms = variance.sqrt() * 1000.0;
        let (first, last) = (self.first, self.last);
        self.sample(
            "heart_rate_variability",
            first,
            last,
            Some((sdnn_ms * 10.0).round() / 10.0),
            "ms",
        );
    }
}

/// Keeps only what a sample needs, so a test can compare without the `Metric` reference.
#[cfg(test)]
fn brief(s: &Sample) -> (&'static str, i64, i64, f64) {
    (s.metric.id, s.start, s.end, s.value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SampleReader;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/data/fit/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn samples(name: &str) -> (Vec<Sample>, crate::Report) {
        let mut read = read(fixture(name).as_slice(), name).unwrap();
        let samples: Vec<Sample> = read.by_ref().map(Result::unwrap).collect();
        (samples, read.report().clone())
    }

    #[test]
    fn a_weight_scale_gives_weight_and_body_fat_in_kilograms_and_percent() {
        let (s, report) = samples("WeightScaleMultiUser.fit");
        let at = 1_252_532_280_000; // 2009-09-09T21:38:00Z
        assert_eq!(
            s.iter().map(brief).collect::<Vec<_>>(),
            vec![
                ("body_weight", at, at, 75.8),
                ("body_fat", at, at, 22.3),
                ("body_weight", at + 3_600_000, at + 3_600_000, 58.2),
                ("body_fat", at + 3_600_000, at + 3_600_000, 25.1),
            ]
        );
        assert_eq!(s[0].source, "dynastream hrm_fit_single_byte_product_id");
        assert!(report.damaged.is_empty());
    }

    #[test]
    fn an_activity_gives_its_heart_rate_as_another_decoder_reads_it() {
        let (s, report) = samples("garmin-fenix-5-run.fit");
        let hr: Vec<f64> = s
            .iter()
            .filter(|s| s.metric.id == "heart_rate")
            .map(|s| s.value)
            .collect();
        // python-fitparse's decoding of the same file, one row per record message.
        let expected: Vec<f64> = String::from_utf8(fixture("garmin-fenix-5-run-records.csv"))
            .unwrap()
            .lines()
            .skip(1)
            .map(|row| row.split(',').nth(1).unwrap().parse().unwrap())
            .collect();
        assert_eq!(expected.len(), 21);
        assert_eq!(hr, expected);
        let first = s.iter().find(|s| s.metric.id == "heart_rate").unwrap();
        assert_eq!(first.start, 1_497_191_649_000); // Sun Jun 11 07:34:09 PDT 2017
        assert_eq!(first.source, "garmin fenix5");
        assert_eq!(report.imported as usize, s.len());
        assert!(report.damaged.is_empty());
    }

    #[test]
    fn beat_to_beat_intervals_give_one_variability_figure_over_the_activity() {
        let (s, _) = samples("hrv-activity.fit");
        let hrv: Vec<&Sample> = s
            .iter()
            .filter(|s| s.metric.id == "heart_rate_variability")
            .collect();
        assert_eq!(hrv.len(), 1);
        // Over a 18-minute indoor ride the intervals spread widely (rest to 185 a minute).
        assert!((20.0..200.0).contains(&hrv[0].value), "{}", hrv[0].value);
        assert_eq!(hrv[0].start, 1_644_252_472_000); // 2022-02-07T16:47:52Z
        assert!(hrv[0].end - hrv[0].start > 17 * 60_000);
    }

    #[test]
    fn all_day_monitoring_turns_running_totals_into_steps_per_span() {
        let (s, _) = samples("MonitoringFile.fit");
        let steps: Vec<&Sample> = s.iter().filter(|s| s.metric.id == "steps").collect();
        // python-fitparse reads the same running totals: walking ends at 3,142 and running at 31,
        // neither restarting, so the spans add up to 3,173.
        assert_eq!(steps.iter().map(|s| s.value).sum::<f64>(), 3173.0);
        assert!(steps.iter().all(|s| s.start <= s.end));
    }

    #[test]
    fn a_damaged_file_keeps_what_came_before_and_says_where_it_broke() {
        for name in [
            "activity-unexpected-eof.fit",
            "activity-settings-nodata.fit",
            "activity-settings-corruptheader.fit",
        ] {
            let read = read(fixture(name).as_slice(), name).unwrap();
            let report = read.report();
            assert_eq!(report.damaged.len(), 1, "{name}");
            assert!(report.damaged[0].starts_with(name), "{}", report.damaged[0]);
            assert!(
                report.damaged[0].contains("at byte"),
                "{}",
                report.damaged[0]
            );
        }
    }

    /// Every sample file, against python-fitparse 1.2's reading of the same files: heart rates
    /// from activity records, scale weights, and the SDNN of the beat-to-beat intervals.
    /// `DeveloperData.fit`'s three heart rates carry no time, so they are rejected as undated
    /// (python-fitparse lists them without one); the three damaged files are reported.
    #[test]
    fn every_sample_file_reads_as_another_decoder_reads_it() {
        type Expected = (&'static str, usize, &'static [f64], Option<f64>, bool);
        let table: [Expected; 17] = [
            ("Activity.fit", 0, &[], None, false),
            ("DeveloperData.fit", 0, &[], None, false),
            ("MonitoringFile.fit", 0, &[], None, false),
            ("Settings.fit", 0, &[], None, false),
            ("WeightScaleMultiUser.fit", 0, &[75.8, 58.2], None, false),
            ("WeightScaleSingleUser.fit", 0, &[75.8, 76.09], None, false),
            ("activity-settings-corruptheader.fit", 0, &[], None, true),
            ("activity-settings-nodata.fit", 0, &[], None, true),
            ("activity-small-fenix2-run.fit", 2808, &[], None, false),
            ("activity-unexpected-eof.fit", 0, &[], None, true),
            ("compressed-speed-distance.fit", 754, &[], None, false),
            ("developer-types-sample.fit", 3424, &[], None, false),
            ("garmin-fenix-5-bike.fit", 19, &[], None, false),
            ("garmin-fenix-5-run.fit", 21, &[], Some(205.9), false),
            ("garmin-fenix-5-walk.fit", 17, &[], Some(48.6), false),
            ("hrv-activity.fit", 1072, &[], Some(74.9), false),
            ("sample-activity.fit", 3098, &[], None, false),
        ];
        for (name, heart_rates, weights, sdnn, damaged) in table {
            let (s, report) = samples(name);
            let of = |id: &'static str| s.iter().filter(move |x| x.metric.id == id);
            assert_eq!(of("heart_rate").count(), heart_rates, "{name}");
            assert_eq!(
                of("body_weight").map(|x| x.value).collect::<Vec<_>>(),
                weights,
                "{name}"
            );
            assert_eq!(
                of("heart_rate_variability").map(|x| x.value).next(),
                sdnn,
                "{name}"
            );
            assert_eq!(!report.damaged.is_empty(), damaged, "{name}");
        }
        let (_, report) = samples("DeveloperData.fit");
        assert_eq!(report.rejected[&Rejection::BadDate], 3);
    }

    #[test]
    fn something_else_is_not_a_fit_file() {
        for bytes in [&b"<HealthData/>"[..], b"", b".FIT"] {
            assert!(matches!(
                read(bytes, "export.xml"),
                Err(ImportError::NotThisKind(_))
            ));
        }
    }
}
