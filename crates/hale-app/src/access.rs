//! The one decision (issue 4 §6): may this actor do this to this entry of this record, and
//! if not, why. Every read, search, history, `$everything`, export and write of record data
//! passes through [`Access::decide`]; searches also turn the same rules into index clauses
//! ([`Access::search_clauses`]) so that counts and paging agree with what is shown.
//!
//! The rules, in order:
//!
//! 1. An entry in a record the actor cannot reach does not exist for it.
//! 2. A record-bound actor whose identity is verified below P9 sees only what the person
//!    entered, and the record's own Patient (NHS login's rule: information from health and
//!    care sources needs a verified identity).
//! 3. Someone acting under a grant sees the record's Patient, and entries whose type and
//!    privacy label the grant covers; never a Consent (grants among them) or the audit log.
//! 4. Changing needs sight first; then: grants (`Consent` with scope `patient-privacy`) are
//!    given and taken back only through the sharing use cases, never written directly; what
//!    a health or care service wrote stays theirs; a grantee adds entries only under a grant
//!    that says so, within its labels and types, and never changes or removes what is there
//!    (the record stays the person's).
//!
//! Scopes (what the token may do at all, whatever the data) are checked before this, and
//! refuse in the same words whatever is stored.

use hale_core::{Actor, RecordId, RequestContext, VerificationLevel};
use serde_json::Value;

use crate::grants::{Grant, Role};
use crate::labels::{self, PrivacyLabel};
use crate::{App, AppError};

/// What an actor is to the data, resolved once per request (a grantee's grant is read
/// afresh each time, so a revocation holds from the very next request).
#[derive(Debug, Clone)]
pub(crate) enum Access {
    /// The person, or an app acting for them.
    Owner {
        record: RecordId,
        own_entries_only: bool,
    },
    /// Someone the person gave access to, within a grant in force.
    Grantee {
        record: RecordId,
        grant: Box<Grant>,
        own_entries_only: bool,
    },
    /// A health or care organisation's system: in each record whose person gave the
    /// organisation access, what that grant allows (each an [`Access::Grantee`]); nothing
    /// anywhere else.
    Organisation { within: Vec<Access> },
    /// An operator, or the operator's own tools: every record, within its scopes.
    System,
}

/// What is being done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// Read, vread, a search match, an include, history, `$everything`, export.
    Read,
    /// Create.
    Create,
    /// Update or patch.
    Update,
    /// Delete.
    Delete,
}

/// Why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// Answer exactly as if the entry did not exist.
    Hidden,
    /// The actor may see it but not do this: a 403 with a reason that reveals nothing the
    /// actor cannot already see.
    Refused(&'static str),
}

/// The facts about one entry that the rules look at.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// Whose record it is in.
    pub record: &'a RecordId,
    /// Its type.
    pub resource_type: &'a str,
    /// Its id.
    pub id: &'a str,
    /// Its privacy label, if it carries one.
    pub label: Option<PrivacyLabel>,
    /// Whether the person (or an app or grantee for them) entered it.
    pub by_person: bool,
    /// Whether it is a grant.
    pub is_grant: bool,
}

impl<'a> Target<'a> {
    /// The facts of a stored or about-to-be-stored resource.
    pub fn of(record: &'a RecordId, resource_type: &'a str, id: &'a str, body: &Value) -> Self {
        Target {
            record,
            resource_type,
            id,
            label: labels::label_in(body),
            by_person: crate::entered_by_person(body),
            is_grant: resource_type == "Consent" && crate::grants::is_grant(body),
        }
    }

    fn own_patient(&self) -> bool {
        self.resource_type == "Patient" && self.id == self.record.as_str()
    }
}

/// Types a grantee never sees: the person's decisions about their data (grants and any other
/// consent) and the log of who looked.
const PERSONS_OWN: [&str; 2] = ["Consent", "AuditEvent"];

const SERVICE_ENTRY: &str =
    "this entry was written by a health or care service, and only they can change it";
const GRANTS_ELSEWHERE: &str =
    "access to a record is given and taken back through its sharing settings, not written directly";
const READ_ONLY_GRANT: &str = "the access you were given lets you look, not change";
const ADD_ONLY: &str =
    "the access you were given lets you add entries, not change or remove what is there";
const OUTSIDE_GRANT: &str = "the access you were given does not cover this kind of entry";
const PERSONS_DETAILS: &str = "only the person can change their own details";

impl Access {
    /// The record the actor is confined to (`None`: every record).
    pub fn scope(&self) -> Option<&RecordId> {
        match self {
            Access::Owner { record, .. } | Access::Grantee { record, .. } => Some(record),
            Access::Organisation { .. } | Access::System => None,
        }
    }

    /// Whether anything in `record` can be reached at all.
    pub fn reaches(&self, record: &RecordId) -> bool {
        match self {
            Access::Organisation { within } => within.iter().any(|a| a.reaches(record)),
            _ => self.scope().is_none_or(|r| r == record),
        }
    }

    /// What an organisation may do in one record (as a grantee under its grant there, or
    /// nothing at all); any other access unchanged.
    pub fn in_record(self, record: &RecordId) -> Access {
        match self {
            Access::Organisation { within } => {
                match within.into_iter().find(|a| a.reaches(record)) {
                    Some(grantee) => grantee,
                    None => Access::Organisation { within: Vec::new() },
                }
            }
            other => other,
        }
    }

    /// The grant, for someone acting under one.
    pub fn grant(&self) -> Option<&Grant> {
        match self {
            Access::Grantee { grant, .. } => Some(grant),
            _ => None,
        }
    }

    fn own_entries_only(&self) -> bool {
        matches!(
            self,
            Access::Owner {
                own_entries_only: true,
                ..
            } | Access::Grantee {
                own_entries_only: true,
                ..
            }
        )
    }

    /// Whether what this actor writes is the person's side of the record (tagged entered by
    /// the person, theirs to change): the person, their apps, and carers or relatives acting
    /// for them. A professional's entries are theirs, like any service's (mission point 4).
    pub fn writes_as_person(&self) -> bool {
        match self {
            Access::Owner { .. } => true,
            Access::Grantee { grant, .. } => !grant.role.is_professional(),
            Access::Organisation { .. } | Access::System => false,
        }
    }

    /// Whether anything beyond the scopes narrows what this actor sees (searches then need
    /// care: chains into other entries are refused rather than risk revealing them).
    pub fn is_narrowed(&self) -> bool {
        self.own_entries_only()
            || matches!(self, Access::Grantee { .. } | Access::Organisation { .. })
    }

    /// The decision.
    pub fn decide(&self, verb: Verb, target: &Target<'_>) -> Result<(), Denial> {
        if let Access::Organisation { within } = self {
            return match within.iter().find(|a| a.reaches(target.record)) {
                Some(grantee) => grantee.decide(verb, target),
                None => Err(Denial::Hidden),
            };
        }
        if self.scope().is_some_and(|r| r != target.record) {
            return Err(Denial::Hidden);
        }
        if verb != Verb::Create && !self.sees(target) {
            return Err(Denial::Hidden);
        }
        if verb == Verb::Read {
            return Ok(());
        }
        if target.is_grant {
            return Err(Denial::Refused(GRANTS_ELSEWHERE));
        }
        match self {
            Access::System => Ok(()),
            Access::Organisation { .. } => Err(Denial::Hidden),
            Access::Owner { .. } => {
                if verb != Verb::Create && !target.by_person && !target.own_patient() {
                    return Err(Denial::Refused(SERVICE_ENTRY));
                }
                Ok(())
            }
            // An app the person connected acts as the person would, within what they chose.
            Access::Grantee { grant, .. } if grant.role == Role::App => {
                if !grant.write {
                    return Err(Denial::Refused(READ_ONLY_GRANT));
                }
                if verb == Verb::Create {
                    if !grant.covers(target.resource_type, target.label) {
                        return Err(Denial::Refused(OUTSIDE_GRANT));
                    }
                } else if !target.by_person && !target.own_patient() {
                    return Err(Denial::Refused(SERVICE_ENTRY));
                }
                Ok(())
            }
            Access::Grantee { grant, .. } => {
                if !grant.write {
                    return Err(Denial::Refused(READ_ONLY_GRANT));
                }
                if target.own_patient() {
                    return Err(Denial::Refused(PERSONS_DETAILS));
                }
                if verb != Verb::Create {
                    return Err(Denial::Refused(ADD_ONLY));
                }
                if !grant.covers(target.resource_type, target.label) {
                    return Err(Denial::Refused(OUTSIDE_GRANT));
                }
                Ok(())
            }
        }
    }

    /// Whether the entry is visible at all (rules 2 and 3).
    fn sees(&self, target: &Target<'_>) -> bool {
        if target.own_patient() {
            return true;
        }
        if self.own_entries_only() && !target.by_person {
            return false;
        }
        match self {
            Access::Grantee { grant, .. } => {
                !PERSONS_OWN.contains(&target.resource_type)
                    && grant.covers(target.resource_type, target.label)
            }
            _ => true,
        }
    }

    /// Whether a search of `rtype` can find anything for this actor at all.
    pub fn may_search(&self, rtype: &str) -> bool {
        match self {
            // Narrowed to one record first ([`Access::in_record`]); an empty one finds nothing.
            Access::Organisation { within } => within.iter().any(|a| a.may_search(rtype)),
            Access::Grantee { grant, .. } => {
                rtype == "Patient"
                    || (!PERSONS_OWN.contains(&rtype)
                        && (grant.types.is_empty() || grant.types.iter().any(|t| t == rtype)))
            }
            _ => true,
        }
    }

    /// Whether the daily summaries of wearable samples (general, entered by the person) are
    /// visible.
    pub fn sees_samples(&self) -> bool {
        match self {
            Access::Grantee { grant, .. } => {
                grant.covers("Observation", Some(PrivacyLabel::General))
            }
            Access::Organisation { .. } => false,
            _ => true,
        }
    }

    /// Search clauses that confine a search of `rtype` to what [`sees`](Self::sees) allows,
    /// so the index does the narrowing and totals and pages count only what is shown.
    pub fn search_clauses(&self, rtype: &str) -> Vec<(String, String)> {
        let mut clauses = Vec::new();
        if rtype == "Patient" {
            // Only the record's own Patient is always visible; the rest are filtered after.
            return clauses;
        }
        if self.own_entries_only() {
            clauses.push((
                "_tag".into(),
                format!("{}|{}", crate::ENTERED_BY.0, crate::ENTERED_BY.1),
            ));
        }
        if let Access::Grantee { grant, .. } = self {
            let labels: Vec<String> = grant
                .labels
                .iter()
                .map(|l| format!("{}|{}", labels::LABEL_SYSTEM, l.code()))
                .collect();
            clauses.push(("_security".into(), labels.join(",")));
        }
        clauses
    }
}

impl App {
    /// Resolves what the request's actor is to the data: for a grantee, reads the grant and
    /// checks it is in force now and is theirs. A grant not in force refuses the request as
    /// unauthenticated (the access has ended), in the same words whatever the reason.
    pub(crate) fn access(&self, ctx: &RequestContext) -> Result<Access, AppError> {
        let narrowed = ctx.verification < VerificationLevel::P9;
        match &ctx.actor {
            Actor::Record { record, .. } => Ok(Access::Owner {
                record: record.clone(),
                own_entries_only: narrowed,
            }),
            Actor::Grantee {
                record,
                grant,
                subject,
                ..
            } => {
                let ended = || AppError::Unauthenticated("this access has ended".into());
                let grant = self
                    .grant_by_id(record, grant)?
                    .filter(|g| g.in_force(hale_fhir::date::now_millis()))
                    .ok_or_else(ended)?;
                if !self.holds(&grant, subject)? {
                    return Err(ended());
                }
                Ok(Access::Grantee {
                    record: record.clone(),
                    grant: Box::new(grant),
                    own_entries_only: narrowed,
                })
            }
            Actor::Organisation { org, .. } => Ok(Access::Organisation {
                within: self
                    .grants_of_organisation(org)?
                    .into_iter()
                    .map(|g| Access::Grantee {
                        record: g.record.clone(),
                        grant: Box::new(g),
                        own_entries_only: false,
                    })
                    .collect(),
            }),
            Actor::System { .. } => Ok(Access::System),
        }
    }

    /// [`Access::decide`] as an application error: hidden answers as a missing `rtype/id`.
    pub(crate) fn check(
        &self,
        access: &Access,
        verb: Verb,
        target: &Target<'_>,
    ) -> Result<(), AppError> {
        access.decide(verb, target).map_err(|d| match d {
            Denial::Hidden => AppError::NotFound {
                resource_type: target.resource_type.to_owned(),
                id: target.id.to_owned(),
            },
            Denial::Refused(why) => AppError::Forbidden(why.into()),
        })
    }

    /// Whether a stored version may be seen (deletion markers follow their resource).
    pub(crate) fn visible_to(&self, access: &Access, r: &hale_store::StoredResource) -> bool {
        // Unnarrowed (the person, a system), what is seen depends on the record alone, so
        // the entry is not parsed: `$everything` of a large record spent a third of its time
        // here.
        if !access.is_narrowed() {
            return access.reaches(&r.record);
        }
        match r.value() {
            Some(v) => access
                .decide(
                    Verb::Read,
                    &Target::of(&r.record, &r.resource_type, &r.id, &v),
                )
                .is_ok(),
            None => access.reaches(&r.record),
        }
    }
}
