//! What a person adds about themselves besides measurements (issue 5 §3): a symptom, a
//! diary entry with their mood, a medicine they take, an allergy. Each becomes the FHIR
//! resource a clinician's system would use for it, so it reads the same everywhere, and is
//! marked as the person's own (`meta.source`, and the server's entered-by tag).

use hale_core::RequestContext;
use serde_json::{Value, json};

use crate::readings::PERSON_SOURCE;
use crate::{App, AppError, StoredResource};

/// Something a person can add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalKind {
    /// What they feel, how bad, since when.
    Symptom,
    /// A few words about their day, and their mood.
    Diary,
    /// A medicine they take (prescribed or bought).
    Medicine,
    /// Something they are allergic to, and what happens.
    Allergy,
    /// What matters to them in their care (a Goal in their words).
    Matters,
    /// Someone to contact about them: a carer, family, a friend (a RelatedPerson).
    Contact,
}

/// Why an entry was refused: the field, and a stable reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryProblem {
    /// A required field is empty.
    Missing(&'static str),
    /// A field is longer than allowed.
    TooLong(&'static str),
    /// A choice that is not one of the options.
    NotAChoice(&'static str),
    /// No file was chosen, or it is empty.
    NoFile,
    /// The file is bigger than [`MAX_DOCUMENT`].
    FileTooBig,
    /// The file is not a PDF, PNG or JPEG (by its content, whatever its name says).
    FileType,
}

/// A form's values by field name, as an entry holds them.
pub type EntryForm = Vec<(&'static str, String)>;

/// The category of the person's own notes on entries.
pub const NOTE_KIND: (&str, &str) = ("urn:hale:note-kind", "person-note");

/// The largest document a person may upload: a scanned letter or a photo of one.
pub const MAX_DOCUMENT: usize = 5 * 1024 * 1024;

/// The type of a document by its first bytes: PDF, PNG or JPEG, nothing else. The name and
/// the browser's claimed type are not trusted: a file is what its content says.
pub fn sniff_document(bytes: &[u8]) -> Option<(&'static str, &'static str)> {
    if bytes.starts_with(b"%PDF-") {
        Some(("application/pdf", "pdf"))
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(("image/png", "png"))
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(("image/jpeg", "jpg"))
    } else {
        None
    }
}

/// The longest free text in a field: a paragraph, not a document.
pub const MAX_TEXT: usize = 2000;

/// How bad a symptom is (SNOMED CT severity qualifiers).
pub const SEVERITIES: [(&str, &str, &str); 3] = [
    ("mild", "255604002", "Mild"),
    ("moderate", "6736007", "Moderate"),
    ("severe", "24484000", "Severe"),
];

/// Mood on a five-point scale, worst to best.
pub const MOODS: [&str; 5] = ["very-low", "low", "okay", "good", "very-good"];

impl JournalKind {
    /// Every kind, in the order they are offered.
    pub const ALL: [JournalKind; 6] = [
        JournalKind::Symptom,
        JournalKind::Diary,
        JournalKind::Medicine,
        JournalKind::Allergy,
        JournalKind::Matters,
        JournalKind::Contact,
    ];

    /// The name in addresses.
    pub fn slug(self) -> &'static str {
        match self {
            JournalKind::Symptom => "symptom",
            JournalKind::Diary => "diary",
            JournalKind::Medicine => "medicine",
            JournalKind::Allergy => "allergy",
            JournalKind::Matters => "matters",
            JournalKind::Contact => "contact",
        }
    }

    /// From its slug.
    pub fn from_slug(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.slug() == s)
    }

    /// The form's fields, in order: (name, required).
    pub fn fields(self) -> &'static [(&'static str, bool)] {
        match self {
            JournalKind::Symptom => &[("what", true), ("severity", true), ("notes", false)],
            JournalKind::Diary => &[("mood", true), ("notes", false)],
            JournalKind::Medicine => &[("what", true), ("dose", false), ("reason", false)],
            JournalKind::Allergy => &[("what", true), ("reaction", false)],
            JournalKind::Matters => &[("what", true)],
            JournalKind::Contact => &[("what", true), ("relationship", false), ("phone", false)],
        }
    }
}

fn text(v: &str) -> Option<String> {
    let t = v.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

impl App {
    /// Adds a document the person uploads (a letter, a scan): checked by content and size,
    /// kept as a FHIR DocumentReference with the file inside it, sealed like any entry.
    pub fn add_document(
        &self,
        ctx: &RequestContext,
        title: &str,
        bytes: &[u8],
        at: i64,
    ) -> Result<Result<StoredResource, Vec<EntryProblem>>, AppError> {
        let record = ctx.actor.record().ok_or_else(|| {
            AppError::Forbidden("a document belongs to one person's record".into())
        })?;
        let mut problems = Vec::new();
        let title = title.trim();
        if title.is_empty() {
            problems.push(EntryProblem::Missing("title"));
        } else if title.chars().count() > 200 {
            problems.push(EntryProblem::TooLong("title"));
        }
        let kind = sniff_document(bytes);
        if bytes.is_empty() {
            problems.push(EntryProblem::NoFile);
        } else if bytes.len() > MAX_DOCUMENT {
            problems.push(EntryProblem::FileTooBig);
        } else if kind.is_none() {
            problems.push(EntryProblem::FileType);
        }
        let (Some((content_type, _)), true) = (kind, problems.is_empty()) else {
            return Ok(Err(problems));
        };
        use base64::Engine;
        let data = base64::engine::general_purpose::STANDARD.encode(bytes);
        let patient = json!({"reference": format!("Patient/{}", record.patient_id().as_str())});
        let body = json!({
            "resourceType": "DocumentReference", "meta": {"source": PERSON_SOURCE},
            "status": "current", "subject": patient, "author": [patient],
            "type": {"text": title}, "date": hale_fhir::date::format_instant(at),
            "content": [{"attachment": {"contentType": content_type, "data": data,
                "size": bytes.len(), "title": title}}],
        });
        Ok(Ok(self
            .create(ctx, "DocumentReference", body, None)?
            .resource))
    }

    /// Adds the person's own note to an entry (mission point 4: the person annotates, never
    /// edits): a `Communication` about the entry, from the person, with the entry's privacy
    /// label so that it is shared exactly as the entry is. The entry itself is unchanged.
    pub fn add_note_on_entry(
        &self,
        ctx: &RequestContext,
        rtype: &str,
        id: &str,
        text: &str,
        at: i64,
    ) -> Result<Result<StoredResource, Vec<EntryProblem>>, AppError> {
        let entry = self.read_unaudited(ctx, rtype, id)?;
        let text = text.trim();
        if text.is_empty() {
            return Ok(Err(vec![EntryProblem::Missing("note")]));
        }
        if text.chars().count() > 5_000 {
            return Ok(Err(vec![EntryProblem::TooLong("note")]));
        }
        let label = entry
            .value()
            .map_or(crate::labels::PrivacyLabel::General, |v| {
                crate::labels::label_of(&v)
            });
        let patient =
            json!({"reference": format!("Patient/{}", entry.record.patient_id().as_str())});
        let mut body = json!({
            "resourceType": "Communication", "status": "completed",
            "meta": {"source": PERSON_SOURCE},
            "category": [{"coding": [{"system": NOTE_KIND.0, "code": NOTE_KIND.1}]}],
            "subject": patient, "sender": patient,
            "about": [{"reference": format!("{rtype}/{id}")}],
            "sent": hale_fhir::date::format_instant(at),
            "payload": [{"contentString": text}],
        });
        crate::labels::set_label(&mut body, label);
        Ok(Ok(self.create(ctx, "Communication", body, None)?.resource))
    }

    /// The person's notes on an entry, oldest first.
    pub fn notes_on_entry(
        &self,
        ctx: &RequestContext,
        rtype: &str,
        id: &str,
    ) -> Result<Vec<StoredResource>, AppError> {
        let pairs = [
            (
                "category".to_owned(),
                format!("{}|{}", NOTE_KIND.0, NOTE_KIND.1),
            ),
            ("_count".to_owned(), "1000".to_owned()),
        ];
        let (_, page) = self.search_entries(ctx, "Communication", &pairs, false)?;
        let about = format!("{rtype}/{id}");
        let mut notes: Vec<StoredResource> = page
            .matches
            .into_iter()
            .filter(|n| {
                n.value()
                    .is_some_and(|v| v["about"][0]["reference"].as_str() == Some(about.as_str()))
            })
            .collect();
        notes.sort_by_key(|n| n.last_updated);
        Ok(notes)
    }

    /// Adds a clinical note or letter written by a professional the person shared their
    /// record with: a DocumentReference (LOINC 11506-3, progress note) with the text, its
    /// author the name the person gave them. It is the professional's entry: the person sees
    /// it and cannot change or delete it.
    pub fn add_clinical_note(
        &self,
        ctx: &RequestContext,
        title: &str,
        text: &str,
        at: i64,
    ) -> Result<Result<StoredResource, Vec<EntryProblem>>, AppError> {
        let grant = self
            .acting_grant(ctx)?
            .filter(|g| g.role.is_professional())
            .ok_or_else(|| {
                AppError::Forbidden(
                    "clinical notes are written by the professionals a person shares their record with"
                        .into(),
                )
            })?;
        let mut problems = Vec::new();
        let (title, text) = (title.trim(), text.trim());
        if title.is_empty() {
            problems.push(EntryProblem::Missing("title"));
        } else if title.chars().count() > 200 {
            problems.push(EntryProblem::TooLong("title"));
        }
        if text.is_empty() {
            problems.push(EntryProblem::Missing("note"));
        } else if text.chars().count() > 20_000 {
            problems.push(EntryProblem::TooLong("note"));
        }
        if !problems.is_empty() {
            return Ok(Err(problems));
        }
        use base64::Engine;
        let patient =
            json!({"reference": format!("Patient/{}", grant.record.patient_id().as_str())});
        let body = json!({
            "resourceType": "DocumentReference", "status": "current",
            "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3", "display": "Progress note"}],
                "text": title},
            "subject": patient, "author": [{"display": grant.name}],
            "date": hale_fhir::date::format_instant(at),
            "description": text,
            "content": [{"attachment": {"contentType": "text/plain; charset=utf-8",
                "data": base64::engine::general_purpose::STANDARD.encode(text), "title": title}}],
        });
        Ok(Ok(self
            .create(ctx, "DocumentReference", body, None)?
            .resource))
    }

    /// The file inside a document entry the actor may read: its type and bytes.
    pub fn document_file(
        &self,
        ctx: &RequestContext,
        id: &str,
    ) -> Result<(&'static str, &'static str, Vec<u8>), AppError> {
        let doc = self.read(ctx, "DocumentReference", id)?;
        let not_found = || AppError::NotFound {
            resource_type: "DocumentReference".into(),
            id: id.into(),
        };
        let value = doc.value().ok_or_else(not_found)?;
        let data = value["content"][0]["attachment"]["data"]
            .as_str()
            .ok_or_else(not_found)?;
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|_| not_found())?;
        // Served as what the content is, whatever the entry claims.
        let (content_type, extension) = sniff_document(&bytes).ok_or_else(not_found)?;
        Ok((content_type, extension, bytes))
    }

    /// Adds an entry the person wrote. `values` are the form's fields by name; `at` is
    /// when (ms). Field problems come back as `Ok(Err(…))`, with nothing stored.
    pub fn add_journal_entry(
        &self,
        ctx: &RequestContext,
        kind: JournalKind,
        values: &dyn Fn(&str) -> String,
        at: i64,
    ) -> Result<Result<StoredResource, Vec<EntryProblem>>, AppError> {
        let record = ctx
            .actor
            .record()
            .ok_or_else(|| AppError::Forbidden("an entry belongs to one person's record".into()))?;
        Ok(match journal_resource(kind, values, record, at) {
            Ok((rtype, body)) => Ok(self.create(ctx, rtype, body, None)?.resource),
            Err(problems) => Err(problems),
        })
    }

    /// The kind and the form's values of an entry the person wrote and may change (a
    /// symptom, diary entry, medicine, allergy, what matters, contact); `None` for any other.
    pub fn journal_entry_for_change(
        &self,
        ctx: &RequestContext,
        rtype: &str,
        id: &str,
    ) -> Result<Option<(JournalKind, EntryForm)>, AppError> {
        let current = self.read(ctx, rtype, id)?;
        let Some(v) = current.value().filter(crate::entered_by_person) else {
            return Ok(None);
        };
        Ok(journal_kind_of(rtype, &v).map(|k| (k, journal_values(k, &v))))
    }

    /// Changes an entry the person wrote: a new version (the history keeps the old one),
    /// made from the form as a new entry would be, at the time it was first given for, with
    /// its privacy label kept. Field problems come back as `Ok(Err(…))`, nothing changed.
    pub fn change_journal_entry(
        &self,
        ctx: &RequestContext,
        rtype: &str,
        id: &str,
        values: &dyn Fn(&str) -> String,
    ) -> Result<Result<StoredResource, Vec<EntryProblem>>, AppError> {
        let current = self.read(ctx, rtype, id)?;
        let not_theirs = || {
            AppError::Forbidden(
                "this entry was written by a health or care service, and only they can change it"
                    .into(),
            )
        };
        let v = current
            .value()
            .filter(crate::entered_by_person)
            .ok_or_else(not_theirs)?;
        let kind = journal_kind_of(rtype, &v).ok_or_else(not_theirs)?;
        let at = journal_time(&v).unwrap_or(current.last_updated);
        Ok(match journal_resource(kind, values, &current.record, at) {
            Ok((_, mut body)) => {
                body["id"] = Value::String(id.to_owned());
                if let Some(security) = v["meta"].get("security") {
                    body["meta"]["security"] = security.clone();
                }
                Ok(self
                    .update(ctx, rtype, id, body, Some(current.version))?
                    .resource)
            }
            Err(problems) => Err(problems),
        })
    }
}

const SYMPTOM_CODE: &str = "418799008";
const MOOD_CODE: &str = "285854004";
const MATTERS: &str = "What matters to me";

/// The kind of entry a person's own resource is, from its content.
pub fn journal_kind_of(rtype: &str, v: &Value) -> Option<JournalKind> {
    let code = v["code"]["coding"][0]["code"].as_str();
    match rtype {
        "Observation" if code == Some(SYMPTOM_CODE) => Some(JournalKind::Symptom),
        "Observation" if code == Some(MOOD_CODE) => Some(JournalKind::Diary),
        "MedicationStatement" => Some(JournalKind::Medicine),
        "AllergyIntolerance" => Some(JournalKind::Allergy),
        "Goal" if v["category"][0]["text"] == MATTERS => Some(JournalKind::Matters),
        "RelatedPerson" => Some(JournalKind::Contact),
        _ => None,
    }
}

/// The form's values of an entry, read back from the resource [`journal_resource`] made.
fn journal_values(kind: JournalKind, v: &Value) -> EntryForm {
    let s = |x: &Value| x.as_str().unwrap_or_default().to_owned();
    let severity = || {
        SEVERITIES
            .iter()
            .find(|(_, code, _)| v["valueCodeableConcept"]["coding"][0]["code"] == *code)
            .map_or_else(String::new, |(slug, _, _)| (*slug).to_owned())
    };
    let mood = || {
        v["valueInteger"]
            .as_u64()
            .and_then(|m| MOODS.get(usize::try_from(m).ok()?.checked_sub(1)?))
            .map_or_else(String::new, |m| (*m).to_owned())
    };
    match kind {
        JournalKind::Symptom => vec![
            ("what", s(&v["code"]["text"])),
            ("severity", severity()),
            ("notes", s(&v["note"][0]["text"])),
        ],
        JournalKind::Diary => vec![("mood", mood()), ("notes", s(&v["note"][0]["text"]))],
        JournalKind::Medicine => vec![
            ("what", s(&v["medicationCodeableConcept"]["text"])),
            ("dose", s(&v["dosage"][0]["text"])),
            ("reason", s(&v["reasonCode"][0]["text"])),
        ],
        JournalKind::Allergy => vec![
            ("what", s(&v["code"]["text"])),
            ("reaction", s(&v["reaction"][0]["manifestation"][0]["text"])),
        ],
        JournalKind::Matters => vec![("what", s(&v["description"]["text"]))],
        JournalKind::Contact => vec![
            ("what", s(&v["name"][0]["text"])),
            ("relationship", s(&v["relationship"][0]["text"])),
            ("phone", s(&v["telecom"][0]["value"])),
        ],
    }
}

/// When an entry was given for, as stored.
fn journal_time(v: &Value) -> Option<i64> {
    ["effectiveDateTime", "recordedDate", "startDate"]
        .iter()
        .find_map(|f| v[*f].as_str())
        .and_then(hale_fhir::date::parse_range)
        .map(|r| r.lo)
}

/// The FHIR resource for an entry: its type and body, or what is wrong with the form.
/// The date on a UK calendar at `at`, as FHIR writes a date: what matters to someone starts
/// on the day they said so, as they count days.
fn uk_day(at: i64) -> String {
    match hale_fhir::uk_time::at(at) {
        Some(t) => format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()),
        None => hale_fhir::date::format_instant(at)[..10].to_owned(),
    }
}

fn journal_resource(
    kind: JournalKind,
    values: &dyn Fn(&str) -> String,
    record: &hale_core::RecordId,
    at: i64,
) -> Result<(&'static str, Value), Vec<EntryProblem>> {
    let mut problems = Vec::new();
    for (name, required) in kind.fields() {
        let v = values(name);
        if *required && text(&v).is_none() {
            problems.push(EntryProblem::Missing(name));
        } else if v.chars().count() > MAX_TEXT {
            problems.push(EntryProblem::TooLong(name));
        }
    }
    let severity = SEVERITIES.iter().find(|s| s.0 == values("severity"));
    if kind == JournalKind::Symptom
        && severity.is_none()
        && !problems.contains(&EntryProblem::Missing("severity"))
    {
        problems.push(EntryProblem::NotAChoice("severity"));
    }
    let mood = MOODS.iter().position(|m| *m == values("mood"));
    if kind == JournalKind::Diary
        && mood.is_none()
        && !problems.contains(&EntryProblem::Missing("mood"))
    {
        problems.push(EntryProblem::NotAChoice("mood"));
    }
    let phone = values("phone");
    let phone_ok = phone.trim().is_empty()
        || (phone
            .chars()
            .all(|c| c.is_ascii_digit() || " +()-".contains(c))
            && phone.chars().filter(char::is_ascii_digit).count() >= 6);
    if kind == JournalKind::Contact && !phone_ok {
        problems.push(EntryProblem::NotAChoice("phone"));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let patient = json!({"reference": format!("Patient/{}", record.patient_id().as_str())});
    let when = hale_fhir::date::format_instant(at);
    let meta = json!({"source": PERSON_SOURCE});
    let notes = text(&values("notes")).map(|n| json!([{"text": n}]));
    let what = text(&values("what")).unwrap_or_default();
    let (rtype, mut body): (&str, Value) = match kind {
        JournalKind::Symptom => (
            "Observation",
            json!({
                "resourceType": "Observation", "meta": meta, "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "survey", "display": "Survey"}]}],
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": SYMPTOM_CODE, "display": "Finding reported by subject or history provider"}], "text": what},
                "subject": patient, "performer": [patient], "effectiveDateTime": when,
                "valueCodeableConcept": severity.map(|(_, code, display)| json!({"coding": [{"system": "http://snomed.info/sct", "code": code, "display": display}], "text": display})),
            }),
        ),
        JournalKind::Diary => (
            "Observation",
            json!({
                "resourceType": "Observation", "meta": meta, "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "survey", "display": "Survey"}]}],
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": MOOD_CODE, "display": "Emotion"}], "text": "Mood"},
                "subject": patient, "performer": [patient], "effectiveDateTime": when,
                // 1 (very low) to 5 (very good): a plain integer scale a chart can draw.
                "valueInteger": mood.map_or(3, |m| m + 1),
            }),
        ),
        JournalKind::Medicine => (
            "MedicationStatement",
            json!({
                "resourceType": "MedicationStatement", "meta": meta, "status": "active",
                "subject": patient, "effectiveDateTime": when, "dateAsserted": when,
                "informationSource": patient,
                "medicationCodeableConcept": {"text": what},
                "dosage": text(&values("dose")).map(|d| json!([{"text": d}])),
                "reasonCode": text(&values("reason")).map(|r| json!([{"text": r}])),
            }),
        ),
        JournalKind::Allergy => (
            "AllergyIntolerance",
            json!({
                "resourceType": "AllergyIntolerance", "meta": meta,
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}]},
                "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "code": "unconfirmed"}]},
                "patient": patient, "recordedDate": when, "asserter": patient,
                "code": {"text": what},
                "reaction": text(&values("reaction")).map(|r| json!([{"manifestation": [{"text": r}]}])),
            }),
        ),
        JournalKind::Matters => (
            "Goal",
            json!({
                "resourceType": "Goal", "meta": meta, "lifecycleStatus": "active",
                "subject": patient, "expressedBy": patient, "startDate": uk_day(at),
                "category": [{"text": MATTERS}],
                "description": {"text": what},
            }),
        ),
        JournalKind::Contact => (
            "RelatedPerson",
            json!({
                "resourceType": "RelatedPerson", "meta": meta, "active": true,
                "patient": patient, "name": [{"text": what}],
                "relationship": text(&values("relationship")).map(|r| json!([{"text": r}])),
                "telecom": text(&phone).map(|p| json!([{"system": "phone", "value": p}])),
            }),
        ),
    };
    if let Some(n) = notes {
        body["note"] = n;
    }
    // Absent optional parts are left out, not written as null (FHIR has no nulls).
    if let Some(obj) = body.as_object_mut() {
        obj.retain(|_, v| !v.is_null());
    }
    Ok((rtype, body))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_kind_reads_back_as_the_form_it_was_made_from() {
        let record = hale_core::RecordId::parse("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").unwrap();
        let forms: [(JournalKind, &[(&str, &str)]); 6] = [
            (
                JournalKind::Symptom,
                &[
                    ("what", "Headache"),
                    ("severity", "moderate"),
                    ("notes", "After lunch"),
                ],
            ),
            (
                JournalKind::Diary,
                &[("mood", "good"), ("notes", "A walk by the river")],
            ),
            (
                JournalKind::Medicine,
                &[
                    ("what", "Ibuprofen"),
                    ("dose", "200 mg"),
                    ("reason", "Back pain"),
                ],
            ),
            (
                JournalKind::Allergy,
                &[("what", "Peanuts"), ("reaction", "Hives")],
            ),
            (JournalKind::Matters, &[("what", "Staying at home")]),
            (
                JournalKind::Contact,
                &[
                    ("what", "Sam"),
                    ("relationship", "Son"),
                    ("phone", "07700 900123"),
                ],
            ),
        ];
        for (kind, form) in forms {
            let get = |name: &str| {
                form.iter()
                    .find(|(n, _)| *n == name)
                    .map_or_else(String::new, |(_, v)| (*v).to_owned())
            };
            let (rtype, body) = journal_resource(kind, &get, &record, 1_700_000_000_000).unwrap();
            assert_eq!(journal_kind_of(rtype, &body), Some(kind));
            let back: Vec<(&str, String)> = journal_values(kind, &body);
            let want: Vec<(&str, String)> = kind
                .fields()
                .iter()
                .map(|(name, _)| (*name, get(name)))
                .collect();
            assert_eq!(back, want, "{kind:?}");
            // Kept when the entry is changed: the moment, the day for what matters, nothing
            // for a contact (which is not about a time).
            let at = 1_700_000_000_000;
            let when = match kind {
                JournalKind::Contact => None,
                JournalKind::Matters => Some(at / 86_400_000 * 86_400_000),
                _ => Some(at),
            };
            assert_eq!(journal_time(&body), when, "{kind:?}");
        }
    }

    #[test]
    fn documents_are_known_by_their_content_not_their_name() {
        assert_eq!(
            sniff_document(b"%PDF-1.7\n..."),
            Some(("application/pdf", "pdf"))
        );
        assert_eq!(
            sniff_document(b"\x89PNG\r\n\x1a\n...."),
            Some(("image/png", "png"))
        );
        assert_eq!(
            sniff_document(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(("image/jpeg", "jpg"))
        );
        for bad in [
            &b"<html><script>alert(1)</script>"[..],
            b"GIF89a",
            b"",
            b"%PD",
        ] {
            assert_eq!(sniff_document(bad), None);
        }
    }
}
