//! The values that cross the storage boundary.

use hale_core::RecordId;

use crate::accounts::{Account, OneTimeToken, Session};
use hale_fhir::index::IndexEntry;
use serde_json::Value;
use serde_json::value::RawValue;

/// How a version came to be (for history bundles' `request.method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// First version.
    Create,
    /// A later version.
    Update,
    /// A deletion marker.
    Delete,
}

impl Method {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Create => "create",
            Method::Update => "update",
            Method::Delete => "delete",
        }
    }

    /// From storage.
    pub fn parse(s: &str) -> Method {
        match s {
            "create" => Method::Create,
            "delete" => Method::Delete,
            _ => Method::Update,
        }
    }
}

/// One version of a resource, as stored.
#[derive(Debug, Clone)]
pub struct StoredResource {
    /// The record it belongs to.
    pub record: RecordId,
    /// Its type.
    pub resource_type: String,
    /// Its id.
    pub id: String,
    /// Its version (1, 2, …).
    pub version: i64,
    /// When this version was written, ms since the epoch.
    pub last_updated: i64,
    /// How this version came to be.
    pub method: Method,
    /// The content, with `id` and `meta.versionId`/`meta.lastUpdated` set; `None` if deleted.
    /// Kept as the stored JSON text, so answers are written out without being re-parsed.
    pub resource: Option<Box<RawValue>>,
}

impl StoredResource {
    /// The content parsed, for code that looks inside it.
    pub fn value(&self) -> Option<Value> {
        self.resource
            .as_ref()
            .and_then(|r| serde_json::from_str(r.get()).ok())
    }
}

/// What a write expects of the current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Must not exist yet (create with a server-assigned or client id).
    Absent,
    /// Must exist at this version (`If-Match`).
    Version(i64),
    /// Whatever is there (update, create-on-update, delete).
    Any,
}

/// One change in a batch.
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// Appends an entry to the audit log, in the same transaction as the rest of the batch.
    Audit(crate::AuditEntry),
    /// Appends entries in order, reading and signing the log's head once for all of them
    /// (the reads of a second are thousands of entries).
    AuditAll(Vec<crate::AuditEntry>),
    /// Signs a checkpoint at the audit log's current head.
    AuditCheckpoint,
    /// Creates a record (and its key). Idempotent for an existing record is an error.
    CreateRecord {
        /// The new record.
        record: RecordId,
    },
    /// Writes a new version of a resource with its index entries.
    Put {
        /// The record it belongs to.
        record: RecordId,
        /// Its type.
        resource_type: String,
        /// Its id.
        id: String,
        /// The precondition.
        expect: Expect,
        /// The content; the store sets `id`, `meta.versionId` and `meta.lastUpdated`.
        resource: Value,
        /// Its search-index entries.
        index: Vec<IndexEntry>,
    },
    /// Stores samples into a record; duplicates (same metric, source, times and value) are
    /// stored once. The outcome for this op is `None`; the count of new rows is in
    /// [`WriteOutcome::samples_added`].
    Samples {
        /// The record they belong to.
        record: RecordId,
        /// The rows.
        rows: Vec<SampleRow>,
    },
    /// Inserts or replaces an account.
    PutAccount(Account),
    /// Inserts or replaces a sign-in session.
    PutSession(Session),
    /// Ends one session of an account (`only`: its key hash) or all of them.
    EndSessions {
        /// Whose.
        account_id: String,
        /// One session, or `None` for every session ("sign out everywhere").
        only: Option<String>,
    },
    /// Stores a one-time token (an emailed link).
    PutToken(OneTimeToken),
    /// Spends a one-time token; fails with [`StoreError::Spent`](crate::StoreError::Spent)
    /// if it is used, expired or unknown, and so rolls back the rest of the batch.
    UseToken {
        /// SHA-256 of the token, hex.
        token_hash: String,
    },
    /// Registers (or updates) an OAuth client.
    PutClient(crate::OAuthClient),
    /// Adds a passkey, or records its use (new counter, last used).
    PutPasskey(crate::StoredPasskey),
    /// Removes one of an account's passkeys.
    DeletePasskey {
        /// Whose.
        account_id: String,
        /// Which.
        credential_id: String,
    },
    /// Links (or updates) a person's identity at an OpenID provider to their account.
    PutIdentity(crate::AccountIdentity),
    /// Registers (or renames) an organisation.
    PutOrganisation(crate::Organisation),
    /// Accepts a client assertion once: fails with `Spent` if the client used this `jti`
    /// before, and so rolls back the rest of the batch.
    UseAssertion {
        /// The client.
        client_id: String,
        /// The assertion's id.
        jti: String,
        /// When the assertion expires (it is remembered until then), ms.
        expires_at: i64,
    },
    /// Stores an authorisation code or refresh token (its digest).
    PutOAuthToken(crate::OAuthToken),
    /// Spends a code or refresh token; fails with `Spent` if it is used, expired or unknown,
    /// and so rolls back the rest of the batch.
    UseOAuthToken {
        /// SHA-256 of the token, hex.
        token_hash: String,
    },
    /// Replaces an account's recovery codes (digests).
    SetRecoveryCodes {
        /// Whose.
        account_id: String,
        /// SHA-256 digests, hex.
        hashes: Vec<String>,
    },
    /// Spends one recovery code; fails with `Spent` if it is not there.
    UseRecoveryCode {
        /// Whose.
        account_id: String,
        /// SHA-256 of the code, hex.
        hash: String,
    },
    /// Marks a resource deleted (a new version without content); absent is not an error.
    Delete {
        /// The record it belongs to.
        record: RecordId,
        /// Its type.
        resource_type: String,
        /// Its id.
        id: String,
        /// The precondition.
        expect: Expect,
    },
    /// Erases a record for good (the right to erasure): every resource with all its versions
    /// and index entries, its samples, the authorisation codes and tokens that reach it, the
    /// accounts whose record it is (as [`WriteOp::DeleteAccount`]), and its key. Destroying
    /// the key is what makes a copy left behind (a backup, an old WAL frame) unreadable. The
    /// audit log keeps its entries: they name resources and actions, never content. Fails
    /// with [`StoreError::NoRecord`](crate::StoreError::NoRecord) if there is no such record.
    EraseRecord {
        /// The record.
        record: RecordId,
    },
    /// Deletes an account with its sessions, emailed links, recovery codes, passkeys, linked
    /// identities and OAuth tokens. Absent is not an error.
    DeleteAccount {
        /// Whose.
        account_id: String,
    },
    /// Counts a failed attempt against each key: past its free failures, each further one
    /// doubles a wait (1 s, 2 s, 4 s, … up to `max_wait_ms`) before the key may try again.
    /// Counts untouched for `forget_after_ms` start again from nothing.
    LimitFailed {
        /// Key digests, each with the failures it may make before waits begin.
        keys: Vec<(String, i64)>,
        /// The longest wait, ms.
        max_wait_ms: i64,
        /// How long an idle count is kept, ms.
        forget_after_ms: i64,
    },
    /// Clears a key's failures (after a success).
    LimitCleared {
        /// The key digest.
        key: String,
    },
}

/// One wearable sample for storage.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRow {
    /// The metric's stable id (`heart_rate`).
    pub metric: String,
    /// The app or device that recorded it.
    pub source: String,
    /// Start, ms since the epoch.
    pub start: i64,
    /// End, ms since the epoch.
    pub end: i64,
    /// The value in the metric's canonical unit.
    pub value: f64,
}

/// One bucket of a metric's samples over time.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleBucket {
    /// The bucket's start, ms since the epoch.
    pub start: i64,
    /// How many samples.
    pub count: i64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Mean value.
    pub mean: f64,
}

/// Changes applied together, atomically.
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    /// In order.
    pub ops: Vec<WriteOp>,
}

/// What a batch did: one entry per op (`None` for `CreateRecord`, and for a `Delete` of
/// something absent).
#[derive(Debug, Clone, Default)]
pub struct WriteOutcome {
    /// Per op.
    pub results: Vec<Option<StoredResource>>,
    /// Samples newly stored by `Samples` ops (duplicates not counted).
    pub samples_added: u64,
}

/// Which history to list.
#[derive(Debug, Clone)]
pub struct HistoryQuery {
    /// The type, or all types.
    pub resource_type: Option<String>,
    /// One resource's id (needs `resource_type`).
    pub id: Option<String>,
    /// Only versions written at or after this instant (ms).
    pub since: Option<i64>,
    /// At most this many.
    pub count: usize,
}

/// A page of search results.
#[derive(Debug, Clone, Default)]
pub struct SearchPage {
    /// The matches on this page, in order.
    pub matches: Vec<StoredResource>,
    /// `_include`d and `_revinclude`d resources (no duplicates, none that is also a match).
    pub included: Vec<StoredResource>,
    /// The total number of matches, when asked for.
    pub total: Option<i64>,
}
