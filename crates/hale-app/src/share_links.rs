//! Share links (issue 4 §4) and the emergency summary (§5): a time-limited, view-only link,
//! with an optional passcode, to chosen kinds of entry, for showing a clinician or a new
//! carer; or to the emergency summary (allergies, current medicines, conditions and contacts
//! on one page), printed with a QR code. A link is a grant like any other (a `Consent` in the
//! record, held by `urn:hale:share-link|DIGEST`): it is checked on every use, taken back the
//! same way, and every use is in the audit log as `link:ID`.

use hale_core::{Actor, AuthStrength, RecordId, RequestContext, ResourceId, Scopes};
use hale_store::{Expect, StoredResource};
use serde_json::Value;

use crate::grants::{Grant, Holder, Role, Status};
use crate::labels::PrivacyLabel;
use crate::{App, AppError};

/// What the emergency summary holds.
pub const EMERGENCY_TYPES: [&str; 6] = [
    "AllergyIntolerance",
    "MedicationStatement",
    "MedicationRequest",
    "Condition",
    "RelatedPerson",
    "Patient",
];

/// The shortest passcode accepted.
pub const MIN_PASSCODE: usize = 6;

/// What the person chose for a new link.
#[derive(Debug, Clone)]
pub struct NewLink {
    /// What the person calls it ("For the walk-in centre").
    pub name: String,
    /// The kinds of entry; ignored for the emergency summary.
    pub types: Vec<String>,
    /// The labels; the emergency summary shares general entries only.
    pub labels: Vec<PrivacyLabel>,
    /// How many days it works.
    pub days: i64,
    /// A passcode to type before anything is shown.
    pub passcode: Option<String>,
    /// The emergency summary rather than chosen kinds of entry.
    pub emergency: bool,
}

/// Why a new link was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkProblem {
    /// No name, or too long.
    NameMissing,
    /// No label or kind chosen.
    NothingChosen,
    /// Shorter than [`MIN_PASSCODE`].
    PasscodeTooShort,
    /// Not between 1 and 366 days.
    DaysWrong,
}

/// A link just made: its grant, and the token for its address (shown once, never stored).
#[derive(Debug, Clone)]
pub struct CreatedLink {
    /// The grant behind it.
    pub grant: Grant,
    /// The secret part of the address: `/s/TOKEN`.
    pub token: String,
}

/// What opening a link gives.
#[derive(Debug)]
pub enum LinkOpen {
    /// It has a passcode, and none (or a wrong one) was given.
    NeedsPasscode {
        /// A passcode was typed and was wrong.
        wrong: bool,
    },
    /// Open: the context to read with, and the grant (what it shares).
    Open(Box<RequestContext>, Box<Grant>),
}

/// The emergency summary: what a clinician meeting the person for the first time needs.
#[derive(Debug, Default)]
pub struct EmergencySummary {
    /// The person's Patient (name, birth date, their own contacts).
    pub patient: Option<StoredResource>,
    /// Allergies and intolerances.
    pub allergies: Vec<StoredResource>,
    /// Medicines taken now.
    pub medicines: Vec<StoredResource>,
    /// Conditions that are active.
    pub conditions: Vec<StoredResource>,
    /// People to contact.
    pub contacts: Vec<StoredResource>,
}

fn is_current(v: &Value) -> bool {
    let status = |field: &str| {
        v[field]["coding"][0]["code"]
            .as_str()
            .or_else(|| v[field].as_str())
            .unwrap_or("")
            .to_owned()
    };
    match v["resourceType"].as_str() {
        Some("Condition") => !matches!(
            status("clinicalStatus").as_str(),
            "inactive" | "resolved" | "remission"
        ),
        Some("MedicationStatement") => {
            matches!(status("status").as_str(), "active" | "intended" | "")
        }
        Some("MedicationRequest") => matches!(status("status").as_str(), "active" | ""),
        Some("AllergyIntolerance") => {
            status("verificationStatus") != "entered-in-error"
                && status("clinicalStatus") != "resolved"
        }
        _ => true,
    }
}

impl App {
    /// Makes a share link to the person's own record.
    pub fn create_share_link(
        &self,
        ctx: &RequestContext,
        new: &NewLink,
    ) -> Result<Result<CreatedLink, Vec<LinkProblem>>, AppError> {
        let record = self.owner_record(ctx)?;
        let mut problems = Vec::new();
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            problems.push(LinkProblem::NameMissing);
        }
        if !new.emergency && new.labels.is_empty() {
            problems.push(LinkProblem::NothingChosen);
        }
        let passcode = new
            .passcode
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty());
        if passcode.is_some_and(|p| p.chars().count() < MIN_PASSCODE) {
            problems.push(LinkProblem::PasscodeTooShort);
        }
        if !(1..=366).contains(&new.days) {
            problems.push(LinkProblem::DaysWrong);
        }
        if !problems.is_empty() {
            return Ok(Err(problems));
        }
        let passcode_hash = passcode
            .map(hale_auth::password::hash)
            .transpose()
            .map_err(|e| AppError::Internal(e.to_string()))?;
        let token = hale_auth::secret::random_token();
        let now = hale_fhir::date::now_millis();
        let (types, labels, role) = if new.emergency {
            (
                EMERGENCY_TYPES.iter().map(|t| (*t).to_owned()).collect(),
                vec![PrivacyLabel::General],
                Role::EmergencyLink,
            )
        } else {
            let mut labels = new.labels.clone();
            labels.sort();
            labels.dedup();
            (new.types.clone(), labels, Role::Link)
        };
        let grant = Grant {
            id: ResourceId::generate().to_string(),
            record,
            holder: Holder::Link(hale_auth::secret::digest(&token)),
            name: name.to_owned(),
            person: String::new(),
            role,
            labels,
            types,
            write: false,
            start: now,
            end: Some(now + new.days * 24 * 3600 * 1000),
            status: Status::Active,
            given_at: now,
            passcode_hash,
        };
        self.write_grant(ctx, &grant, Expect::Absent, "create-share-link")?;
        Ok(Ok(CreatedLink { grant, token }))
    }

    /// Opens a share link by its token: refused as not found if it is unknown, taken back or
    /// past its date; asks for the passcode if it has one. Wrong passcodes count towards the
    /// same limits as sign-in (per link and per address).
    pub fn open_share_link(
        &self,
        token: &str,
        passcode: Option<&str>,
        client: &str,
        request_id: &str,
    ) -> Result<LinkOpen, AppError> {
        let gone = || AppError::NotFound {
            resource_type: "share link".into(),
            id: String::new(),
        };
        let now = hale_fhir::date::now_millis();
        let grant = self
            .grants_by_holder(
                crate::grants::LINK_SYSTEM,
                &hale_auth::secret::digest(token),
            )?
            .into_iter()
            .find(|g| g.in_force(now))
            .ok_or_else(gone)?;
        if let Some(hash) = &grant.passcode_hash {
            let Some(typed) = passcode else {
                return Ok(LinkOpen::NeedsPasscode { wrong: false });
            };
            let identity = self.identity()?;
            let keys = [format!("link:{}", grant.id), format!("addr:{client}")];
            identity.throttle.check(&keys)?;
            if !hale_auth::password::verify(typed.trim(), hash) {
                identity.throttle.failed(&keys);
                return Ok(LinkOpen::NeedsPasscode { wrong: true });
            }
            identity.throttle.succeeded(&keys[0]);
        }
        // What came from services is shown only if the person could see it themselves.
        let verification = self
            .store
            .accounts_of_record(&grant.record)?
            .iter()
            .map(|a| a.verification_level)
            .max()
            .unwrap_or(hale_core::VerificationLevel::P0);
        let ctx = RequestContext {
            actor: Actor::Grantee {
                record: grant.record.clone(),
                grant: grant.id.clone(),
                scopes: Scopes::parse("patient/*.rs")
                    .map_err(|e| AppError::Internal(e.to_string()))?,
                subject: format!("link:{}", grant.id),
                app: None,
            },
            verification,
            strength: AuthStrength::TwoFactor,
            request_id: request_id.to_owned(),
        };
        Ok(LinkOpen::Open(Box::new(ctx), Box::new(grant)))
    }

    /// The emergency summary of the record in `ctx` (the person's own, or through a link).
    pub fn emergency_summary(&self, ctx: &RequestContext) -> Result<EmergencySummary, AppError> {
        let record: RecordId = ctx
            .actor
            .record()
            .cloned()
            .ok_or_else(|| AppError::Forbidden("the summary belongs to one record".into()))?;
        let mut summary = EmergencySummary {
            patient: Some(self.read(ctx, "Patient", record.as_str())?),
            ..Default::default()
        };
        let count = [("_count".to_owned(), "100".to_owned())];
        for rtype in &EMERGENCY_TYPES[..5] {
            let (_, page) = self.search_entries(ctx, rtype, &count, false)?;
            let current = page
                .matches
                .into_iter()
                .filter(|r| r.value().is_some_and(|v| is_current(&v)));
            match *rtype {
                "AllergyIntolerance" => summary.allergies.extend(current),
                "Condition" => summary.conditions.extend(current),
                "RelatedPerson" => summary.contacts.extend(current),
                _ => summary.medicines.extend(current),
            }
        }
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_current_entries_are_in_the_emergency_summary() {
        let active = json!({"resourceType": "Condition", "clinicalStatus": {"coding": [{"code": "active"}]}});
        let resolved = json!({"resourceType": "Condition", "clinicalStatus": {"coding": [{"code": "resolved"}]}});
        let stopped = json!({"resourceType": "MedicationStatement", "status": "stopped"});
        let taking = json!({"resourceType": "MedicationStatement", "status": "active"});
        let mistake = json!({"resourceType": "AllergyIntolerance", "verificationStatus": {"coding": [{"code": "entered-in-error"}]}});
        assert!(is_current(&active) && is_current(&taking));
        assert!(!is_current(&resolved) && !is_current(&stopped) && !is_current(&mistake));
    }
}
