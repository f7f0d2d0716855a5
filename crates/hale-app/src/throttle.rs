//! Limits on guessing: sign-in, security codes and recovery codes (issue 3 §7).
//!
//! Each key (an account, an address) may fail [`FREE_FAILURES`] times; after that, each
//! further failure doubles a wait (1 s, 2 s, 4 s, … up to [`MAX_WAIT_SECS`]) during which
//! attempts are refused with 429 and `Retry-After`, before the password or code is even
//! checked. A success clears the account's count. Counts live in the database
//! (`sign_in_limits`), so every `hale serve` process on it counts the same failures; keys
//! are stored as keyed digests, never as email or network addresses.

use std::sync::Arc;

use hale_auth::secret::SealKey;
use hale_store::{Store, WriteBatch, WriteOp};

use crate::AppError;

/// Failures allowed before waits begin, for one account.
pub const FREE_FAILURES: u32 = 5;
/// Failures allowed before waits begin, for one network address (keys `addr:…`): many
/// people can share one (a household, an office, a care home behind one router), so one
/// person's mistakes must not lock the others out; a guessing machine still meets the wait.
pub const FREE_FAILURES_PER_ADDRESS: u32 = 50;
/// The longest wait.
pub const MAX_WAIT_SECS: u64 = 15 * 60;
/// Counts untouched this long are forgotten.
const FORGET_AFTER_MS: i64 = 60 * 60 * 1000;

/// Failure counts by key, kept in the database.
pub struct Throttle {
    store: Arc<dyn Store>,
    key: SealKey,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Throttle")
    }
}

impl Throttle {
    /// Counts kept in `store`, under digests made with `key`.
    pub fn new(store: Arc<dyn Store>, key: SealKey) -> Self {
        Self { store, key }
    }

    fn digest(&self, key: &str) -> String {
        self.key.keyed_digest("sign-in-limit", key)
    }

    /// Refuses with [`AppError::Throttled`] if any key is waiting.
    pub fn check(&self, keys: &[impl AsRef<str>]) -> Result<(), AppError> {
        let digests: Vec<String> = keys.iter().map(|k| self.digest(k.as_ref())).collect();
        let until = self.store.limit_blocked_until(&digests)?;
        let wait_ms = until - hale_fhir::date::now_millis();
        if wait_ms <= 0 {
            Ok(())
        } else {
            Err(AppError::Throttled(
                u64::try_from((wait_ms + 999) / 1000).unwrap_or(1).max(1),
            ))
        }
    }

    /// Counts a failure against every key.
    pub fn failed(&self, keys: &[impl AsRef<str>]) {
        let keys = keys
            .iter()
            .map(|k| {
                let k = k.as_ref();
                let free = if k.starts_with("addr:") {
                    FREE_FAILURES_PER_ADDRESS
                } else {
                    FREE_FAILURES
                };
                (self.digest(k), i64::from(free))
            })
            .collect();
        let op = WriteOp::LimitFailed {
            keys,
            max_wait_ms: i64::try_from(MAX_WAIT_SECS * 1000).unwrap_or(i64::MAX),
            forget_after_ms: FORGET_AFTER_MS,
        };
        if let Err(e) = self.store.write(WriteBatch { ops: vec![op] }) {
            tracing::warn!(error = %e, "could not count a failed attempt");
        }
    }

    /// Clears a key's failures after a success.
    pub fn succeeded(&self, key: &str) {
        let op = WriteOp::LimitCleared {
            key: self.digest(key),
        };
        if let Err(e) = self.store.write(WriteBatch { ops: vec![op] }) {
            tracing::warn!(error = %e, "could not clear failed attempts");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_are_free_then_attempts_wait_and_success_clears() {
        let dir = tempfile::tempdir().unwrap();
        let store = hale_store_sqlite::SqliteStore::open(
            &dir.path().join("hale.db"),
            &hale_store::MasterKey::generate(),
        )
        .unwrap();
        let t = Throttle::new(Arc::new(store), SealKey::new([7; 32]));
        for _ in 0..FREE_FAILURES {
            assert!(t.check(&["email:a"]).is_ok());
            t.failed(&["email:a", "addr:1"]);
        }
        assert!(t.check(&["email:a"]).is_ok());
        t.failed(&["email:a", "addr:1"]);
        match t.check(&["email:a"]) {
            Err(AppError::Throttled(secs)) => assert!((1..=MAX_WAIT_SECS).contains(&secs)),
            other => panic!("expected a wait, got {other:?}"),
        }
        // Other accounts at the same address are not locked out by one person's mistakes…
        assert!(t.check(&["email:b", "addr:1"]).is_ok());
        t.succeeded("email:a");
        assert!(t.check(&["email:a"]).is_ok());
        // …but an address guessing across many accounts is. (Nothing is stored in clear.)
        for i in 0..FREE_FAILURES_PER_ADDRESS {
            t.failed(&[&format!("email:x{i}"), "addr:9"]);
        }
        assert!(t.check(&["email:fresh", "addr:9"]).is_ok());
        t.failed(&["email:y", "addr:9"]);
        assert!(t.check(&["email:fresh", "addr:9"]).is_err());
    }
}
