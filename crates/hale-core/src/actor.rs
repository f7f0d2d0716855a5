//! Who is making a request, and in which record's context.

use crate::{AuthStrength, Interaction, RecordId, Scopes, VerificationLevel};

/// The authenticated party behind a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A token bound to exactly one record (a person, or an app acting for them).
    Record {
        /// The only record this actor can reach.
        record: RecordId,
        /// What it may do there.
        scopes: Scopes,
        /// Who the token was issued to (an account or client id), for audit.
        subject: String,
    },
    /// Someone the person has given access to (a carer, a relative, a professional), acting
    /// for them within one grant. The grant is looked up on every request, so taking it back
    /// ends this actor's access at once.
    Grantee {
        /// The record the grant is in: the only one this actor can reach.
        record: RecordId,
        /// The grant (a `Consent` in that record) they act under.
        grant: String,
        /// What the session or token may do, before the grant narrows it.
        scopes: Scopes,
        /// The grantee's account, for audit.
        subject: String,
        /// The app acting for them (an OAuth client id), if any.
        app: Option<String>,
    },
    /// A health or care organisation's system (SMART Backend Services): reaches only the
    /// records whose person gave that organisation access, each within its grant. The grants
    /// are looked up on every request, so taking one back ends the access at once.
    Organisation {
        /// The organisation.
        org: String,
        /// What its token may do, before each grant narrows it.
        scopes: Scopes,
        /// The client (the organisation's system) that holds the token, for audit.
        subject: String,
    },
    /// An operator, or the operator's own tools: can create records and write into any.
    System {
        /// What it may do.
        scopes: Scopes,
        /// The client id, for audit.
        subject: String,
    },
}

impl Actor {
    /// The record this actor is confined to, if any.
    pub fn record(&self) -> Option<&RecordId> {
        match self {
            Actor::Record { record, .. } | Actor::Grantee { record, .. } => Some(record),
            Actor::Organisation { .. } | Actor::System { .. } => None,
        }
    }

    /// Whether the actor's scopes allow `interaction` on `resource_type`.
    pub fn allows(&self, resource_type: &str, interaction: Interaction) -> bool {
        match self {
            Actor::Record { scopes, .. }
            | Actor::Grantee { scopes, .. }
            | Actor::Organisation { scopes, .. }
            | Actor::System { scopes, .. } => scopes.allows(resource_type, interaction),
        }
    }

    /// The grant this actor acts under, if it is someone acting for the person.
    pub fn grant(&self) -> Option<&str> {
        match self {
            Actor::Grantee { grant, .. } => Some(grant),
            _ => None,
        }
    }

    /// The app (OAuth client) acting, if any.
    pub fn app(&self) -> Option<&str> {
        match self {
            Actor::Grantee { app, .. } => app.as_deref(),
            Actor::Organisation { subject, .. } => Some(subject),
            _ => None,
        }
    }

    /// Who this is, for audit: an account or client id, never a name.
    pub fn subject(&self) -> &str {
        match self {
            Actor::Record { subject, .. }
            | Actor::Grantee { subject, .. }
            | Actor::Organisation { subject, .. }
            | Actor::System { subject, .. } => subject,
        }
    }
}

/// Everything the application layer needs to know about one request.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// Who is asking.
    pub actor: Actor,
    /// How sure we are who the person behind it is (NHS login's P0/P5/P9). Below P9, a
    /// person sees only what they wrote themselves, not what came from health and care
    /// sources.
    pub verification: VerificationLevel,
    /// How strongly they signed in.
    pub strength: AuthStrength,
    /// Correlates log lines and error pages; carries no personal data.
    pub request_id: String,
}

impl RequestContext {
    /// A context for an operator's or system's own work (the CLI, imports): the operator
    /// vouches for the request, as it does for the bearer tokens it issues.
    pub fn operator(actor: Actor, request_id: &str) -> Self {
        Self {
            actor,
            verification: VerificationLevel::P9,
            strength: AuthStrength::TwoFactor,
            request_id: request_id.to_owned(),
        }
    }
}
