//! The storage error type.

/// What can go wrong in storage. Messages name ids and counts, never content.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The resource to change does not exist (or is outside the scope).
    #[error("{resource_type}/{id} not found")]
    NotFound {
        /// Its type.
        resource_type: String,
        /// Its id.
        id: String,
    },
    /// The expected version did not match (`If-Match`, or a create of an existing id).
    #[error("{resource_type}/{id} is at version {actual}, not {expected}")]
    VersionConflict {
        /// Its type.
        resource_type: String,
        /// Its id.
        id: String,
        /// What the caller expected ("absent" or a version number).
        expected: String,
        /// What it is ("absent" or a version number).
        actual: String,
    },
    /// The id is taken by a resource in another record.
    #[error("{resource_type}/{id} belongs to another record")]
    OtherRecord {
        /// Its type.
        resource_type: String,
        /// Its id.
        id: String,
    },
    /// A unique value (an email address) is already taken.
    #[error("{0} already exists")]
    Duplicate(String),
    /// A single-use secret (an emailed link, a recovery code) was already used, has
    /// expired, or never existed.
    #[error("the {0} is not valid any more")]
    Spent(String),
    /// The record does not exist.
    #[error("record {0} does not exist")]
    NoRecord(String),
    /// The record's key is gone (erased) or cannot be unwrapped with this master key.
    #[error("record {0} cannot be decrypted: its key is missing or the master key is wrong")]
    Sealed(String),
    /// A bad id reached the store.
    #[error(transparent)]
    Id(#[from] hale_core::IdError),
    /// The database refused or failed.
    #[error("database error: {0}")]
    Database(String),
    /// A migration failed; start-up must stop.
    #[error("migration {version} failed: {message}")]
    Migration {
        /// The migration that failed.
        version: u32,
        /// The database's message.
        message: String,
    },
    /// The database is not a Hale database, or the key is wrong.
    #[error("cannot open the database: {0}")]
    Open(String),
}
