//! FHIR Observations from a phone app or device hub, as samples: a Bundle of them (any type)
//! or one. What makes an Observation a sample is its LOINC code (one in the metric table), a
//! `valueQuantity` in a unit that metric knows, and a time (`effectiveDateTime`,
//! `effectiveInstant` or `effectivePeriod`). A blood-pressure panel gives its two components.
//! The source is the Observation's `device` (display, else reference), else the app's name.

use serde_json::Value;

use crate::dates::parse_rfc3339;
use crate::metrics::by_loinc;
use crate::{Collected, ImportError, Rejection, Sample, measure};

const LOINC: &str = "http://loinc.org";

/// Reads the Observations of `body` about the patient `patient` (`Patient/ID`); others are
/// rejected, as are Observations about someone else.
pub fn read(body: &Value, patient: &str, app: &str) -> Result<Collected, ImportError> {
    let resources: Vec<&Value> = match body.get("resourceType").and_then(Value::as_str) {
        Some("Bundle") => body
            .get("entry")
            .and_then(Value::as_array)
            .map(|entries| entries.iter().filter_map(|e| e.get("resource")).collect())
            .unwrap_or_default(),
        Some("Observation") => vec![body],
        _ => return Err(ImportError::NotThisKind("a Bundle of Observations")),
    };
    let mut out = Collected::default();
    for resource in resources {
        for outcome in samples(resource, patient, app) {
            out.push(outcome);
        }
    }
    Ok(out)
}

fn loinc_metric(code: Option<&Value>) -> Option<&'static crate::Metric> {
    code?
        .get("coding")?
        .as_array()?
        .iter()
        .filter(|c| c.get("system").and_then(Value::as_str) == Some(LOINC))
        .find_map(|c| by_loinc(c.get("code")?.as_str()?))
}

fn samples(o: &Value, patient: &str, app: &str) -> Vec<Result<Sample, Rejection>> {
    if o.get("resourceType").and_then(Value::as_str) != Some("Observation") {
        return vec![Err(Rejection::UnknownType)];
    }
    let subject = o.pointer("/subject/reference").and_then(Value::as_str);
    if subject.is_some_and(|s| s != patient) {
        return vec![Err(Rejection::OtherPerson)];
    }
    let (start, end) = if let Some(t) = o
        .get("effectiveDateTime")
        .or_else(|| o.get("effectiveInstant"))
        .and_then(Value::as_str)
    {
        let at = parse_rfc3339(t);
        (at, at)
    } else {
        let at = |k: &str| {
            o.pointer(&format!("/effectivePeriod/{k}"))
                .and_then(Value::as_str)
                .and_then(parse_rfc3339)
        };
        (at("start"), at("end").or(at("start")))
    };
    let device = o.get("device");
    let source = device
        .and_then(|d| d.get("display").or_else(|| d.get("reference")))
        .and_then(Value::as_str)
        .unwrap_or(app);
    let one = |code: Option<&Value>, quantity: Option<&Value>| {
        let metric = loinc_metric(code).ok_or(Rejection::UnknownType)?;
        let quantity = quantity.ok_or(Rejection::BadValue)?;
        let value = quantity.get("value").and_then(Value::as_f64);
        let unit = quantity
            .get("code")
            .or_else(|| quantity.get("unit"))
            .and_then(Value::as_str)
            .unwrap_or("");
        measure(metric, start, end, value, unit, source)
    };
    if o.get("valueQuantity").is_some() || loinc_metric(o.get("code")).is_some() {
        return vec![one(o.get("code"), o.get("valueQuantity"))];
    }
    match o.get("component").and_then(Value::as_array) {
        Some(components) if !components.is_empty() => components
            .iter()
            .map(|c| one(c.get("code"), c.get("valueQuantity")))
            .collect(),
        _ => vec![Err(Rejection::UnknownType)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SampleReader;
    use serde_json::json;

    #[test]
    fn a_batch_of_heart_rates_and_a_blood_pressure_panel_become_samples() {
        let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [
            {"resource": {"resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                "subject": {"reference": "Patient/p1"},
                "effectiveDateTime": "2024-03-01T08:00:00Z",
                "device": {"display": "Pulse watch"},
                "valueQuantity": {"value": 61, "unit": "beats/minute", "system": "http://unitsofmeasure.org", "code": "/min"}}},
            {"resource": {"resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
                "effectivePeriod": {"start": "2024-03-01T08:05:00Z"},
                "component": [
                    {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                     "valueQuantity": {"value": 121, "code": "mm[Hg]"}},
                    {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                     "valueQuantity": {"value": 79, "code": "mm[Hg]"}}]}},
            {"resource": {"resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                "subject": {"reference": "Patient/someone-else"},
                "effectiveDateTime": "2024-03-01T08:00:00Z",
                "valueQuantity": {"value": 90, "code": "/min"}}},
            {"resource": {"resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "364075005"}]},
                "effectiveDateTime": "2024-03-01T08:00:00Z",
                "valueQuantity": {"value": 90, "code": "/min"}}},
            {"resource": {"resourceType": "Patient"}}
        ]});
        let mut read = read(&bundle, "Patient/p1", "Phone app").unwrap();
        let s: Vec<Sample> = read.by_ref().map(Result::unwrap).collect();
        let at = parse_rfc3339("2024-03-01T08:00:00Z").unwrap();
        assert_eq!(
            s.iter()
                .map(|s| (s.metric.id, s.value, s.start, s.source.as_str()))
                .collect::<Vec<_>>(),
            [
                ("heart_rate", 61.0, at, "Pulse watch"),
                ("systolic_bp", 121.0, at + 300_000, "Phone app"),
                ("diastolic_bp", 79.0, at + 300_000, "Phone app"),
            ]
        );
        let report = read.report();
        assert_eq!(report.rejected[&Rejection::OtherPerson], 1);
        assert_eq!(report.rejected[&Rejection::UnknownType], 2);
    }

    #[test]
    fn anything_but_a_bundle_or_an_observation_is_refused() {
        assert!(read(&json!({"resourceType": "Patient"}), "Patient/p1", "app").is_err());
        assert!(read(&json!([1, 2]), "Patient/p1", "app").is_err());
    }
}
