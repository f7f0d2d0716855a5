//! Wearable samples seen through FHIR: each metric's day (UTC) in a record is an Observation,
//! `Observation/daily-[LOINC]-[YYYY-MM-DD]`, computed on read from the time-series store.
//!
//! Its value is the day's mean (or total, for steps, energy, distance and sleep), with the
//! minimum, maximum, mean and count as components coded from FHIR's observation-statistics
//! system; a dense day (more than [`DENSE`] samples) also carries its minute-by-minute means
//! as `valueSampledData`. These Observations are read like any other and found by Observation
//! searches on `code`, `category`, `date` and `patient`/`subject`: they follow the stored
//! Observations that match, so counts and paging agree. They are not in `$everything`, which
//! would grow by thousands of days; the samples behind them stay in the time-series store.

use hale_core::RecordId;
use hale_fhir::date::DateRange;
use hale_fhir::search::{Prefix, SearchQuery, Test, TokenMatch};
use hale_import::Metric;
use hale_import::metrics::{METRICS, by_loinc};
use hale_store::{Method, SampleBucket, StoredResource};
use serde_json::{Value, json};

use crate::{App, AppError};

/// The id prefix of a daily summary.
pub const DAILY: &str = "daily-";
const DAY: i64 = 86_400_000;
const MINUTE: i64 = 60_000;
/// Days with more samples than this carry their minute-by-minute means.
pub const DENSE: i64 = 48;
const LOINC: &str = "http://loinc.org";
const STATISTICS: &str = "http://terminology.hl7.org/CodeSystem/observation-statistics";
const CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
const UCUM: &str = "http://unitsofmeasure.org";

/// `daily-8867-4-2024-03-01` into its metric and the day's first millisecond.
fn parse_id(id: &str) -> Option<(&'static Metric, i64)> {
    let rest = id.strip_prefix(DAILY)?;
    let split = rest.len().checked_sub(11)?;
    let (code, day) = (rest.get(..split)?, rest.get(split + 1..)?);
    if rest.get(split..=split) != Some("-") {
        return None;
    }
    let metric = by_loinc(code)?;
    let start = hale_fhir::date::parse_range(day)?;
    (start.hi - start.lo == DAY - 1).then_some((metric, start.lo))
}

fn day_text(start: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(start / 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

fn instant(ms: i64) -> String {
    hale_fhir::date::format_instant(ms)
}

/// Rounds away float noise (a mean of whole steps times a count is a whole number).
fn tidy(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

impl App {
    /// `GET Observation/daily-…`: the day's summary, or `None` if the id is not one or the
    /// day holds no samples.
    pub(crate) fn read_daily(
        &self,
        record: &RecordId,
        id: &str,
    ) -> Result<Option<StoredResource>, AppError> {
        let Some((metric, start)) = parse_id(id) else {
            return Ok(None);
        };
        let bucket = self
            .store
            .sample_buckets(record, metric.id, start, start + DAY - 1, DAY)?
            .into_iter()
            .find(|b| b.start == start);
        bucket.map(|b| self.daily(record, metric, &b)).transpose()
    }

    /// The daily summaries matching an Observation search, in order; empty when the search
    /// asks about something summaries do not carry.
    pub(crate) fn daily_matches(
        &self,
        record: &RecordId,
        query: &SearchQuery,
    ) -> Result<Vec<StoredResource>, AppError> {
        let mut metrics: Vec<&'static Metric> = METRICS.iter().collect();
        let mut dates: Vec<&[(Prefix, DateRange)]> = Vec::new();
        let patient = record.patient_id();
        for clause in &query.clauses {
            match (clause.param.as_str(), &clause.test) {
                ("code", Test::Token { any, negate: false }) => {
                    metrics.retain(|m| any.iter().any(|t| codes(t, m)));
                }
                ("category", Test::Token { any, negate: false }) => {
                    metrics.retain(|m| any.iter().any(|t| categorised(t, m)));
                }
                ("_tag", Test::Token { any, negate: false })
                    if any.iter().all(|t| {
                        *t == TokenMatch::SystemCode(
                            crate::ENTERED_BY.0.into(),
                            crate::ENTERED_BY.1.into(),
                        )
                    }) => {}
                ("date", Test::Date(alternatives)) => dates.push(alternatives),
                ("patient" | "subject", Test::Reference(refs))
                    if refs.iter().any(|r| match r {
                        hale_fhir::search::RefMatch::Local { target_type, id } => {
                            target_type.as_deref().is_none_or(|t| t == "Patient")
                                && id.as_str() == patient.as_str()
                        }
                        hale_fhir::search::RefMatch::Url(_) => false,
                    }) => {}
                // Anything else (a value, a status, a chain) is not something summaries answer.
                _ => return Ok(Vec::new()),
            }
        }
        let (from, to) = bounds(&dates);
        let mut found = Vec::new();
        for metric in metrics {
            for bucket in self
                .store
                .sample_buckets(record, metric.id, from, to, DAY)?
            {
                let (lo, hi) = (bucket.start, bucket.start + DAY - 1);
                if dates
                    .iter()
                    .all(|alts| alts.iter().any(|(p, r)| p.admits_range(lo, hi, *r)))
                {
                    found.push((bucket.start, metric, bucket));
                }
            }
        }
        let newest_first = query
            .sort
            .first()
            .is_some_and(|k| k.param == "date" && k.descending);
        found.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.loinc.cmp(b.1.loinc)));
        if newest_first {
            found.reverse();
        }
        found
            .into_iter()
            .map(|(_, metric, bucket)| self.daily(record, metric, &bucket))
            .collect()
    }

    /// One day's summary as a stored-looking Observation. Its version is its sample count, so
    /// the ETag changes when samples are added.
    fn daily(
        &self,
        record: &RecordId,
        metric: &'static Metric,
        b: &SampleBucket,
    ) -> Result<StoredResource, AppError> {
        let id = format!("{DAILY}{}-{}", metric.loinc, day_text(b.start));
        let quantity = |v: f64| json!({"value": tidy(v), "unit": metric.unit, "system": UCUM, "code": metric.unit});
        let statistic = |code: &str, value: Value| {
            let mut c = json!({"code": {"coding": [{"system": STATISTICS, "code": code}]}});
            c[if code == "count" {
                "valueInteger"
            } else {
                "valueQuantity"
            }] = value;
            c
        };
        let headline = if metric.adds_up() {
            b.mean * b.count as f64
        } else {
            b.mean
        };
        let mut components = vec![
            statistic("minimum", quantity(b.min)),
            statistic("maximum", quantity(b.max)),
            statistic("average", quantity(b.mean)),
            statistic("count", json!(b.count)),
        ];
        if metric.adds_up() {
            components.push(statistic("sum", quantity(headline)));
        }
        if b.count > DENSE {
            components.push(self.minutes(record, metric, b.start)?);
        }
        let now = hale_fhir::date::now_millis();
        let last_updated = now.min(b.start + DAY - 1);
        let body = json!({
            "resourceType": "Observation",
            "id": id,
            "meta": {
                "versionId": b.count.to_string(),
                "lastUpdated": instant(last_updated),
                "tag": [{"system": crate::ENTERED_BY.0, "code": crate::ENTERED_BY.1}],
            },
            "status": "final",
            "category": [{"coding": [{"system": CATEGORY, "code": metric.category()}]}],
            "code": {
                "coding": [{"system": LOINC, "code": metric.loinc}],
                "text": format!("{} (daily {})", metric.name, if metric.adds_up() { "total" } else { "average" }),
            },
            "subject": {"reference": format!("Patient/{}", record.patient_id().as_str())},
            "effectivePeriod": {"start": instant(b.start), "end": instant(b.start + DAY - 1)},
            "valueQuantity": quantity(headline),
            "component": components,
        });
        let raw = serde_json::value::to_raw_value(&body)
            .map_err(|e| AppError::Internal(format!("a daily summary did not serialise: {e}")))?;
        Ok(StoredResource {
            record: record.clone(),
            resource_type: "Observation".into(),
            id,
            version: b.count,
            last_updated,
            method: Method::Update,
            resource: Some(raw),
        })
    }

    /// The day's minute-by-minute means as SampledData (`E` where a minute has none).
    fn minutes(
        &self,
        record: &RecordId,
        metric: &'static Metric,
        start: i64,
    ) -> Result<Value, AppError> {
        let buckets =
            self.store
                .sample_buckets(record, metric.id, start, start + DAY - 1, MINUTE)?;
        let mut data = vec!["E".to_owned(); (DAY / MINUTE) as usize];
        for b in buckets {
            if let Some(slot) = usize::try_from((b.start - start) / MINUTE)
                .ok()
                .and_then(|i| data.get_mut(i))
            {
                *slot = format!("{}", tidy(b.mean));
            }
        }
        Ok(json!({
            "code": {"coding": [{"system": LOINC, "code": metric.loinc}], "text": "each minute"},
            "valueSampledData": {
                "origin": {"value": 0, "unit": metric.unit, "system": UCUM, "code": metric.unit},
                "period": MINUTE,
                "dimensions": 1,
                "data": data.join(" "),
            },
        }))
    }
}

/// A LOINC code alternative.
fn codes(t: &TokenMatch, m: &Metric) -> bool {
    match t {
        TokenMatch::Code(c) => c == m.loinc,
        TokenMatch::SystemCode(s, c) => s == LOINC && c == m.loinc,
        TokenMatch::System(s) => s == LOINC,
        TokenMatch::NoSystem(_) => false,
        TokenMatch::Text(t) => m.name.starts_with(t.as_str()),
    }
}

fn categorised(t: &TokenMatch, m: &Metric) -> bool {
    match t {
        TokenMatch::Code(c) => c == m.category(),
        TokenMatch::SystemCode(s, c) => s == CATEGORY && c == m.category(),
        TokenMatch::System(s) => s == CATEGORY,
        _ => false,
    }
}

/// The days worth asking the store for, from single-alternative date clauses.
fn bounds(dates: &[&[(Prefix, DateRange)]]) -> (i64, i64) {
    let (mut from, mut to) = (i64::MIN / 4, i64::MAX / 4);
    for alternatives in dates {
        if let [(prefix, r)] = alternatives {
            match prefix {
                Prefix::Ge | Prefix::Gt | Prefix::Sa => from = from.max(r.lo - DAY),
                Prefix::Le | Prefix::Lt | Prefix::Eb => to = to.min(r.hi + DAY),
                Prefix::Eq => {
                    from = from.max(r.lo - DAY);
                    to = to.min(r.hi + DAY);
                }
                Prefix::Ne | Prefix::Ap => {}
            }
        }
    }
    (from, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daily_ids_name_a_metric_and_a_day() {
        let (m, start) = parse_id("daily-8867-4-2024-03-01").unwrap();
        assert_eq!(m.id, "heart_rate");
        assert_eq!(day_text(start), "2024-03-01");
        for bad in [
            "daily-8867-4-2024-03",
            "daily-0000-0-2024-03-01",
            "daily-8867-4x2024-03-01",
            "daily-",
            "8867-4-2024-03-01",
        ] {
            assert!(parse_id(bad).is_none(), "{bad}");
        }
    }
}
