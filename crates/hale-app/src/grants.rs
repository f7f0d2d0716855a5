//! Grants (issue 4 §2): the person gives someone (a carer, a relative, a professional) access
//! to chosen privacy labels and kinds of entry, to look or to look and add, from a date and
//! until a date. Each grant is a FHIR `Consent` (scope `patient-privacy`) in the person's
//! record, so it is kept, versioned and exported with everything else; its holder is named
//! by an identifier, `urn:hale:invitation|DIGEST` while the emailed invitation waits and
//! `urn:hale:account|ACCOUNT` once accepted.
//!
//! A grant is read again on every request made under it ([`App::access`]), so taking it back
//! ends the access on the very next request, for pages already open and tokens already
//! issued alike.

use hale_core::{Actor, AuthStrength, RecordId, RequestContext, ResourceId, Scopes};
use hale_fhir::search::SearchQuery;
use hale_store::{Expect, StoredResource, WriteBatch, WriteOp};
use serde_json::{Value, json};

use crate::accounts::SignedIn;
use crate::labels::PrivacyLabel;
use crate::{App, AppError};

/// Consent scope of a grant.
const SCOPE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/consentscope";
const ACCOUNT_SYSTEM: &str = "urn:hale:account";
const INVITATION_SYSTEM: &str = "urn:hale:invitation";
pub(crate) const LINK_SYSTEM: &str = "urn:hale:share-link";
const APP_SYSTEM: &str = "urn:hale:app";
pub(crate) const ORGANISATION_SYSTEM: &str = "urn:hale:organisation";
const PASSCODE_EXTENSION: &str = "urn:hale:passcode";
const ROLE_SYSTEM: &str = "urn:hale:grant-role";
const ACTION_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/consentactioncodes";
const TYPE_SYSTEM: &str = "http://hl7.org/fhir/resource-types";

/// How long an emailed invitation can be accepted.
pub const INVITATION_LIFETIME_MS: i64 = 14 * 24 * 3600 * 1000;

/// Who the grant is for, as the person describes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Someone who cares for them.
    Carer,
    /// A relative or friend.
    Family,
    /// A health or care professional.
    Professional,
    /// Whoever holds a share link: view only, chosen entries, for a time.
    Link,
    /// Whoever holds the link to the emergency summary.
    EmergencyLink,
    /// An app the person connected (an OAuth client), acting for them.
    App,
    /// A health or care organisation (its systems, through SMART Backend Services).
    Organisation,
}

impl Role {
    /// The roles of people the person gives access to, in the order people are shown them.
    pub const ALL: [Role; 3] = [Role::Carer, Role::Family, Role::Professional];

    /// Its code in `urn:hale:grant-role`.
    pub fn code(self) -> &'static str {
        match self {
            Role::Carer => "carer",
            Role::Family => "family",
            Role::Professional => "professional",
            Role::Link => "link",
            Role::EmergencyLink => "emergency-link",
            Role::App => "app",
            Role::Organisation => "organisation",
        }
    }

    /// The role with this code.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .chain([
                Role::Link,
                Role::EmergencyLink,
                Role::App,
                Role::Organisation,
            ])
            .find(|r| r.code() == code)
    }

    /// Whether its holder writes as a health or care service (a professional, or an
    /// organisation and the professionals who work there).
    pub fn is_professional(self) -> bool {
        matches!(self, Role::Professional | Role::Organisation)
    }

    /// Whether this is a share link rather than a person.
    pub fn is_link(self) -> bool {
        matches!(self, Role::Link | Role::EmergencyLink)
    }
}

/// Where a grant stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Invited by email, not yet accepted.
    Invited,
    /// Accepted: in force between its dates.
    Active,
    /// Taken back by the person (or the invitation withdrawn).
    Revoked,
}

/// Who holds a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// The digest of the emailed invitation, until someone accepts it.
    Invitation(String),
    /// The account that accepted it.
    Account(String),
    /// The digest of a share link's token: whoever holds the link (and its passcode).
    Link(String),
    /// An app the person connected, acting for them.
    App {
        /// The OAuth client.
        client: String,
        /// The person's account.
        account: String,
    },
    /// A health or care organisation an operator registered.
    Organisation(String),
}

/// One grant, as read from its `Consent`.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    /// The Consent's id.
    pub id: String,
    /// Whose record.
    pub record: RecordId,
    /// Who holds it.
    pub holder: Holder,
    /// What the person calls them.
    pub name: String,
    /// The person's name as it was when they gave access (shown to the holder).
    pub person: String,
    /// Who they are to the person.
    pub role: Role,
    /// The labels they may see; never empty.
    pub labels: Vec<PrivacyLabel>,
    /// The resource types they may see; empty for every type.
    pub types: Vec<String>,
    /// Whether they may add entries (and change what they or the person added).
    pub write: bool,
    /// In force from, ms.
    pub start: i64,
    /// In force until (exclusive), ms; `None` until taken back.
    pub end: Option<i64>,
    /// Where it stands.
    pub status: Status,
    /// When it was given, ms.
    pub given_at: i64,
    /// A share link's passcode, as an argon2id hash.
    pub passcode_hash: Option<String>,
}

/// What the person chose when giving access.
#[derive(Debug, Clone)]
pub struct NewGrant {
    /// What they call the person they are giving access to.
    pub name: String,
    /// Where the invitation goes.
    pub email: String,
    /// Who they are.
    pub role: Role,
    /// The labels to share; at least one.
    pub labels: Vec<PrivacyLabel>,
    /// The types to share; empty for all.
    pub types: Vec<String>,
    /// Look and add, or look only.
    pub write: bool,
    /// From, ms.
    pub start: i64,
    /// Until, ms.
    pub end: Option<i64>,
}

impl Grant {
    /// Whether it lets its holder in at `now`.
    pub fn in_force(&self, now: i64) -> bool {
        self.status == Status::Active && self.start <= now && self.end.is_none_or(|e| now < e)
    }

    /// Whether it covers an entry of `rtype` labelled `label` (an unlabelled entry is
    /// covered by no grant: it predates labels, and sharing it would be a guess).
    pub fn covers(&self, rtype: &str, label: Option<PrivacyLabel>) -> bool {
        (self.types.is_empty() || self.types.iter().any(|t| t == rtype))
            && label.is_some_and(|l| self.labels.contains(&l))
    }

    /// The actor subject of its holder, once accepted (`account:ID`).
    pub fn holder_subject(&self) -> Option<String> {
        match &self.holder {
            Holder::Account(id) => Some(format!("account:{id}")),
            Holder::Link(_) => Some(format!("link:{}", self.id)),
            Holder::App { account, .. } => Some(format!("account:{account}")),
            Holder::Organisation(org) => Some(format!("org:{org}")),
            Holder::Invitation(_) => None,
        }
    }

    fn to_consent(&self) -> Value {
        let status = match self.status {
            Status::Invited => "proposed",
            Status::Active => "active",
            Status::Revoked => "inactive",
        };
        let app_holder;
        let (system, value) = match &self.holder {
            Holder::Invitation(d) => (INVITATION_SYSTEM, d.as_str()),
            Holder::Account(a) => (ACCOUNT_SYSTEM, a.as_str()),
            Holder::Link(d) => (LINK_SYSTEM, d.as_str()),
            Holder::Organisation(o) => (ORGANISATION_SYSTEM, o.as_str()),
            Holder::App { client, account } => {
                app_holder = format!("{client} {account}");
                (APP_SYSTEM, app_holder.as_str())
            }
        };
        let mut period = json!({"start": hale_fhir::date::format_instant(self.start)});
        if let Some(end) = self.end {
            period["end"] = json!(hale_fhir::date::format_instant(end));
        }
        let mut actions = vec![json!({"coding": [{"system": ACTION_SYSTEM, "code": "access"}]})];
        if self.write {
            actions.push(json!({"coding": [{"system": ACTION_SYSTEM, "code": "correct"}]}));
        }
        let mut provision = json!({
            "type": "permit",
            "period": period,
            "actor": [{
                "role": {"coding": [{"system": ROLE_SYSTEM, "code": self.role.code()}]},
                "reference": {"identifier": {"system": system, "value": value}, "display": self.name}
            }],
            "action": actions,
            "securityLabel": self.labels.iter()
                .map(|l| json!({"system": crate::labels::LABEL_SYSTEM, "code": l.code()}))
                .collect::<Vec<_>>(),
        });
        if !self.types.is_empty() {
            provision["class"] = self
                .types
                .iter()
                .map(|t| json!({"system": TYPE_SYSTEM, "code": t}))
                .collect();
        }
        let mut consent = json!({
            "resourceType": "Consent",
            "id": self.id,
            "status": status,
            "scope": {"coding": [{"system": SCOPE_SYSTEM, "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": format!("Patient/{}", self.record)},
            "dateTime": hale_fhir::date::format_instant(self.given_at),
            "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
            "provision": provision,
        });
        // FHIR strings are never empty.
        if !self.person.is_empty() {
            consent["patient"]["display"] = json!(self.person);
        }
        if let Some(hash) = &self.passcode_hash {
            consent["extension"] = json!([{"url": PASSCODE_EXTENSION, "valueString": hash}]);
        }
        consent
    }

    /// Reads a grant back from its Consent; `None` for any Consent that is not one.
    fn from_consent(record: &RecordId, v: &Value) -> Option<Grant> {
        if !is_grant(v) {
            return None;
        }
        let status = match v["status"].as_str()? {
            "proposed" => Status::Invited,
            "active" => Status::Active,
            _ => Status::Revoked,
        };
        let p = &v["provision"];
        let actor = &p["actor"][0];
        let ident = &actor["reference"]["identifier"];
        let value = ident["value"].as_str()?.to_owned();
        let holder = match ident["system"].as_str()? {
            INVITATION_SYSTEM => Holder::Invitation(value),
            ACCOUNT_SYSTEM => Holder::Account(value),
            LINK_SYSTEM => Holder::Link(value),
            ORGANISATION_SYSTEM => Holder::Organisation(value),
            APP_SYSTEM => {
                let (client, account) = value.split_once(' ')?;
                Holder::App {
                    client: client.to_owned(),
                    account: account.to_owned(),
                }
            }
            _ => return None,
        };
        let codes = |field: &Value| -> Vec<String> {
            field
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c["code"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let ms = |x: &Value| {
            x.as_str()
                .and_then(hale_fhir::date::parse_range)
                .map(|r| r.lo)
        };
        Some(Grant {
            id: v["id"].as_str()?.to_owned(),
            record: record.clone(),
            holder,
            name: actor["reference"]["display"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            person: v["patient"]["display"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            role: Role::from_code(actor["role"]["coding"][0]["code"].as_str()?)?,
            labels: codes(&p["securityLabel"])
                .iter()
                .filter_map(|c| PrivacyLabel::from_code(c))
                .collect(),
            types: codes(&p["class"]),
            write: p["action"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["coding"][0]["code"] == "correct")),
            start: ms(&p["period"]["start"])?,
            end: ms(&p["period"]["end"]),
            status,
            given_at: ms(&v["dateTime"]).unwrap_or(0),
            passcode_hash: v["extension"].as_array().and_then(|x| {
                x.iter()
                    .find(|e| e["url"] == PASSCODE_EXTENSION)
                    .and_then(|e| e["valueString"].as_str().map(str::to_owned))
            }),
        })
    }
}

/// Whether a Consent is one of Hale's grants: scope `patient-privacy`, held by an account or
/// an invitation. (Other privacy consents, written by services, are ordinary entries.)
pub fn is_grant(v: &Value) -> bool {
    let privacy = v["scope"]["coding"].as_array().is_some_and(|c| {
        c.iter()
            .any(|x| x["system"] == SCOPE_SYSTEM && x["code"] == "patient-privacy")
    });
    let holders = v["provision"]["actor"].as_array();
    privacy
        && holders.is_some_and(|a| {
            a.iter().any(|x| {
                let system = &x["reference"]["identifier"]["system"];
                system == ACCOUNT_SYSTEM
                    || system == INVITATION_SYSTEM
                    || system == LINK_SYSTEM
                    || system == APP_SYSTEM
                    || system == ORGANISATION_SYSTEM
            })
        })
}

/// Why a new grant was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantProblem {
    /// No name, or too long.
    NameMissing,
    /// Not an email address.
    EmailInvalid,
    /// No label chosen.
    NothingChosen,
    /// A type that is not an R4 resource type a record holds.
    UnknownType,
    /// Ends before it starts, or ends in the past.
    DatesWrong,
    /// No organisation chosen, or one that is not registered.
    OrganisationUnknown,
}

impl App {
    /// The grant with this id in `record`, whatever its state.
    pub(crate) fn grant_by_id(
        &self,
        record: &RecordId,
        id: &str,
    ) -> Result<Option<Grant>, AppError> {
        Ok(self
            .store
            .read(Some(record), "Consent", id)?
            .and_then(|r| r.value().and_then(|v| Grant::from_consent(record, &v))))
    }

    /// Grants found by an identifier of their holder, across every record.
    pub(crate) fn grants_by_holder(
        &self,
        system: &str,
        value: &str,
    ) -> Result<Vec<Grant>, AppError> {
        let pairs = [
            ("actor:identifier".to_owned(), format!("{system}|{value}")),
            ("_count".to_owned(), "1000".to_owned()),
        ];
        let query: SearchQuery = hale_fhir::search::parse(self.defs, "Consent", &pairs, true)
            .map_err(|i| AppError::Internal(i.message))?;
        Ok(self
            .store
            .search(None, &query)?
            .matches
            .iter()
            .filter_map(|r| Grant::from_consent(&r.record, &r.value()?))
            .collect())
    }

    /// The grants of the person's own record, newest first (the owner only).
    pub fn grants_of_record(&self, ctx: &RequestContext) -> Result<Vec<Grant>, AppError> {
        let record = self.owner_record(ctx)?;
        let pairs = [
            (
                "scope".to_owned(),
                format!("{SCOPE_SYSTEM}|patient-privacy"),
            ),
            ("_count".to_owned(), "1000".to_owned()),
        ];
        let query = hale_fhir::search::parse(self.defs, "Consent", &pairs, true)
            .map_err(|i| AppError::Internal(i.message))?;
        let mut grants: Vec<Grant> = self
            .store
            .search(Some(&record), &query)?
            .matches
            .iter()
            .filter_map(|r| Grant::from_consent(&r.record, &r.value()?))
            .collect();
        grants.sort_by_key(|g| std::cmp::Reverse(g.given_at));
        Ok(grants)
    }

    /// The record of the person themselves (not a grantee's, not a system's): grants and
    /// security settings are theirs alone.
    pub(crate) fn owner_record(&self, ctx: &RequestContext) -> Result<RecordId, AppError> {
        match &ctx.actor {
            Actor::Record { record, .. } if ctx.strength == AuthStrength::TwoFactor => {
                Ok(record.clone())
            }
            _ => Err(AppError::Forbidden(
                "only the person can change who has access to their record".into(),
            )),
        }
    }

    /// What is wrong with a new grant, if anything.
    pub fn grant_problems(&self, new: &NewGrant) -> Vec<GrantProblem> {
        let now = hale_fhir::date::now_millis();
        let mut problems = Vec::new();
        let name = new.name.trim();
        // An organisation is named by the registry, and reached without an invitation.
        if new.role != Role::Organisation {
            if name.is_empty() || name.chars().count() > 100 {
                problems.push(GrantProblem::NameMissing);
            }
            if crate::accounts::normalise_email(&new.email).is_none() {
                problems.push(GrantProblem::EmailInvalid);
            }
        }
        if new.labels.is_empty() {
            problems.push(GrantProblem::NothingChosen);
        }
        if new
            .types
            .iter()
            .any(|t| !self.defs.is_resource_type(t) || self.defs.is_definitional(t))
        {
            problems.push(GrantProblem::UnknownType);
        }
        if new.end.is_some_and(|e| e <= new.start || e <= now) {
            problems.push(GrantProblem::DatesWrong);
        }
        problems
    }

    /// Gives access: writes the grant as invited and emails the invitation, with a link to
    /// `link_base` + `/shared-with-me/accept?token=…`. Returns the grant.
    pub fn give_access(
        &self,
        ctx: &RequestContext,
        new: &NewGrant,
        link_base: &str,
    ) -> Result<Result<Grant, Vec<GrantProblem>>, AppError> {
        let record = self.owner_record(ctx)?;
        let identity = self.identity()?;
        let now = hale_fhir::date::now_millis();
        let problems = self.grant_problems(new);
        let name = new.name.trim();
        let email = crate::accounts::normalise_email(&new.email);
        let Some(email) = email.filter(|_| problems.is_empty()) else {
            return Ok(Err(problems));
        };
        let token = hale_auth::secret::random_token();
        let person = self.person_name(&record)?;
        let mut labels = new.labels.clone();
        labels.sort();
        labels.dedup();
        let grant = Grant {
            id: ResourceId::generate().to_string(),
            record: record.clone(),
            holder: Holder::Invitation(hale_auth::secret::digest(&token)),
            name: name.to_owned(),
            person,
            role: new.role,
            labels,
            types: new.types.clone(),
            write: new.write,
            start: new.start,
            end: new.end,
            status: Status::Invited,
            given_at: now,
            passcode_hash: None,
        };
        self.write_grant(ctx, &grant, Expect::Absent, "give-access")?;
        let link = format!("{link_base}/shared-with-me/accept?token={token}");
        let body = format!(
            "Someone has shared their health record with you on Hale, and asked for you to be able to see it.\n\n\
             To accept, sign in to Hale (or create an account) and follow this link within 14 days:\n\n{link}\n\n\
             If you were not expecting this, you can ignore this email."
        );
        if identity
            .mailer
            .send(&email, "A health record has been shared with you", &body)
            .is_err()
        {
            tracing::warn!("the invitation email could not be sent");
        }
        Ok(Ok(grant))
    }

    /// Gives a registered organisation access (its systems reach the record through SMART
    /// Backend Services, within the grant): in force at once, with no invitation, since the
    /// organisation is known to the operator. The person is emailed a notice all the same,
    /// so that access given by someone else in their account does not go unseen.
    pub fn give_access_to_organisation(
        &self,
        ctx: &RequestContext,
        org_id: &str,
        new: &NewGrant,
    ) -> Result<Result<Grant, Vec<GrantProblem>>, AppError> {
        let record = self.owner_record(ctx)?;
        let mut problems = self.grant_problems(&NewGrant {
            role: Role::Organisation,
            ..new.clone()
        });
        let org = self
            .store
            .organisations()?
            .into_iter()
            .find(|o| o.org_id == org_id);
        if org.is_none() {
            problems.push(GrantProblem::OrganisationUnknown);
        }
        let Some(org) = org.filter(|_| problems.is_empty()) else {
            return Ok(Err(problems));
        };
        let now = hale_fhir::date::now_millis();
        let mut labels = new.labels.clone();
        labels.sort();
        labels.dedup();
        let grant = Grant {
            id: ResourceId::generate().to_string(),
            record: record.clone(),
            holder: Holder::Organisation(org.org_id),
            name: org.name,
            person: self.person_name(&record)?,
            role: Role::Organisation,
            labels,
            types: new.types.clone(),
            write: new.write,
            start: new.start,
            end: new.end,
            status: Status::Active,
            given_at: now,
            passcode_hash: None,
        };
        self.write_grant(ctx, &grant, Expect::Absent, "give-access")?;
        self.tell_owners(
            &record,
            "An organisation now has access to your record",
            "An organisation's systems can now see the parts of your Hale record that were chosen.\n\n\
             You can see who has access, and take it back at any time, on the Sharing page of your record. \
             If you did not do this, take the access back and change your password.",
        )?;
        Ok(Ok(grant))
    }

    /// The name on the record's own Patient, or nothing.
    fn person_name(&self, record: &RecordId) -> Result<String, AppError> {
        Ok(self
            .store
            .read(Some(record), "Patient", record.as_str())?
            .and_then(|p| p.value())
            .and_then(|p| patient_name(&p))
            .unwrap_or_default())
    }

    /// Emails every account of the record a notice (never health content).
    fn tell_owners(&self, record: &RecordId, subject: &str, body: &str) -> Result<(), AppError> {
        let identity = self.identity()?;
        for owner in self.store.accounts_of_record(record)? {
            if identity.mailer.send(&owner.email, subject, body).is_err() {
                tracing::warn!("the access notice could not be sent");
            }
        }
        Ok(())
    }

    /// Takes access back at once (or withdraws an invitation not yet accepted).
    pub fn revoke_access(&self, ctx: &RequestContext, grant_id: &str) -> Result<(), AppError> {
        let record = self.owner_record(ctx)?;
        let mut grant = self
            .grant_by_id(&record, grant_id)?
            .ok_or_else(|| AppError::NotFound {
                resource_type: "Consent".into(),
                id: grant_id.into(),
            })?;
        if grant.status == Status::Revoked {
            return Ok(());
        }
        let now = hale_fhir::date::now_millis();
        grant.status = Status::Revoked;
        grant.end = Some(grant.end.map_or(now, |e| e.min(now)).max(grant.start));
        self.write_grant(ctx, &grant, Expect::Any, "revoke-access")
    }

    /// Accepts an emailed invitation for the signed-in account; the person is told by email
    /// (without any health content) that someone now has access.
    pub fn accept_invitation(&self, who: &SignedIn, token: &str) -> Result<Grant, AppError> {
        if who.strength() < AuthStrength::TwoFactor {
            return Err(AppError::Unauthenticated(
                "a second factor is needed before accepting access to a record".into(),
            ));
        }
        let invalid = || AppError::Forbidden("this invitation is not valid".into());
        let digest = hale_auth::secret::digest(token.trim());
        let now = hale_fhir::date::now_millis();
        let mut grant = self
            .grants_by_holder(INVITATION_SYSTEM, &digest)?
            .into_iter()
            .find(|g| g.status == Status::Invited && now < g.given_at + INVITATION_LIFETIME_MS)
            .ok_or_else(invalid)?;
        if who.account.record.as_ref() == Some(&grant.record) {
            return Err(AppError::Forbidden(
                "this is your own record: you have access already".into(),
            ));
        }
        grant.holder = Holder::Account(who.account.id.clone());
        grant.status = Status::Active;
        let ctx = RequestContext::operator(
            Actor::Grantee {
                record: grant.record.clone(),
                grant: grant.id.clone(),
                scopes: Scopes::parse("patient/*.rs")
                    .map_err(|e| AppError::Internal(e.to_string()))?,
                subject: format!("account:{}", who.account.id),
                app: None,
            },
            "accept-invitation",
        );
        self.write_grant(&ctx, &grant, Expect::Any, "accept-access")?;
        self.tell_owners(
            &grant.record,
            "Someone now has access to your record",
            "Someone you invited has accepted, and can now see the parts of your Hale record you chose.\n\n\
             You can see who has access, and take it back at any time, on the Sharing page of your record. \
             If you did not expect this, take the access back and change your password.",
        )?;
        Ok(grant)
    }

    /// The grants in force now that name an organisation, across every record.
    pub(crate) fn grants_of_organisation(&self, org: &str) -> Result<Vec<Grant>, AppError> {
        let now = hale_fhir::date::now_millis();
        Ok(self
            .grants_by_holder(ORGANISATION_SYSTEM, org)?
            .into_iter()
            .filter(|g| g.in_force(now))
            .collect())
    }

    /// The grants the signed-in account holds in others' records and that are in force now.
    pub fn grants_held(&self, who: &SignedIn) -> Result<Vec<Grant>, AppError> {
        let now = hale_fhir::date::now_millis();
        Ok(self
            .grants_held_or_coming(who)?
            .into_iter()
            .filter(|g| g.in_force(now))
            .collect())
    }

    /// The grants the signed-in account holds that are in force now or will be (accepted,
    /// starting on a later date), for the list of records shared with them.
    pub fn grants_held_or_coming(&self, who: &SignedIn) -> Result<Vec<Grant>, AppError> {
        let now = hale_fhir::date::now_millis();
        let mut held = self.grants_by_holder(ACCOUNT_SYSTEM, &who.account.id)?;
        // A professional also reaches what people gave the organisation they work for.
        if let Some(org) = &who.account.org {
            held.extend(self.grants_by_holder(ORGANISATION_SYSTEM, org)?);
        }
        Ok(held
            .into_iter()
            .filter(|g| g.status == Status::Active && g.end.is_none_or(|e| now < e))
            .collect())
    }

    /// The actor subject of `who` acting under `grant`: their account, or for a grant to
    /// their organisation, their account at it (`account:ID@org:ORG`), which the audit log
    /// keeps so "Who has looked" can say where they work.
    fn subject_under(who: &SignedIn, grant: &Grant) -> String {
        match &grant.holder {
            Holder::Organisation(org) => format!("account:{}@org:{org}", who.account.id),
            _ => format!("account:{}", who.account.id),
        }
    }

    /// Whether `subject` holds `grant`: its holder, or a professional of the organisation
    /// holding it (checked against their account now, so leaving the organisation ends it).
    pub(crate) fn holds(&self, grant: &Grant, subject: &str) -> Result<bool, AppError> {
        if grant.holder_subject().as_deref() == Some(subject) {
            return Ok(true);
        }
        let Holder::Organisation(org) = &grant.holder else {
            return Ok(false);
        };
        let Some((account, at)) = subject
            .strip_prefix("account:")
            .and_then(|s| s.split_once("@org:"))
        else {
            return Ok(false);
        };
        Ok(at == org
            && self
                .store
                .account(account)?
                .is_some_and(|a| a.org.as_deref() == Some(org.as_str())))
    }

    /// Makes an account one of an organisation's professionals (operator use): they then
    /// reach the records that gave the organisation access, as it was given.
    pub fn add_organisation_member(&self, org_id: &str, email: &str) -> Result<(), AppError> {
        self.set_organisation(Some(org_id), email)
    }

    /// Takes an account out of its organisation (operator use): from its next request, it
    /// reaches nothing the organisation was given.
    pub fn remove_organisation_member(&self, email: &str) -> Result<(), AppError> {
        self.set_organisation(None, email)
    }

    fn set_organisation(&self, org: Option<&str>, email: &str) -> Result<(), AppError> {
        if let Some(org_id) = org
            && !self
                .store
                .organisations()?
                .iter()
                .any(|o| o.org_id == org_id)
        {
            return Err(AppError::bad_request(
                "org",
                "no organisation has that id: create it first with hale admin org create",
            ));
        }
        let email = crate::accounts::normalise_email(email).unwrap_or_default();
        let mut account = self.store.account_by_email(&email)?.ok_or_else(|| {
            AppError::bad_request(
                "email",
                "no account has that email address: they sign up first",
            )
        })?;
        account.org = org.map(str::to_owned);
        if org.is_some() && account.kind == hale_core::AccountKind::Proxy {
            account.kind = hale_core::AccountKind::Professional;
        }
        self.store.write(WriteBatch {
            ops: vec![WriteOp::PutAccount(account)],
        })?;
        Ok(())
    }

    /// The context in which a signed-in account acts for someone under a grant: checked now
    /// and again on every request made with it.
    pub fn grantee_context(
        &self,
        who: &SignedIn,
        grant_id: &str,
        request_id: &str,
    ) -> Result<RequestContext, AppError> {
        if who.strength() < AuthStrength::TwoFactor {
            return Err(AppError::Unauthenticated(
                "a second factor is needed before health data is shown".into(),
            ));
        }
        let now = hale_fhir::date::now_millis();
        let grant = self
            .grants_held(who)?
            .into_iter()
            .find(|g| g.id == grant_id && g.in_force(now))
            .ok_or_else(|| AppError::Unauthenticated("this access has ended".into()))?;
        Ok(RequestContext {
            actor: Actor::Grantee {
                subject: Self::subject_under(who, &grant),
                record: grant.record,
                grant: grant.id,
                scopes: Scopes::parse("patient/*.cruds")
                    .map_err(|e| AppError::Internal(e.to_string()))?,
                app: None,
            },
            verification: who.account.verification_level,
            strength: who.strength(),
            request_id: request_id.to_owned(),
        })
    }

    /// The grant the request's actor acts under, checked as for any request (`None` for the
    /// person, their apps, and systems).
    pub fn acting_grant(&self, ctx: &RequestContext) -> Result<Option<Grant>, AppError> {
        Ok(self.access(ctx)?.grant().cloned())
    }

    /// A bearer token for the holder of a grant (for the FHIR API; the OAuth server will issue
    /// these to apps a grantee uses). Every request made with it checks the grant again.
    pub fn issue_grant_token(
        &self,
        record: &RecordId,
        grant_id: &str,
        scope: &str,
        ttl_secs: i64,
    ) -> Result<String, AppError> {
        let grant = self
            .grant_by_id(record, grant_id)?
            .ok_or_else(|| AppError::NotFound {
                resource_type: "Consent".into(),
                id: grant_id.into(),
            })?;
        let subject = grant
            .holder_subject()
            .ok_or_else(|| AppError::Forbidden("the invitation has not been accepted".into()))?;
        let scopes =
            Scopes::parse(scope).map_err(|e| AppError::bad_request("scope", e.to_string()))?;
        let now = hale_fhir::date::now_millis() / 1000;
        self.tokens.sign(&crate::Claims {
            sub: subject,
            rec: Some(grant.record.to_string()),
            grt: Some(grant.id),
            app: None,
            org: None,
            lvl: None,
            scope: scopes.as_str().to_owned(),
            iat: now,
            exp: now + ttl_secs.max(1),
        })
    }

    /// Writes a grant's Consent and its audit entry in one transaction.
    pub(crate) fn write_grant(
        &self,
        ctx: &RequestContext,
        grant: &Grant,
        expect: Expect,
        action: &str,
    ) -> Result<(), AppError> {
        let mut body = grant.to_consent();
        crate::tag_entered_by(&mut body, true);
        crate::labels::label_on_write(&mut body, true, None);
        self.check_content("Consent", &body)?;
        let index = hale_fhir::index::extract(self.defs, "Consent", &body);
        let entry = self.audit_entry(ctx, &grant.record, action, format!("Consent/{}", grant.id));
        self.store.write(WriteBatch {
            ops: vec![
                WriteOp::Put {
                    record: grant.record.clone(),
                    resource_type: "Consent".into(),
                    id: grant.id.clone(),
                    expect,
                    resource: body,
                    index,
                },
                WriteOp::Audit(entry),
            ],
        })?;
        Ok(())
    }
}

/// The grant of a stored Consent, if it is one.
pub fn grant_of(r: &StoredResource) -> Option<Grant> {
    Grant::from_consent(&r.record, &r.value()?)
}

/// A Patient's name for people: its text, or given names and family name.
pub fn patient_name(p: &Value) -> Option<String> {
    let name = p["name"].as_array()?.first()?;
    if let Some(text) = name["text"].as_str() {
        return Some(text.to_owned());
    }
    let mut parts: Vec<&str> = name["given"]
        .as_array()
        .map(|g| g.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    parts.extend(name["family"].as_str());
    (!parts.is_empty()).then(|| parts.join(" "))
}
