//! Privacy labels (issue 4 §1): every entry is general, mental health, sexual health or social
//! care, in `meta.security` as a coding of `urn:hale:privacy-label` (with HL7's v3 sensitivity
//! code beside it where one says the same: `PSY`, `SEX`). Grants will give access by label.
//!
//! An entry written without a label takes one from its codes where a rule below says so, or
//! keeps the one it had; otherwise it is general. The person may change the label of their
//! own entries (an explicit label on their write is kept); a service's label stays the
//! service's, except that the rules can only make an entry more private, never less.
//!
//! The rules, on ICD-10 codes (WHO, -CM and UK editions alike) anywhere in the entry:
//!
//! | ICD-10 | label | why |
//! |---|---|---|
//! | F00–F99 | mental health | chapter V, mental and behavioural disorders |
//! | A50–A64 | sexual health | infections with a predominantly sexual mode of transmission |
//! | B20–B24 | sexual health | HIV disease |
//! | Z20.2, Z20.6 | sexual health | contact with or exposure to sexually transmitted infection, HIV |
//! | Z30 | sexual health | contraceptive management |
//! | O04 | sexual health | medical abortion |
//! | Z55–Z65 | social care | socioeconomic and psychosocial circumstances |
//!
//! Where rules disagree the order of the table decides (mental health first).

use serde_json::{Value, json};

/// The code system of Hale's privacy labels.
pub const LABEL_SYSTEM: &str = "urn:hale:privacy-label";
const V3_ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";

/// Who an entry is sensitive for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PrivacyLabel {
    /// Anything not below.
    General,
    /// Mental health.
    MentalHealth,
    /// Sexual health.
    SexualHealth,
    /// Social care.
    SocialCare,
}

impl PrivacyLabel {
    /// Every label, in the order people are shown them.
    pub const ALL: [PrivacyLabel; 4] = [
        PrivacyLabel::General,
        PrivacyLabel::MentalHealth,
        PrivacyLabel::SexualHealth,
        PrivacyLabel::SocialCare,
    ];

    /// Its code in [`LABEL_SYSTEM`].
    pub fn code(self) -> &'static str {
        match self {
            PrivacyLabel::General => "general",
            PrivacyLabel::MentalHealth => "mental-health",
            PrivacyLabel::SexualHealth => "sexual-health",
            PrivacyLabel::SocialCare => "social-care",
        }
    }

    /// The label with this code.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.code() == code)
    }

    fn display(self) -> &'static str {
        match self {
            PrivacyLabel::General => "General",
            PrivacyLabel::MentalHealth => "Mental health",
            PrivacyLabel::SexualHealth => "Sexual health",
            PrivacyLabel::SocialCare => "Social care",
        }
    }

    /// HL7 v3's sensitivity code for the same, where there is one.
    fn v3(self) -> Option<&'static str> {
        match self {
            PrivacyLabel::MentalHealth => Some("PSY"),
            PrivacyLabel::SexualHealth => Some("SEX"),
            PrivacyLabel::General | PrivacyLabel::SocialCare => None,
        }
    }
}

/// The label an entry carries, if it carries one.
pub fn label_in(resource: &Value) -> Option<PrivacyLabel> {
    resource
        .pointer("/meta/security")?
        .as_array()?
        .iter()
        .filter(|c| c["system"] == LABEL_SYSTEM)
        .find_map(|c| PrivacyLabel::from_code(c["code"].as_str()?))
}

/// The label an entry carries, general if none.
pub fn label_of(resource: &Value) -> PrivacyLabel {
    label_in(resource).unwrap_or(PrivacyLabel::General)
}

/// Sets an entry's label, replacing the one Hale set before (other security codes stay).
pub fn set_label(resource: &mut Value, label: PrivacyLabel) {
    let Some(obj) = resource.as_object_mut() else {
        return;
    };
    let meta = obj.entry("meta").or_insert_with(|| json!({}));
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    let v3_codes: Vec<&str> = PrivacyLabel::ALL.iter().filter_map(|l| l.v3()).collect();
    let mut security: Vec<Value> = meta
        .get("security")
        .and_then(Value::as_array)
        .map(|s| {
            s.iter()
                .filter(|c| {
                    c["system"] != LABEL_SYSTEM
                        && !(c["system"] == V3_ACT_CODE
                            && c["code"].as_str().is_some_and(|x| v3_codes.contains(&x)))
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    security
        .push(json!({"system": LABEL_SYSTEM, "code": label.code(), "display": label.display()}));
    if let Some(v3) = label.v3() {
        security.push(json!({"system": V3_ACT_CODE, "code": v3}));
    }
    meta.insert("security".into(), Value::Array(security));
}

/// What the table above makes of one ICD-10 code.
fn rule(code: &str) -> Option<PrivacyLabel> {
    let code: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_uppercase();
    let letter = code.chars().next()?;
    let number: u32 = code.get(1..3)?.parse().ok()?;
    let fourth = code.get(3..4);
    match (letter, number) {
        ('F', _) => Some(PrivacyLabel::MentalHealth),
        ('A', 50..=64) | ('B', 20..=24) | ('Z', 30) | ('O', 4) => Some(PrivacyLabel::SexualHealth),
        ('Z', 20) if matches!(fourth, Some("2" | "6")) => Some(PrivacyLabel::SexualHealth),
        ('Z', 55..=65) => Some(PrivacyLabel::SocialCare),
        _ => None,
    }
}

fn icd10_codes<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(obj) => {
            let icd10 = obj
                .get("system")
                .and_then(Value::as_str)
                .is_some_and(|s| s.to_ascii_lowercase().replace('-', "").contains("icd10"));
            if icd10 && let Some(code) = obj.get("code").and_then(Value::as_str) {
                out.push(code);
            }
            for (k, child) in obj {
                if k != "meta" {
                    icd10_codes(child, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| icd10_codes(i, out)),
        _ => {}
    }
}

/// The label the rules give an entry from its ICD-10 codes, if any rule applies.
pub fn label_from_codes(resource: &Value) -> Option<PrivacyLabel> {
    let mut codes = Vec::new();
    icd10_codes(resource, &mut codes);
    let found: Vec<PrivacyLabel> = codes.into_iter().filter_map(rule).collect();
    [
        PrivacyLabel::MentalHealth,
        PrivacyLabel::SexualHealth,
        PrivacyLabel::SocialCare,
    ]
    .into_iter()
    .find(|l| found.contains(l))
}

impl crate::App {
    /// The person changes who may see one of their own entries (a new version; history keeps
    /// the old). A service's entry keeps the service's label.
    pub fn change_own_label(
        &self,
        ctx: &hale_core::RequestContext,
        rtype: &str,
        id: &str,
        label: PrivacyLabel,
    ) -> Result<crate::Written, crate::AppError> {
        let current = self.read_unaudited(ctx, rtype, id)?;
        if ctx.actor.grant().is_some() {
            return Err(crate::AppError::Forbidden(
                "only the person can change who may see their entries".into(),
            ));
        }
        let mut body = current
            .value()
            .ok_or_else(|| crate::AppError::Internal("an entry without content".into()))?;
        if !crate::entered_by_person(&body) || rtype == "Patient" {
            return Err(crate::AppError::Forbidden(
                "this entry was written by a health or care service, and only they can change it"
                    .into(),
            ));
        }
        set_label(&mut body, label);
        self.update(ctx, rtype, id, body, Some(current.version))
    }
}

/// Labels an entry as it is written: by the person (their explicit label kept, else the
/// rules, else what it had), or by a service (the rules where they apply, else its own).
pub(crate) fn label_on_write(body: &mut Value, by_person: bool, before: Option<PrivacyLabel>) {
    let given = label_in(body);
    let ruled = label_from_codes(body);
    let label = if by_person {
        given.or(ruled).or(before)
    } else {
        ruled.or(given).or(before)
    };
    set_label(body, label.unwrap_or(PrivacyLabel::General));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(system: &str, code: &str) -> Value {
        json!({"resourceType": "Condition",
            "code": {"coding": [{"system": system, "code": code}]}})
    }

    #[test]
    fn the_table_reads_icd10_codes_of_every_edition() {
        let cases = [
            ("F32.9", Some(PrivacyLabel::MentalHealth)),
            ("f329", Some(PrivacyLabel::MentalHealth)),
            ("A54.0", Some(PrivacyLabel::SexualHealth)),
            ("B20", Some(PrivacyLabel::SexualHealth)),
            ("Z20.2", Some(PrivacyLabel::SexualHealth)),
            ("Z20.6", Some(PrivacyLabel::SexualHealth)),
            ("Z20.1", None),
            ("Z30.0", Some(PrivacyLabel::SexualHealth)),
            ("O04", Some(PrivacyLabel::SexualHealth)),
            ("Z59.0", Some(PrivacyLabel::SocialCare)),
            ("Z66", None),
            ("A49.9", None),
            ("E11.9", None),
            ("", None),
        ];
        for system in [
            "http://hl7.org/fhir/sid/icd-10",
            "http://hl7.org/fhir/sid/icd-10-cm",
            "http://hl7.org/fhir/sid/icd-10-uk",
        ] {
            for (code, expected) in cases {
                assert_eq!(
                    label_from_codes(&condition(system, code)),
                    expected,
                    "{system} {code}"
                );
            }
        }
        // The same code in another system says nothing.
        assert_eq!(
            label_from_codes(&condition("http://snomed.info/sct", "F32")),
            None
        );
    }

    #[test]
    fn mental_health_comes_first_where_rules_disagree() {
        let both = json!({"resourceType": "Condition", "code": {"coding": [
            {"system": "http://hl7.org/fhir/sid/icd-10", "code": "Z59.0"},
            {"system": "http://hl7.org/fhir/sid/icd-10", "code": "F10.2"}]}});
        assert_eq!(label_from_codes(&both), Some(PrivacyLabel::MentalHealth));
    }

    #[test]
    fn a_service_cannot_make_a_ruled_entry_less_private_and_the_person_can_choose() {
        let mut from_service = condition("http://hl7.org/fhir/sid/icd-10", "F41.1");
        set_label(&mut from_service, PrivacyLabel::General);
        label_on_write(&mut from_service, false, None);
        assert_eq!(label_of(&from_service), PrivacyLabel::MentalHealth);
        let security = from_service["meta"]["security"].as_array().unwrap();
        assert_eq!(security.len(), 2, "one label and its v3 code: {security:?}");
        let mut own = condition("http://hl7.org/fhir/sid/icd-10", "F41.1");
        set_label(&mut own, PrivacyLabel::General);
        label_on_write(&mut own, true, None);
        assert_eq!(label_of(&own), PrivacyLabel::General);
        // Written again without a label, an entry keeps the one it had.
        let mut edited = json!({"resourceType": "Observation"});
        label_on_write(&mut edited, true, Some(PrivacyLabel::SocialCare));
        assert_eq!(label_of(&edited), PrivacyLabel::SocialCare);
        // Other security codes stay.
        let mut other =
            json!({"meta": {"security": [{"system": "http://example.org", "code": "x"}]}});
        set_label(&mut other, PrivacyLabel::SexualHealth);
        assert_eq!(other["meta"]["security"].as_array().unwrap().len(), 3);
    }
}
