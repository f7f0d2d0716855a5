//! `hale serve --demo`: a synthetic person with a lived-in record, so a newcomer sees Hale
//! working at once (issue 5 §4). Everything here is made up; nothing is real personal data.

use hale_auth::secret;
use hale_auth::totp;
use hale_core::{AccountKind, Actor, RecordId, RequestContext, Scopes, VerificationLevel};
use hale_store::{Account, SampleRow, WriteBatch, WriteOp};
use serde_json::{Value, json};

use crate::readings::MeasurementKind;
use crate::{App, AppError};

/// How to sign in as the demo person.
#[derive(Debug, Clone)]
pub struct DemoPerson {
    /// Their email address.
    pub email: String,
    /// Their password.
    pub password: String,
    /// The authenticator key, for adding to an app.
    pub authenticator_key: String,
    /// One-time recovery codes (each signs in once instead of an app's code).
    pub recovery_codes: Vec<String>,
    /// Their record.
    pub record: RecordId,
}

/// The demo account's address.
pub const DEMO_EMAIL: &str = "sam.demo@hale.example";
/// The demo account's password (printed by `serve --demo`; a demo is for a laptop).
pub const DEMO_PASSWORD: &str = "demo walrus lantern orchard";

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// A small deterministic generator, so the demo looks the same every time.
struct Wobble(u64);

impl Wobble {
    /// A value in [-1, 1).
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as f64 / f64::from(1u32 << 31)) * 2.0 - 1.0
    }
}

fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({"coding": [{"system": system, "code": code, "display": display}], "text": display})
}

const SNOMED: &str = "http://snomed.info/sct";
const SURGERY: &str = "Dr A Example, Example Surgery";

impl App {
    /// Creates the demo person: a verified (P9) account with an authenticator and recovery
    /// codes, and a year of synthetic record: readings, wearable data, conditions, medicines,
    /// an allergy, vaccinations, a letter and a care plan. Fails if the demo account exists.
    pub fn create_demo_person(&self) -> Result<DemoPerson, AppError> {
        if self.store.account_by_email(DEMO_EMAIL)?.is_some() {
            return Err(AppError::Conflict("the demo person exists already".into()));
        }
        let identity = self
            .identity
            .as_ref()
            .ok_or_else(|| AppError::NotSupported("sign-in is not configured".into()))?;
        // 999 numbers are reserved for testing: never a real person's NHS number.
        let record = self.create_person("Sam Demo", Some(DEMO_EMAIL), Some("9990000018"))?;
        let password = DEMO_PASSWORD.to_owned();
        let totp_secret = totp::new_secret();
        let codes = secret::recovery_codes();
        let account_id = uuid::Uuid::new_v4().to_string();
        let now = hale_fhir::date::now_millis();
        let account = Account {
            id: account_id.clone(),
            email: DEMO_EMAIL.to_owned(),
            kind: AccountKind::Person,
            record: Some(record.clone()),
            password_hash: hale_auth::password::hash(&password)
                .map_err(|e| AppError::Internal(e.to_string()))?,
            email_verified_at: Some(now),
            verification_level: VerificationLevel::P9,
            totp_sealed: Some(identity.seal.seal(&totp_secret, &account_id)),
            totp_last_step: None,
            created_at: now,
            org: None,
        };
        self.store.write(WriteBatch {
            ops: vec![
                WriteOp::PutAccount(account),
                WriteOp::SetRecoveryCodes {
                    account_id,
                    hashes: codes.iter().map(|c| secret::digest(c)).collect(),
                },
            ],
        })?;
        self.seed_demo_record(&record, now)?;
        Ok(DemoPerson {
            email: DEMO_EMAIL.to_owned(),
            password,
            authenticator_key: totp::secret_for_typing(&totp_secret),
            recovery_codes: codes,
            record,
        })
    }

    /// The demo person's address, password and authenticator key, if the demo person exists
    /// (for `serve --demo` on a folder where it ran before; recovery codes are shown only
    /// when they are made).
    pub fn demo_sign_in(&self) -> Result<Option<(String, String, String)>, AppError> {
        let Some(account) = self.store.account_by_email(DEMO_EMAIL)? else {
            return Ok(None);
        };
        let identity = self
            .identity
            .as_ref()
            .ok_or_else(|| AppError::NotSupported("sign-in is not configured".into()))?;
        let key = account
            .totp_sealed
            .as_ref()
            .and_then(|s| identity.seal.open(s, &account.id).ok())
            .map(|s| totp::secret_for_typing(&s))
            .unwrap_or_default();
        Ok(Some((account.email, DEMO_PASSWORD.to_owned(), key)))
    }

    fn seed_demo_record(&self, record: &RecordId, now: i64) -> Result<(), AppError> {
        let patient = format!("Patient/{}", record.patient_id().as_str());
        // The surgery's entries come from a system (as an organisation's would); the
        // readings from the person.
        let surgery = RequestContext::operator(
            Actor::System {
                scopes: Scopes::parse("system/*.cruds")
                    .map_err(|e| AppError::Internal(e.to_string()))?,
                subject: "demo-surgery".into(),
            },
            "demo",
        );
        let person = RequestContext::operator(
            Actor::Record {
                record: record.clone(),
                scopes: Scopes::parse("patient/*.cruds")
                    .map_err(|e| AppError::Internal(e.to_string()))?,
                subject: "demo".into(),
            },
            "demo",
        );
        let day = |days_ago: i64| hale_fhir::date::format_instant(now - days_ago * DAY_MS);
        let date = |days_ago: i64| day(days_ago)[..10].to_owned();
        let from_surgery = |mut v: Value| {
            v["meta"] = json!({"source": "https://example-surgery.example/fhir"});
            v
        };
        let entries = vec![
            (
                "Condition",
                from_surgery(
                    json!({"resourceType": "Condition", "subject": {"reference": patient},
                "clinicalStatus": coding("http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"),
                "code": coding(SNOMED, "195967001", "Asthma"), "onsetDateTime": date(3000),
                "recordedDate": date(3000), "recorder": {"display": SURGERY}}),
                ),
            ),
            (
                "Condition",
                from_surgery(
                    json!({"resourceType": "Condition", "subject": {"reference": patient},
                "clinicalStatus": coding("http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"),
                "code": coding(SNOMED, "21719001", "Hay fever"), "recordedDate": date(1200),
                "recorder": {"display": SURGERY}}),
                ),
            ),
            (
                "MedicationStatement",
                from_surgery(
                    json!({"resourceType": "MedicationStatement", "status": "active",
                "subject": {"reference": patient},
                "medicationCodeableConcept": {"text": "Salbutamol 100 micrograms inhaler, 2 puffs when needed"},
                "effectiveDateTime": date(400), "informationSource": {"display": SURGERY}}),
                ),
            ),
            (
                "MedicationStatement",
                from_surgery(
                    json!({"resourceType": "MedicationStatement", "status": "active",
                "subject": {"reference": patient},
                "medicationCodeableConcept": {"text": "Cetirizine 10mg tablets, 1 a day in spring and summer"},
                "effectiveDateTime": date(200), "informationSource": {"display": SURGERY}}),
                ),
            ),
            (
                "AllergyIntolerance",
                from_surgery(
                    json!({"resourceType": "AllergyIntolerance", "patient": {"reference": patient},
                "clinicalStatus": coding("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active", "Active"),
                "code": coding(SNOMED, "764146007", "Penicillin"), "recordedDate": date(5000),
                "reaction": [{"manifestation": [coding(SNOMED, "271807003", "Rash")]}], "recorder": {"display": SURGERY}}),
                ),
            ),
            (
                "Immunization",
                from_surgery(
                    json!({"resourceType": "Immunization", "status": "completed",
                "patient": {"reference": patient}, "vaccineCode": {"text": "Flu vaccine"},
                "occurrenceDateTime": date(60), "performer": [{"actor": {"display": "Example Pharmacy"}}]}),
                ),
            ),
            (
                "Immunization",
                from_surgery(
                    json!({"resourceType": "Immunization", "status": "completed",
                "patient": {"reference": patient}, "vaccineCode": {"text": "COVID-19 vaccine"},
                "occurrenceDateTime": date(300), "performer": [{"actor": {"display": "Example Vaccination Centre"}}]}),
                ),
            ),
            (
                "DocumentReference",
                from_surgery(
                    json!({"resourceType": "DocumentReference", "status": "current",
                "subject": {"reference": patient}, "type": {"text": "Letter from the asthma clinic"},
                "date": day(45), "author": [{"display": "Example Hospital asthma clinic"}],
                "content": [{"attachment": {"contentType": "text/plain", "title": "Asthma clinic letter",
                    "data": "RGVhciBTYW0sIHRoYW5rIHlvdSBmb3IgY29taW5nIHRvIHRoZSBhc3RobWEgY2xpbmljLiBZb3VyIGFzdGhtYSBpcyB3ZWxsIGNvbnRyb2xsZWQuIFBsZWFzZSBrZWVwIHVzaW5nIHlvdXIgaW5oYWxlciBhcyBuZWVkZWQu"}}]}),
                ),
            ),
            (
                "CarePlan",
                from_surgery(
                    json!({"resourceType": "CarePlan", "status": "active", "intent": "plan",
                "subject": {"reference": patient}, "title": "Asthma action plan",
                "description": "Use your reliever inhaler when needed. If you need it more than 3 times a week, book a review.",
                "period": {"start": date(45)}, "author": {"display": SURGERY}}),
                ),
            ),
        ];
        for (rtype, body) in entries {
            self.create(&surgery, rtype, body, None)?;
        }
        // A year of readings: weight weekly, blood pressure twice a week.
        let mut w = Wobble(7);
        for week in 0..52 {
            let ago = 364 - week * 7;
            let weight = format!(
                "{:.1}",
                74.0 - f64::from(week as u32) * 0.04 + w.next() * 0.6
            );
            self.add_reading(
                &person,
                MeasurementKind::Weight,
                &[&weight],
                now - ago * DAY_MS,
            )?
            .map_err(|_| AppError::Internal("a demo reading was refused".into()))?;
            for offset in [0, 3] {
                let sys = format!("{:.0}", 126.0 + w.next() * 8.0);
                let dia = format!("{:.0}", 80.0 + w.next() * 5.0);
                self.add_reading(
                    &person,
                    MeasurementKind::BloodPressure,
                    &[&sys, &dia],
                    now - (ago - offset) * DAY_MS,
                )?
                .map_err(|_| AppError::Internal("a demo reading was refused".into()))?;
            }
        }
        // A year of watch data: steps every hour of the waking day, resting heart rate daily.
        let start = (now / DAY_MS - 365) * DAY_MS;
        let mut rows = Vec::new();
        for d in 0..365 {
            let midnight = start + d * DAY_MS;
            for hour in 7..22 {
                let at = midnight + hour * 3_600_000;
                let steps = (450.0 + w.next() * 350.0).round().max(0.0);
                rows.push(SampleRow {
                    metric: "steps".into(),
                    source: "Demo Watch".into(),
                    start: at,
                    end: at + 3_600_000,
                    value: steps,
                });
            }
            rows.push(SampleRow {
                metric: "resting_heart_rate".into(),
                source: "Demo Watch".into(),
                start: midnight + 6 * 3_600_000,
                end: midnight + 6 * 3_600_000,
                value: (62.0 + w.next() * 3.0).round(),
            });
        }
        for chunk in rows.chunks(5_000) {
            self.store.write(WriteBatch {
                ops: vec![WriteOp::Samples {
                    record: record.clone(),
                    rows: chunk.to_vec(),
                }],
            })?;
        }
        Ok(())
    }
}
