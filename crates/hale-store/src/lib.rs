//! Hale's storage contract: the [`Store`] trait both backends implement, the search SQL they
//! share, per-record sealing of content, and the conformance suite they must both pass.
//!
//! Every row belongs to one record and the record id leads every key, so "all of this
//! person's data" is one range (export, erasure) and PostgreSQL can later shard by person.
//! A write is one [`WriteBatch`] applied in one durable transaction, index rows included; no
//! transaction handle ever leaves a backend crate.
//!
//! This crate decides nothing about access: callers pass the record scope they have already
//! been allowed, and the store confines every query to it.
//!
//! ```no_run
//! # fn demo(store: &dyn hale_store::Store) -> Result<(), hale_store::StoreError> {
//! use hale_core::RecordId;
//! let record = RecordId::parse("example")?;
//! let patient = store.read(Some(&record), "Patient", "example")?;
//! # Ok(()) }
//! ```

pub mod accounts;
pub mod audit;
pub mod conformance;
mod crypto;
pub mod engine;
mod error;
pub mod oauth;
pub mod sql;
mod types;

pub use accounts::{Account, AccountIdentity, OneTimeToken, Session, StoredPasskey};
pub use audit::{AuditEntry, Checkpoint, StoredAuditEntry, Verification};
pub use crypto::{Keyring, MasterKey};
pub use error::StoreError;
pub use oauth::{OAuthClient, OAuthToken, Organisation};
pub use types::{
    Expect, HistoryQuery, Method, SampleBucket, SampleRow, SearchPage, StoredResource, WriteBatch,
    WriteOp, WriteOutcome,
};

use hale_core::RecordId;
use hale_fhir::search::SearchQuery;

/// A storage backend. Object-safe: held as `Arc<dyn Store>`.
///
/// Every read takes `scope`: `Some(record)` confines it to that record; `None` (system
/// actors only, decided by the caller) reaches every record.
pub trait Store: Send + Sync {
    /// Applies a batch in one durable transaction: all of it, or none of it.
    fn write(&self, batch: WriteBatch) -> Result<WriteOutcome, StoreError>;

    /// The current version of a resource, including a deleted one (with no content).
    fn read(
        &self,
        scope: Option<&RecordId>,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<StoredResource>, StoreError>;

    /// A specific version of a resource.
    fn vread(
        &self,
        scope: Option<&RecordId>,
        resource_type: &str,
        id: &str,
        version: i64,
    ) -> Result<Option<StoredResource>, StoreError>;

    /// Versions, newest first.
    fn history(
        &self,
        scope: Option<&RecordId>,
        query: &HistoryQuery,
    ) -> Result<Vec<StoredResource>, StoreError>;

    /// Runs a parsed search.
    fn search(
        &self,
        scope: Option<&RecordId>,
        query: &SearchQuery,
    ) -> Result<SearchPage, StoreError>;

    /// Every current resource of a record (`$everything`, export).
    fn everything(&self, record: &RecordId) -> Result<Vec<StoredResource>, StoreError>;

    /// Whether a record exists.
    fn record_exists(&self, record: &RecordId) -> Result<bool, StoreError>;

    /// The number of current, non-deleted resources in a record, by type.
    fn count_by_type(&self, record: &RecordId) -> Result<Vec<(String, i64)>, StoreError>;

    /// Copies the database to `dest` (a consistent online backup, still encrypted).
    fn backup(&self, dest: &std::path::Path) -> Result<(), StoreError>;

    /// A metric's samples in a record between `from` and `to` (ms, start inclusive, end
    /// exclusive), in buckets of `bucket_ms`, oldest first.
    fn sample_buckets(
        &self,
        record: &RecordId,
        metric: &str,
        from: i64,
        to: i64,
        bucket_ms: i64,
    ) -> Result<Vec<SampleBucket>, StoreError>;

    /// A record's audit entries, newest first: at most `limit`, older than entry `before`.
    fn audit_of_record(
        &self,
        record: &RecordId,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<StoredAuditEntry>, StoreError>;

    /// Walks the whole audit chain and names the first entry that does not hold.
    fn audit_verify(&self) -> Result<Verification, StoreError>;

    /// Every signed checkpoint of the audit chain, oldest first (make one with
    /// [`WriteOp::AuditCheckpoint`]).
    fn audit_checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError>;

    /// The metrics a record holds samples of (ids from the metric table), in id order.
    fn sample_metrics(&self, record: &RecordId) -> Result<Vec<String>, StoreError>;

    /// How many samples a record holds.
    fn sample_count(&self, record: &RecordId) -> Result<i64, StoreError>;

    /// Until when (ms) the latest-blocked of these keys must wait before trying again; 0 if
    /// none is waiting (see [`WriteOp::LimitFailed`]).
    fn limit_blocked_until(&self, keys: &[String]) -> Result<i64, StoreError>;

    /// A page of a record's samples for taking away: series by series (metric, then source),
    /// each oldest first; at most `limit` of them, after `after` (the last of the page
    /// before). Each page is its own short read, so a long download holds nothing open.
    fn samples_after(
        &self,
        record: &RecordId,
        after: Option<&SampleRow>,
        limit: usize,
    ) -> Result<Vec<SampleRow>, StoreError>;

    /// One account by id.
    fn account(&self, id: &str) -> Result<Option<Account>, StoreError>;

    /// One account by its normalised email address.
    fn account_by_email(&self, email: &str) -> Result<Option<Account>, StoreError>;

    /// The accounts that own a record.
    fn accounts_of_record(&self, record: &RecordId) -> Result<Vec<Account>, StoreError>;

    /// One session by the SHA-256 digest (hex) of its key.
    fn session(&self, key_hash: &str) -> Result<Option<Session>, StoreError>;

    /// An account's sessions, most recently used first.
    fn sessions_of(&self, account_id: &str) -> Result<Vec<Session>, StoreError>;

    /// One emailed-link token by its digest, used or not.
    fn one_time_token(&self, token_hash: &str) -> Result<Option<OneTimeToken>, StoreError>;

    /// How many unused recovery codes an account has.
    fn recovery_codes_left(&self, account_id: &str) -> Result<i64, StoreError>;

    /// A registered OAuth client.
    fn oauth_client(&self, client_id: &str) -> Result<Option<OAuthClient>, StoreError>;

    /// The identity at an OpenID provider that `subject` of `issuer` is linked to.
    fn account_identity(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<AccountIdentity>, StoreError>;

    /// An account's passkeys, oldest first.
    fn passkeys_of(&self, account_id: &str) -> Result<Vec<StoredPasskey>, StoreError>;

    /// The identities at OpenID providers linked to an account.
    fn identities_of_account(&self, account_id: &str) -> Result<Vec<AccountIdentity>, StoreError>;

    /// Every registered organisation, by name.
    fn organisations(&self) -> Result<Vec<Organisation>, StoreError>;

    /// An authorisation code or refresh token by its digest, spent or not.
    fn oauth_token(&self, token_hash: &str) -> Result<Option<OAuthToken>, StoreError>;

    /// Whether a read by primary key is cheap and safe to run on an async task: true for an
    /// embedded database (tens of microseconds, no network); false where a read waits on a
    /// server, or the client cannot run inside an async runtime at all.
    fn inline_reads(&self) -> bool {
        false
    }
}
