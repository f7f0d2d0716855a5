//! Hale's use cases. The only place that decides access (scopes, record confinement) and,
//! as the consent and audit work lands, the only place that writes audit.
//!
//! Handlers parse a request, call one [`App`] method with a [`RequestContext`], and render
//! what comes back. `App` never sees HTTP; it sees FHIR JSON and the actor.
//!
//! ```no_run
//! # fn demo(app: &hale_app::App, ctx: &hale_core::RequestContext) -> Result<(), hale_app::AppError> {
//! let patient = app.read(ctx, "Patient", "example")?;
//! # Ok(()) }
//! ```

pub mod access;
pub mod accounts;
mod audit;
pub mod backend;
pub mod daily;
pub mod demo;
mod error;
pub mod grants;
mod import;
pub mod journal;
pub mod labels;
pub mod oauth;
pub mod oidc;
pub mod passkeys;

mod placement;
pub mod readings;
mod resources;
pub mod share_links;
pub mod throttle;
pub mod token;
mod transaction;
pub mod uploads;

use std::sync::Arc;

use hale_core::{Interaction, RecordId, RequestContext, ResourceId};
use hale_fhir::Definitions;
use hale_store::{Expect, Store, WriteBatch, WriteOp};
use serde_json::{Value, json};

pub use error::AppError;
pub use hale_import::{Metric, metrics};
pub use hale_store::{Method, SearchPage, StoredAuditEntry, StoredResource};
pub use import::ImportSummary;
pub use resources::export_bundle;
pub use token::{Claims, TokenKey};
pub use transaction::{BundleKind, EntryResult, EntryStatus, parse_etag};

/// The most resources one bundle may carry.
pub const MAX_BUNDLE_ENTRIES: usize = 1000;

/// The application: storage, definitions and the token key, shared by every request.
pub struct App {
    store: Arc<dyn Store>,
    defs: &'static Definitions,
    tokens: TokenKey,
    identity: Option<accounts::Identity>,
    oidc: Option<oidc::Oidc>,
    id_token_key: Option<oidc::SigningKey>,
    /// Set once the public address is known (at `serve`).
    passkeys: std::sync::OnceLock<passkeys::Passkeys>,
    uploads: Option<uploads::Uploads>,
    audit_queue: std::sync::Arc<audit::AuditQueue>,
    audit_writer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for App {
    /// Reads still queued for the audit log are written before the app goes (a command
    /// ending, a server stopping).
    fn drop(&mut self) {
        if let Err(e) = self.flush_audit() {
            tracing::error!(error = %e, "audit entries of the last reads could not be written");
        }
        audit::stop_audit_writer(&self.audit_queue, self.audit_writer.take());
    }
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").finish_non_exhaustive()
    }
}

/// The outcome of a create or update: the version written, and whether it was new.
#[derive(Debug, Clone)]
pub struct Written {
    /// What is now stored.
    pub resource: StoredResource,
    /// `true` for 201 Created, `false` for 200 OK (an update, or a conditional create that
    /// found an existing match).
    pub created: bool,
}

fn now_secs() -> i64 {
    hale_fhir::date::now_millis() / 1000
}

impl App {
    /// An application over `store`, signing tokens with `tokens`.
    pub fn new(store: Arc<dyn Store>, tokens: TokenKey) -> Self {
        let audit_queue = Arc::new(audit::AuditQueue::default());
        let audit_writer = audit::start_audit_writer(Arc::clone(&store), Arc::clone(&audit_queue));
        Self {
            audit_queue,
            audit_writer,
            store,
            defs: Definitions::r4(),
            tokens,
            identity: None,
            oidc: None,
            id_token_key: None,
            passkeys: std::sync::OnceLock::new(),
            uploads: None,
        }
    }

    /// Turns on imports uploaded through the web app, kept sealed in `dir` until imported.
    pub fn with_uploads(
        mut self,
        dir: std::path::PathBuf,
        key: hale_auth::secret::SealKey,
    ) -> Self {
        self.uploads = Some(uploads::Uploads::new(dir, key));
        self
    }

    /// Turns on accounts and sign-in: `seal` protects TOTP secrets, `mailer` sends the
    /// verification and notice emails.
    pub fn with_identity(
        mut self,
        seal: hale_auth::secret::SealKey,
        mailer: Box<dyn accounts::Mailer>,
    ) -> Self {
        let throttle = throttle::Throttle::new(Arc::clone(&self.store), seal.clone());
        self.identity = Some(accounts::Identity {
            seal,
            mailer,
            throttle,
            reauth_window_ms: accounts::REAUTH_WINDOW_MS,
        });
        self
    }

    /// Turns on ID tokens for apps that ask for `openid`, signed with a key made from
    /// `seed`.
    pub fn with_id_tokens(mut self, seed: &[u8; 32]) -> Result<Self, AppError> {
        self.id_token_key = Some(oidc::SigningKey::new(seed, "hale-id-1")?);
        Ok(self)
    }

    /// The public keys apps check Hale's ID tokens with (`/.well-known/jwks.json`).
    pub fn id_token_keys(&self) -> serde_json::Value {
        serde_json::json!({"keys": self.id_token_key.iter().map(|k| k.public_jwk().clone()).collect::<Vec<_>>()})
    }

    /// Turns on sign-in through an OpenID Connect provider (NHS login, or another).
    pub fn with_oidc(mut self, settings: oidc::OidcSettings) -> Result<Self, AppError> {
        self.oidc = Some(oidc::Oidc::new(settings)?);
        Ok(self)
    }

    /// Sets how long a second factor counts as recent for sensitive actions (changing the
    /// password or the authenticator, new recovery codes); 0 asks every time.
    pub fn with_reauth_window(mut self, secs: i64) -> Self {
        if let Some(identity) = self.identity.as_mut() {
            identity.reauth_window_ms = secs.max(0) * 1000;
        }
        self
    }

    /// Whether single-resource reads may run on the request's own task (see
    /// [`Store::inline_reads`]).
    pub fn inline_reads(&self) -> bool {
        self.store.inline_reads()
    }

    /// The FHIR definitions in use.
    pub fn definitions(&self) -> &'static Definitions {
        self.defs
    }

    /// Turns an `Authorization` header into the request's context: signature and expiry only,
    /// no I/O, so it runs on the request's own task (a grant behind the token is checked when
    /// data is touched). A token for a record that has since gone simply finds nothing there.
    /// A token issued to an app for a person carries the person's verification level; one an
    /// operator issued is vouched for by the operator.
    pub fn authenticate(
        &self,
        authorization: Option<&str>,
        request_id: &str,
    ) -> Result<RequestContext, AppError> {
        let header = authorization.ok_or_else(|| {
            AppError::Unauthenticated("send Authorization: Bearer <token>".into())
        })?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| AppError::Unauthenticated("only Bearer tokens are accepted".into()))?;
        let (actor, level) = self.tokens.verify(token.trim(), now_secs())?;
        let mut ctx = RequestContext::operator(actor, request_id);
        if let Some(level) = level {
            ctx.verification = level;
        }
        Ok(ctx)
    }

    /// Issues a bearer token: for one record (`Some`), or a system token (`None`, which needs
    /// `system/` scopes).
    pub fn issue_token(
        &self,
        subject: &str,
        record: Option<&RecordId>,
        scope: &str,
        ttl_secs: i64,
    ) -> Result<String, AppError> {
        let scopes = hale_core::Scopes::parse(scope)
            .map_err(|e| AppError::bad_request("scope", e.to_string()))?;
        match record {
            Some(r) if !self.store.record_exists(r)? => {
                return Err(AppError::NotFound {
                    resource_type: "Patient".into(),
                    id: r.to_string(),
                });
            }
            None if !scopes.has_system_level() => {
                return Err(AppError::bad_request(
                    "scope",
                    "a system token needs system/ scopes",
                ));
            }
            _ => {}
        }
        if ttl_secs <= 0 {
            return Err(AppError::bad_request(
                "ttl",
                "the lifetime must be positive",
            ));
        }
        let now = now_secs();
        self.tokens.sign(&Claims {
            sub: subject.to_owned(),
            rec: record.map(|r| r.to_string()),
            grt: None,
            app: None,
            org: None,
            lvl: None,
            scope: scopes.as_str().to_owned(),
            iat: now,
            exp: now + ttl_secs,
        })
    }

    /// Creates a new record for a person (operator use). Returns the record id.
    pub fn create_person(
        &self,
        name: &str,
        email: Option<&str>,
        nhs_number: Option<&str>,
    ) -> Result<RecordId, AppError> {
        let id = ResourceId::generate();
        let mut patient = json!({"resourceType": "Patient", "id": id.as_str(), "active": true,
            "name": [{"use": "usual", "text": name}]});
        if let Some(email) = email {
            patient["telecom"] = json!([{"system": "email", "value": email}]);
        }
        if let Some(n) = nhs_number {
            patient["identifier"] =
                json!([{"system": hale_fhir::nhs_number::SYSTEM, "value": n.replace(' ', "")}]);
        }
        self.check_content("Patient", &patient)?;
        let record = RecordId::of_patient(&id);
        let index = hale_fhir::index::extract(self.defs, "Patient", &patient);
        self.store.write(WriteBatch {
            ops: vec![
                WriteOp::CreateRecord {
                    record: record.clone(),
                },
                WriteOp::Put {
                    record: record.clone(),
                    resource_type: "Patient".into(),
                    id: id.to_string(),
                    expect: Expect::Absent,
                    resource: patient,
                    index,
                },
            ],
        })?;
        Ok(record)
    }

    /// Checks that `rtype` names a record resource type the actor may act on.
    fn require(
        &self,
        ctx: &RequestContext,
        rtype: &str,
        interaction: Interaction,
    ) -> Result<(), AppError> {
        if !self.defs.is_resource_type(rtype) {
            return Err(AppError::NotSupported(format!(
                "'{rtype}' is not an R4 resource type"
            )));
        }
        if !ctx.actor.allows(rtype, interaction) {
            return Err(AppError::Forbidden(format!(
                "the token's scopes do not allow {interaction:?} on {rtype}"
            )));
        }
        Ok(())
    }

    /// The record scope of the actor: its record, or every record for a system actor.
    fn scope<'a>(&self, ctx: &'a RequestContext) -> Option<&'a RecordId> {
        ctx.actor.record()
    }

    /// Structure and definition checks common to every write and `$validate`.
    fn check_content(&self, rtype: &str, body: &Value) -> Result<(), AppError> {
        let Some(obj) = body.as_object() else {
            return Err(AppError::bad_request("", "the body must be a JSON object"));
        };
        match obj.get("resourceType").and_then(Value::as_str) {
            Some(t) if t == rtype => {}
            Some(_) => {
                return Err(AppError::bad_request(
                    "resourceType",
                    format!("resourceType must be {rtype}, as in the URL"),
                ));
            }
            None => {
                return Err(AppError::bad_request(
                    "resourceType",
                    "resourceType is missing",
                ));
            }
        }
        if depth(body) > hale_fhir::MAX_DEPTH {
            return Err(AppError::bad_request(
                "",
                format!("JSON nested deeper than {}", hale_fhir::MAX_DEPTH),
            ));
        }
        if self.defs.is_definitional(rtype) {
            return Err(AppError::unprocessable(
                rtype,
                format!(
                    "{rtype} is a definitional resource, not part of a person's record; Hale does not store it"
                ),
            ));
        }
        hale_fhir::validate(self.defs, body).map_err(AppError::Invalid)
    }

    /// `$validate`: the same checks as a write, without storing.
    pub fn validate(
        &self,
        ctx: &RequestContext,
        rtype: &str,
        body: &Value,
    ) -> Result<(), AppError> {
        let _ = ctx;
        if !self.defs.is_resource_type(rtype) {
            return Err(AppError::NotSupported(format!(
                "'{rtype}' is not an R4 resource type"
            )));
        }
        // Validation of a definitional resource is still useful; only storing is refused.
        let Some(obj) = body.as_object() else {
            return Err(AppError::bad_request("", "the body must be a JSON object"));
        };
        if obj.get("resourceType").and_then(Value::as_str) != Some(rtype) {
            return Err(AppError::bad_request(
                "resourceType",
                format!("resourceType must be {rtype}, as in the URL"),
            ));
        }
        if depth(body) > hale_fhir::MAX_DEPTH {
            return Err(AppError::bad_request(
                "",
                format!("JSON nested deeper than {}", hale_fhir::MAX_DEPTH),
            ));
        }
        hale_fhir::validate(self.defs, body).map_err(AppError::Invalid)
    }
}

/// The tag (FHIR `meta.tag`) the server puts on everything written by the person or an app
/// acting for them (a record-bound actor), and removes from everything else: what the
/// person entered, as opposed to what health and care sources wrote. Clients cannot set it.
pub const ENTERED_BY: (&str, &str) = ("urn:hale:entered-by", "person");

/// Whether a resource carries the [`ENTERED_BY`] tag.
pub fn entered_by_person(v: &Value) -> bool {
    v["meta"]["tag"].as_array().is_some_and(|tags| {
        tags.iter()
            .any(|t| t["system"] == ENTERED_BY.0 && t["code"] == ENTERED_BY.1)
    })
}

/// Sets or removes the [`ENTERED_BY`] tag on a resource about to be written.
pub(crate) fn tag_entered_by(body: &mut Value, by_person: bool) {
    let Some(obj) = body.as_object_mut() else {
        return;
    };
    let meta = obj
        .entry("meta")
        .or_insert_with(|| Value::Object(Default::default()));
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    let mut tags: Vec<Value> = meta
        .get("tag")
        .and_then(Value::as_array)
        .map(|t| {
            t.iter()
                .filter(|x| x["system"] != ENTERED_BY.0)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    if by_person {
        tags.push(json!({"system": ENTERED_BY.0, "code": ENTERED_BY.1}));
    }
    if tags.is_empty() {
        meta.remove("tag");
    } else {
        meta.insert("tag".into(), Value::Array(tags));
    }
    if meta.is_empty() {
        obj.remove("meta");
    }
}

/// The nesting depth of a JSON value.
fn depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(obj) => 1 + obj.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}
