//! The audit log: append-only, hash-chained, with a MAC'd head and signed checkpoints.
//!
//! Entry `n`'s hash is SHA-256 over the hash of entry `n - 1` and entry `n`'s fields (each
//! length-prefixed, so no two entries hash alike by moving text between fields). The head
//! row holds the newest entry's number and hash with an HMAC-SHA256 under a key derived from
//! the master key; checkpoints hold the same for chosen points, for an operator to keep
//! elsewhere. [`verify`] walks the chain and names the first entry that does not hold:
//! an edited field, a removed or inserted entry, a reordering, or a chain cut short of its
//! head or of a checkpoint.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::StoreError;
use crate::engine::{Db, int, text};
use crate::sql::SqlValue;
use hale_core::{RecordId, hex};

/// One thing someone did with record data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// When, ms since the epoch.
    pub at: i64,
    /// Whose record (none for what touches no record).
    pub record: Option<RecordId>,
    /// Who: an account, a token's subject, a system client, the operator.
    pub actor: String,
    /// For whom, when someone acts for the person (a proxy).
    pub on_behalf_of: Option<String>,
    /// Through which app or client.
    pub app: Option<String>,
    /// What kind of thing: `read`, `search`, `history`, `everything`, `create`, `update`,
    /// `delete`, `import`, `verify-identity`, …
    pub action: String,
    /// What it touched: `Observation/123`, or `Observation?code&date` (parameter names only).
    pub what: String,
    /// Why: `personal` (the person), `care` (a service), `operations`, …
    pub purpose: String,
    /// How it ended: `ok`, `not-found`, `refused`.
    pub outcome: String,
    /// The request it belongs to.
    pub request_id: String,
}

/// An entry as stored, with its number and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAuditEntry {
    /// Its place in the chain, from 1.
    pub seq: i64,
    /// The entry.
    pub entry: AuditEntry,
    /// Its chain hash (hex).
    pub hash: String,
}

/// A signed point on the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The entry it vouches for.
    pub seq: i64,
    /// That entry's hash.
    pub hash: String,
    /// When it was made.
    pub at: i64,
    /// HMAC-SHA256 of `seq`, `hash` and `at` (hex).
    pub mac: String,
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Entries checked.
    pub entries: i64,
    /// The first entry that does not hold, and why; `None` if the whole chain holds.
    pub first_bad: Option<(i64, String)>,
}

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The chain hash of `entry` as entry `seq` after `prev`.
pub fn chain_hash(prev: &str, seq: i64, e: &AuditEntry) -> String {
    let mut h = Sha256::new();
    let record = e.record.as_ref().map(RecordId::as_str).unwrap_or("");
    let at = e.at.to_string();
    let seq = seq.to_string();
    for field in [
        prev,
        seq.as_str(),
        at.as_str(),
        record,
        e.actor.as_str(),
        e.on_behalf_of.as_deref().unwrap_or(""),
        e.app.as_deref().unwrap_or(""),
        e.action.as_str(),
        e.what.as_str(),
        e.purpose.as_str(),
        e.outcome.as_str(),
        e.request_id.as_str(),
    ] {
        h.update((field.len() as u64).to_le_bytes());
        h.update(field.as_bytes());
    }
    hex(&h.finalize())
}

/// The MAC of a chain point under the audit key.
pub fn point_mac(key: &[u8; 32], seq: i64, hash: &str, at: Option<i64>) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(b"hale-audit-point-v1\0");
    mac.update(&seq.to_le_bytes());
    mac.update(hash.as_bytes());
    if let Some(at) = at {
        mac.update(&at.to_le_bytes());
    }
    hex(&mac.finalize().into_bytes())
}

fn opt(v: &Option<String>) -> SqlValue {
    v.as_ref()
        .map_or(SqlValue::Null, |s| SqlValue::Text(s.clone()))
}

fn maybe(v: &SqlValue) -> Option<String> {
    match v {
        SqlValue::Text(s) => Some(s.clone()),
        _ => None,
    }
}

/// Appends entries in order, inside the caller's transaction.
pub fn append(db: &mut dyn Db, key: &[u8; 32], entries: &[AuditEntry]) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "SELECT seq, hash FROM audit_head WHERE id = 1{}",
        db.lock_clause()
    );
    let head = db.query(&sql, &[])?;
    let (mut seq, mut hash) = match head.first() {
        Some(row) => (int(&row[0]), text(&row[1])),
        None => (0, GENESIS.to_owned()),
    };
    let mut rows = entries.iter().map(|e| {
        seq += 1;
        hash = chain_hash(&hash, seq, e);
        vec![
            SqlValue::Int(seq),
            SqlValue::Int(e.at),
            e.record
                .as_ref()
                .map_or(SqlValue::Null, |r| SqlValue::Text(r.as_str().to_owned())),
            SqlValue::Text(e.actor.clone()),
            opt(&e.on_behalf_of),
            opt(&e.app),
            SqlValue::Text(e.action.clone()),
            SqlValue::Text(e.what.clone()),
            SqlValue::Text(e.purpose.clone()),
            SqlValue::Text(e.outcome.clone()),
            SqlValue::Text(e.request_id.clone()),
            SqlValue::Text(hash.clone()),
        ]
    });
    db.execute_each(
        "INSERT INTO audit_events (seq, at_ms, record_id, actor, on_behalf_of, app, action, what, purpose, outcome, request_id, hash) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &mut rows,
    )?;
    let mac = point_mac(key, seq, &hash, None);
    let params = [
        SqlValue::Int(seq),
        SqlValue::Text(hash.clone()),
        SqlValue::Text(mac),
    ];
    if head.is_empty() {
        db.execute(
            "INSERT INTO audit_head (id, seq, hash, mac) VALUES (1, ?, ?, ?)",
            &params,
        )?;
    } else {
        db.execute(
            "UPDATE audit_head SET seq = ?, hash = ?, mac = ? WHERE id = 1",
            &params,
        )?;
    }
    Ok(())
}

fn entry_of(row: &[SqlValue]) -> Result<StoredAuditEntry, StoreError> {
    Ok(StoredAuditEntry {
        seq: int(&row[0]),
        entry: AuditEntry {
            at: int(&row[1]),
            record: maybe(&row[2]).map(|r| RecordId::parse(&r)).transpose()?,
            actor: text(&row[3]),
            on_behalf_of: maybe(&row[4]),
            app: maybe(&row[5]),
            action: text(&row[6]),
            what: text(&row[7]),
            purpose: text(&row[8]),
            outcome: text(&row[9]),
            request_id: text(&row[10]),
        },
        hash: text(&row[11]),
    })
}

const COLUMNS: &str = "seq, at_ms, record_id, actor, on_behalf_of, app, action, what, purpose, outcome, request_id, hash";

/// A record's entries, newest first, at most `limit`, before `before` (a seq) if given.
pub fn of_record(
    db: &mut dyn Db,
    record: &RecordId,
    before: Option<i64>,
    limit: usize,
) -> Result<Vec<StoredAuditEntry>, StoreError> {
    let rows = db.query(
        &format!(
            "SELECT {COLUMNS} FROM audit_events WHERE record_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?"
        ),
        &[
            SqlValue::Text(record.as_str().to_owned()),
            SqlValue::Int(before.unwrap_or(i64::MAX)),
            SqlValue::Int(i64::try_from(limit).unwrap_or(i64::MAX)),
        ],
    )?;
    rows.iter().map(|r| entry_of(r)).collect()
}

/// Makes a checkpoint at the head, inside the caller's transaction; `None` if the log is empty.
pub fn checkpoint(
    db: &mut dyn Db,
    key: &[u8; 32],
    now: i64,
) -> Result<Option<Checkpoint>, StoreError> {
    let head = db.query("SELECT seq, hash FROM audit_head WHERE id = 1", &[])?;
    let Some(row) = head.first() else {
        return Ok(None);
    };
    let (seq, hash) = (int(&row[0]), text(&row[1]));
    let c = Checkpoint {
        seq,
        mac: point_mac(key, seq, &hash, Some(now)),
        hash,
        at: now,
    };
    db.execute(
        "INSERT INTO audit_checkpoints (seq, hash, at_ms, mac) VALUES (?, ?, ?, ?) ON CONFLICT (seq) DO NOTHING",
        &[
            SqlValue::Int(c.seq),
            SqlValue::Text(c.hash.clone()),
            SqlValue::Int(c.at),
            SqlValue::Text(c.mac.clone()),
        ],
    )?;
    Ok(Some(c))
}

/// Every checkpoint, oldest first.
pub fn checkpoints(db: &mut dyn Db) -> Result<Vec<Checkpoint>, StoreError> {
    let rows = db.query(
        "SELECT seq, hash, at_ms, mac FROM audit_checkpoints ORDER BY seq",
        &[],
    )?;
    Ok(rows
        .iter()
        .map(|r| Checkpoint {
            seq: int(&r[0]),
            hash: text(&r[1]),
            at: int(&r[2]),
            mac: text(&r[3]),
        })
        .collect())
}

/// Walks the whole chain, in pages, and names the first entry that does not hold.
pub fn verify(db: &mut dyn Db, key: &[u8; 32]) -> Result<Verification, StoreError> {
    let mut marks = std::collections::BTreeMap::new();
    for c in checkpoints(db)? {
        if c.mac != point_mac(key, c.seq, &c.hash, Some(c.at)) {
            return Ok(Verification {
                entries: 0,
                first_bad: Some((c.seq, "its checkpoint's signature does not match".into())),
            });
        }
        marks.insert(c.seq, c.hash);
    }
    let head = db.query("SELECT seq, hash, mac FROM audit_head WHERE id = 1", &[])?;
    let head = head.first().map(|r| (int(&r[0]), text(&r[1]), text(&r[2])));
    let (mut prev, mut expected, mut checked) = (GENESIS.to_owned(), 1i64, 0i64);
    let bad = |seq: i64, why: &str| Verification {
        entries: seq - 1,
        first_bad: Some((seq, why.to_owned())),
    };
    loop {
        let rows = db.query(
            &format!("SELECT {COLUMNS} FROM audit_events WHERE seq >= ? ORDER BY seq LIMIT 10000"),
            &[SqlValue::Int(expected)],
        )?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let stored = entry_of(row)?;
            if stored.seq != expected {
                return Ok(bad(expected, "it is missing"));
            }
            if chain_hash(&prev, stored.seq, &stored.entry) != stored.hash {
                return Ok(bad(expected, "it has been changed, or moved"));
            }
            if marks.get(&stored.seq).is_some_and(|h| *h != stored.hash) {
                return Ok(bad(expected, "it differs from a signed checkpoint"));
            }
            prev = stored.hash;
            expected += 1;
            checked += 1;
        }
    }
    // The chain holds as far as it goes; does it go as far as it should? Entries cut from
    // the end show against the signed head and the checkpoints.
    let last_mark = marks.keys().next_back().copied().unwrap_or(0);
    let missing = |why: &str| Ok(bad(checked + 1, why));
    match head {
        _ if last_mark > checked => missing("it is missing: a signed checkpoint goes further"),
        Some((seq, hash, mac)) if mac != point_mac(key, seq, &hash, None) => missing(
            "it is missing, or the log's head was forged: the head is not signed by this installation",
        ),
        Some((seq, hash, _)) if seq != checked || (seq > 0 && hash != prev) => {
            missing("it is missing: the log ends before its signed head")
        }
        None if checked > 0 => Ok(bad(1, "the log has entries but no signed head")),
        _ => Ok(Verification {
            entries: checked,
            first_bad: None,
        }),
    }
}
