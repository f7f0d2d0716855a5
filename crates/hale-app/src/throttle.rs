//! Limits on guessing: sign-in, security codes and recovery codes (issue 3 §7).
//!
//! Each key (an account, an address) may fail [`FREE_FAILURES`] times; after that, each
//! further failure doubles a wait (1 s, 2 s, 4 s, … up to [`MAX_WAIT_SECS`]) during which
//! attempts are refused with 429 and `Retry-After`, before the password or code is even
//! checked. A success clears the account's count. Counts live in this process: with several
//! `hale serve` processes an attacker gets at most that many times the attempts, still
//! bounded by the exponential wait.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::AppError;

/// Failures allowed before waits begin, for one account.
pub const FREE_FAILURES: u32 = 5;
/// Failures allowed before waits begin, for one network address (keys `addr:…`): many
/// people can share one (a household, an office, a care home behind one router), so one
/// person's mistakes must not lock the others out; a guessing machine still meets the wait.
pub const FREE_FAILURES_PER_ADDRESS: u32 = 50;
/// The longest wait.
pub const MAX_WAIT_SECS: u64 = 15 * 60;
/// Counts older than this are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    blocked_until: Instant,
    last: Instant,
}

/// Failure counts by key.
#[derive(Debug, Default)]
pub struct Throttle {
    entries: Mutex<HashMap<String, Entry>>,
}

impl Throttle {
    /// A throttle with no history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Refuses with [`AppError::Throttled`] if any key is waiting.
    pub fn check(&self, keys: &[impl AsRef<str>]) -> Result<(), AppError> {
        let now = Instant::now();
        let Ok(map) = self.entries.lock() else {
            return Ok(());
        };
        let wait = keys
            .iter()
            .filter_map(|k| map.get(k.as_ref()))
            .map(|e| e.blocked_until.saturating_duration_since(now))
            .max()
            .unwrap_or_default();
        if wait.is_zero() {
            Ok(())
        } else {
            Err(AppError::Throttled(wait.as_secs().max(1)))
        }
    }

    /// Counts a failure against every key.
    pub fn failed(&self, keys: &[impl AsRef<str>]) {
        let now = Instant::now();
        let Ok(mut map) = self.entries.lock() else {
            return;
        };
        map.retain(|_, e| now.duration_since(e.last) < FORGET_AFTER);
        for key in keys {
            let key = key.as_ref();
            let e = map.entry(key.to_owned()).or_insert(Entry {
                failures: 0,
                blocked_until: now,
                last: now,
            });
            e.failures += 1;
            e.last = now;
            let free = if key.starts_with("addr:") {
                FREE_FAILURES_PER_ADDRESS
            } else {
                FREE_FAILURES
            };
            if e.failures > free {
                let exp = (e.failures - free - 1).min(20);
                let wait = (1u64 << exp).min(MAX_WAIT_SECS);
                e.blocked_until = now + Duration::from_secs(wait);
            }
        }
    }

    /// Clears a key's failures after a success.
    pub fn succeeded(&self, key: &str) {
        if let Ok(mut map) = self.entries.lock() {
            map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_are_free_then_attempts_wait_and_success_clears() {
        let t = Throttle::new();
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
        // …but an address guessing across many accounts is.
        for i in 0..FREE_FAILURES_PER_ADDRESS {
            t.failed(&[&format!("email:x{i}"), "addr:9"]);
        }
        assert!(t.check(&["email:fresh", "addr:9"]).is_ok());
        t.failed(&["email:y", "addr:9"]);
        assert!(t.check(&["email:fresh", "addr:9"]).is_err());
    }
}
