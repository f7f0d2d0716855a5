//! The person's own measurements (issue 5 §3: blood pressure, weight, blood glucose,
//! temperature, peak flow), stored as FHIR Observations with LOINC codes and UCUM units
//! (the vital-signs profile's codes where it has one), so apps and services read them like
//! any other Observation.

use hale_core::RequestContext;
use serde_json::{Value, json};

use crate::{App, AppError, StoredResource};

/// Marks what the person typed into Hale themselves (FHIR `meta.source`), as opposed to
/// what one of their apps sent; both carry the server's [`crate::ENTERED_BY`] tag.
pub const PERSON_SOURCE: &str = "urn:hale:person";

/// A kind of measurement a person can add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeasurementKind {
    /// Systolic and diastolic, mm[Hg].
    BloodPressure,
    /// kg.
    Weight,
    /// mmol/L.
    BloodGlucose,
    /// Cel.
    Temperature,
    /// L/min.
    PeakFlow,
}

/// One value of a kind: its LOINC code, UCUM unit and the range a real reading falls in.
#[derive(Debug, Clone, Copy)]
pub struct Part {
    /// Form field and stable name.
    pub name: &'static str,
    /// LOINC code.
    pub loinc: &'static str,
    /// LOINC display.
    pub display: &'static str,
    /// UCUM code.
    pub unit: &'static str,
    /// The unit as people write it (FHIR `Quantity.unit`).
    pub shown: &'static str,
    /// Lowest believable value.
    pub min: f64,
    /// Highest believable value.
    pub max: f64,
}

impl MeasurementKind {
    /// Every kind, in the order they are offered.
    pub const ALL: [MeasurementKind; 5] = [
        MeasurementKind::BloodPressure,
        MeasurementKind::Weight,
        MeasurementKind::BloodGlucose,
        MeasurementKind::Temperature,
        MeasurementKind::PeakFlow,
    ];

    /// The name in addresses (`blood-pressure`).
    pub fn slug(self) -> &'static str {
        match self {
            MeasurementKind::BloodPressure => "blood-pressure",
            MeasurementKind::Weight => "weight",
            MeasurementKind::BloodGlucose => "blood-glucose",
            MeasurementKind::Temperature => "temperature",
            MeasurementKind::PeakFlow => "peak-flow",
        }
    }

    /// From its slug.
    pub fn from_slug(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.slug() == s)
    }

    /// The Observation's own code (for blood pressure, the panel).
    pub fn code(self) -> (&'static str, &'static str) {
        match self {
            MeasurementKind::BloodPressure => {
                ("85354-9", "Blood pressure panel with all children optional")
            }
            other => {
                let p = other.parts()[0];
                (p.loinc, p.display)
            }
        }
    }

    /// What people call it, as the Observation's `code.text` (what every reader shows).
    pub fn text(self) -> &'static str {
        match self {
            MeasurementKind::BloodPressure => "Blood pressure",
            MeasurementKind::Weight => "Weight",
            MeasurementKind::BloodGlucose => "Blood glucose",
            MeasurementKind::Temperature => "Temperature",
            MeasurementKind::PeakFlow => "Peak flow",
        }
    }

    /// The values a reading of this kind has (two for blood pressure).
    pub fn parts(self) -> &'static [Part] {
        match self {
            MeasurementKind::BloodPressure => &[
                Part {
                    name: "systolic",
                    loinc: "8480-6",
                    display: "Systolic blood pressure",
                    unit: "mm[Hg]",
                    shown: "mmHg",
                    min: 50.0,
                    max: 300.0,
                },
                Part {
                    name: "diastolic",
                    loinc: "8462-4",
                    display: "Diastolic blood pressure",
                    unit: "mm[Hg]",
                    shown: "mmHg",
                    min: 20.0,
                    max: 200.0,
                },
            ],
            MeasurementKind::Weight => &[Part {
                name: "value",
                loinc: "29463-7",
                display: "Body weight",
                unit: "kg",
                shown: "kg",
                min: 0.5,
                max: 500.0,
            }],
            MeasurementKind::BloodGlucose => &[Part {
                name: "value",
                loinc: "15074-8",
                display: "Glucose [Moles/volume] in Blood",
                unit: "mmol/L",
                shown: "mmol/L",
                min: 0.5,
                max: 60.0,
            }],
            MeasurementKind::Temperature => &[Part {
                name: "value",
                loinc: "8310-5",
                display: "Body temperature",
                unit: "Cel",
                shown: "°C",
                min: 25.0,
                max: 45.0,
            }],
            MeasurementKind::PeakFlow => &[Part {
                name: "value",
                loinc: "19935-6",
                display: "Maximum expiratory gas flow Respiratory system airway by Peak flow meter",
                unit: "L/min",
                shown: "L/min",
                min: 30.0,
                max: 1000.0,
            }],
        }
    }
}

/// Why a reading was refused: the field, and a stable reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadingProblem {
    /// Not a number.
    NotANumber(&'static str),
    /// Outside what a real reading could be.
    OutOfRange(&'static str),
    /// Systolic not above diastolic.
    SystolicNotAboveDiastolic,
    /// Not a real date, or in the future.
    BadDate,
}

/// One reading, as read back for lists and charts.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// The Observation's id.
    pub id: String,
    /// When it was taken, ms since the epoch.
    pub at: i64,
    /// The values in [`MeasurementKind::parts`] order, as written (decimal text).
    pub values: Vec<String>,
}

/// Parses a typed decimal ("72.4", " 72,4 " is refused: one format, no guessing).
fn decimal(typed: &str) -> Option<(f64, String)> {
    let t = typed.trim();
    let ok = !t.is_empty()
        && t.len() <= 12
        && t.chars().all(|c| c.is_ascii_digit() || c == '.')
        && t.matches('.').count() <= 1
        && !t.starts_with('.')
        && !t.ends_with('.');
    ok.then(|| t.parse::<f64>().ok().map(|v| (v, t.to_owned())))
        .flatten()
}

/// A reading as the Observation to store, or what is wrong with what was typed.
fn reading_observation(
    ctx: &RequestContext,
    kind: MeasurementKind,
    values: &[&str],
    at: i64,
) -> Result<Result<Value, Vec<ReadingProblem>>, AppError> {
    let record = ctx
        .actor
        .record()
        .ok_or_else(|| AppError::Forbidden("a reading belongs to one person's record".into()))?;
    let mut problems = Vec::new();
    let mut parsed = Vec::new();
    for (part, typed) in kind.parts().iter().zip(values) {
        match decimal(typed) {
            None => problems.push(ReadingProblem::NotANumber(part.name)),
            Some((v, _)) if v < part.min || v > part.max => {
                problems.push(ReadingProblem::OutOfRange(part.name));
            }
            Some((v, text)) => parsed.push((part, v, text)),
        }
    }
    if let [(_, sys, _), (_, dia, _)] = parsed.as_slice()
        && kind == MeasurementKind::BloodPressure
        && sys <= dia
    {
        problems.push(ReadingProblem::SystolicNotAboveDiastolic);
    }
    if at > hale_fhir::date::now_millis() + 60_000 || at < 0 {
        problems.push(ReadingProblem::BadDate);
    }
    if !problems.is_empty() {
        return Ok(Err(problems));
    }
    let quantity = |part: &Part, text: &str| -> Result<Value, AppError> {
        // The typed text becomes the JSON number as written, so "72.40" stays "72.40".
        let number: Value = serde_json::from_str(text)
            .map_err(|_| AppError::bad_request(part.name, "not a number"))?;
        Ok(
            json!({"value": number, "unit": part.shown, "system": "http://unitsofmeasure.org", "code": part.unit}),
        )
    };
    let (code, display) = kind.code();
    let effective = hale_fhir::date::format_instant(at);
    let patient = format!("Patient/{}", record.patient_id().as_str());
    let mut obs = json!({
        "resourceType": "Observation",
        "meta": {"source": PERSON_SOURCE},
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs", "display": "Vital Signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}], "text": kind.text()},
        "subject": {"reference": patient},
        "performer": [{"reference": patient}],
        "effectiveDateTime": effective,
    });
    if kind == MeasurementKind::BloodPressure {
        let mut components = Vec::new();
        for (part, _, text) in &parsed {
            components.push(json!({
                "code": {"coding": [{"system": "http://loinc.org", "code": part.loinc, "display": part.display}]},
                "valueQuantity": quantity(part, text)?,
            }));
        }
        obs["component"] = Value::Array(components);
    } else if let Some((part, _, text)) = parsed.first() {
        obs["valueQuantity"] = quantity(part, text)?;
    }
    Ok(Ok(obs))
}

/// A stored reading back as the values of its kind.
fn reading_of(kind: MeasurementKind, id: &str, obs: &Value) -> Option<Reading> {
    let at = obs["effectiveDateTime"]
        .as_str()
        .and_then(hale_fhir::date::parse_range)?
        .lo;
    let value_of = |q: &Value| q["value"].as_number().map(ToString::to_string);
    let values: Vec<String> = if kind == MeasurementKind::BloodPressure {
        kind.parts()
            .iter()
            .filter_map(|part| {
                obs["component"].as_array()?.iter().find_map(|c| {
                    let coded = c["code"]["coding"]
                        .as_array()?
                        .iter()
                        .any(|x| x["code"] == part.loinc);
                    coded.then(|| value_of(&c["valueQuantity"])).flatten()
                })
            })
            .collect()
    } else {
        value_of(&obs["valueQuantity"]).into_iter().collect()
    };
    (values.len() == kind.parts().len()).then(|| Reading {
        id: id.to_owned(),
        at,
        values,
    })
}

impl App {
    /// Adds a reading the person took themselves. `values` are as typed, in
    /// [`MeasurementKind::parts`] order; `at` is when it was taken (ms), not in the future.
    pub fn add_reading(
        &self,
        ctx: &RequestContext,
        kind: MeasurementKind,
        values: &[&str],
        at: i64,
    ) -> Result<Result<StoredResource, Vec<ReadingProblem>>, AppError> {
        Ok(match reading_observation(ctx, kind, values, at)? {
            Ok(obs) => Ok(self.create(ctx, "Observation", obs, None)?.resource),
            Err(problems) => Err(problems),
        })
    }

    /// Changes a reading the person entered: the same checks as adding one, written as a new
    /// version (the history keeps the old one). What a health or care service wrote cannot
    /// be changed.
    pub fn change_reading(
        &self,
        ctx: &RequestContext,
        id: &str,
        kind: MeasurementKind,
        values: &[&str],
        at: i64,
    ) -> Result<Result<StoredResource, Vec<ReadingProblem>>, AppError> {
        let current = self.read(ctx, "Observation", id)?;
        if !current
            .value()
            .is_some_and(|v| crate::entered_by_person(&v))
        {
            return Err(AppError::Forbidden(
                "this entry was written by a health or care service, and only they can change it"
                    .into(),
            ));
        }
        Ok(match reading_observation(ctx, kind, values, at)? {
            Ok(mut obs) => {
                obs["id"] = Value::String(id.to_owned());
                Ok(self
                    .update(ctx, "Observation", id, obs, Some(current.version))?
                    .resource)
            }
            Err(problems) => Err(problems),
        })
    }

    /// The kind and values of a reading the person may change (their own), for its form.
    pub fn reading_for_change(
        &self,
        ctx: &RequestContext,
        id: &str,
    ) -> Result<Option<(MeasurementKind, Reading)>, AppError> {
        let current = self.read(ctx, "Observation", id)?;
        let Some(v) = current.value().filter(crate::entered_by_person) else {
            return Ok(None);
        };
        let kind = MeasurementKind::ALL.into_iter().find(|k| {
            v["code"]["coding"]
                .as_array()
                .is_some_and(|c| c.iter().any(|x| x["code"] == k.code().0))
        });
        Ok(kind.and_then(|k| reading_of(k, &current.id, &v).map(|r| (k, r))))
    }

    /// Deletes an entry the person (or their app) entered; what health and care sources
    /// wrote is theirs and stays (issue 5 §3): refused with [`AppError::Forbidden`]. The
    /// deletion is a new version, so the history keeps what was there.
    pub fn delete_own_entry(
        &self,
        ctx: &RequestContext,
        rtype: &str,
        id: &str,
    ) -> Result<(), AppError> {
        let current = self.read(ctx, rtype, id)?;
        let own = current
            .value()
            .is_some_and(|v| crate::entered_by_person(&v));
        if !own || rtype == "Patient" {
            return Err(AppError::Forbidden(
                "this entry was written by a health or care service, and only they can change it"
                    .into(),
            ));
        }
        self.delete(ctx, rtype, id, Some(current.version))
    }

    /// The person's readings of one kind taken at or after `from` (ms), oldest first.
    pub fn readings(
        &self,
        ctx: &RequestContext,
        kind: MeasurementKind,
        from: i64,
    ) -> Result<Vec<Reading>, AppError> {
        let (code, _) = kind.code();
        let pairs = vec![
            ("code".to_owned(), format!("http://loinc.org|{code}")),
            (
                "date".to_owned(),
                format!("ge{}", hale_fhir::date::format_instant(from)),
            ),
            ("_sort".to_owned(), "date".to_owned()),
            ("_count".to_owned(), "1000".to_owned()),
        ];
        let (_, page) = self.search(ctx, "Observation", &pairs, true)?;
        Ok(page
            .matches
            .iter()
            .filter_map(|found| reading_of(kind, &found.id, &found.value()?))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_numbers_are_taken_exactly_and_nonsense_is_refused() {
        assert_eq!(decimal(" 72.40 "), Some((72.4, "72.40".into())));
        assert_eq!(decimal("120"), Some((120.0, "120".into())));
        for bad in [
            "",
            "72,4",
            "1e3",
            "-5",
            ".5",
            "5.",
            "1.2.3",
            "seventy",
            "12345678901234",
        ] {
            assert_eq!(decimal(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_kind_has_a_slug_that_round_trips_and_loinc_codes() {
        for kind in MeasurementKind::ALL {
            assert_eq!(MeasurementKind::from_slug(kind.slug()), Some(kind));
            assert!(!kind.parts().is_empty());
            for p in kind.parts() {
                assert!(p.loinc.contains('-') && p.min < p.max);
            }
        }
        assert_eq!(MeasurementKind::BloodPressure.parts().len(), 2);
    }
}
