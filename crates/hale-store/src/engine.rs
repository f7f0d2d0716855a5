//! The storage logic both backends share, written once over a minimal [`Db`] connection.
//!
//! A backend implements [`Db`] on its connection (inside the transaction it opened) and
//! calls these functions; it owns only what differs: connections, transactions, pragmas,
//! migrations and backup. So the two backends cannot drift apart in what they store or how
//! they answer a search.

use hale_core::RecordId;
use hale_fhir::index::{IndexEntry, IndexValue};
use hale_fhir::search::SearchQuery;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::accounts;
use crate::sql::{self, RESOURCE_COLUMNS, Sql, SqlValue};
use crate::{
    Expect, HistoryQuery, Keyring, Method, SampleBucket, SampleRow, SearchPage, StoreError,
    StoredResource, WriteBatch, WriteOp, WriteOutcome,
};

/// A row: values in column order.
pub type Row = Vec<SqlValue>;

/// A database connection (already inside a transaction when used for writes). SQL uses `?`
/// placeholders; a backend renumbers them if it must.
pub trait Db {
    /// Runs a query and returns every row.
    fn query(&mut self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, StoreError>;
    /// Runs a statement and returns the number of rows changed.
    fn execute(&mut self, sql: &str, params: &[SqlValue]) -> Result<u64, StoreError>;
    /// Runs one statement for each set of parameters, prepared once (a second's reads are
    /// thousands of audit entries); returns the number of rows changed.
    fn execute_each(
        &mut self,
        sql: &str,
        each: &mut dyn Iterator<Item = Vec<SqlValue>>,
    ) -> Result<u64, StoreError> {
        let mut changed = 0;
        for params in each {
            changed += self.execute(sql, &params)?;
        }
        Ok(changed)
    }
    /// What to append to a SELECT that reads a row about to be changed: `" FOR UPDATE"` on
    /// PostgreSQL; nothing on SQLite, whose single writer already serialises writes.
    fn lock_clause(&self) -> &'static str {
        ""
    }
}

pub(crate) fn text(v: &SqlValue) -> String {
    match v {
        SqlValue::Text(s) => s.clone(),
        SqlValue::Int(i) => i.to_string(),
        _ => String::new(),
    }
}

pub(crate) fn int(v: &SqlValue) -> i64 {
    match v {
        SqlValue::Int(i) => *i,
        SqlValue::Real(f) => *f as i64,
        SqlValue::Text(s) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

fn t(s: &str) -> SqlValue {
    SqlValue::Text(s.to_owned())
}

/// The wrapped key of a record, if it still has one.
fn wrapped_key(db: &mut dyn Db, record: &str) -> Result<Option<Vec<u8>>, StoreError> {
    let rows = db.query(
        "SELECT wrapped_key FROM record_keys WHERE record_id = ?",
        &[t(record)],
    )?;
    Ok(rows
        .into_iter()
        .next()
        .and_then(|r| match r.into_iter().next() {
            Some(SqlValue::Blob(b)) => Some(b),
            _ => None,
        }))
}

/// Turns rows of [`RESOURCE_COLUMNS`] into resources, opening sealed content. The record
/// keys are looked up here (that may read the database); opening is pure, and a large read
/// (`$everything`, a long history) opens on every core.
fn decode(
    db: &mut dyn Db,
    keys: &Keyring,
    rows: Vec<Row>,
) -> Result<Vec<StoredResource>, StoreError> {
    let mut sealed = Vec::with_capacity(rows.len());
    for row in rows {
        let [record, rtype, id, version, updated, method, content] = <[SqlValue; 7]>::try_from(row)
            .map_err(|_| StoreError::Database("unexpected row shape".into()))?;
        let record = text(&record);
        let content = match content {
            SqlValue::Blob(b) => Some((keys.record_key(&record, || wrapped_key(db, &record))?, b)),
            _ => None,
        };
        let meta = StoredResource {
            record: RecordId::parse(&record)?,
            resource_type: text(&rtype),
            id: text(&id),
            version: int(&version),
            last_updated: int(&updated),
            method: Method::parse(&text(&method)),
            resource: None,
        };
        sealed.push((meta, content));
    }
    // Asked only for large reads: finding the core count reads cgroup files each time.
    if sealed.len() < PARALLEL_OPEN_FROM {
        return sealed.into_iter().map(open_content).collect();
    }
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    if threads < 2 {
        return sealed.into_iter().map(open_content).collect();
    }
    let chunk = sealed.len().div_ceil(threads);
    let mut parts: Vec<Vec<_>> = Vec::with_capacity(threads);
    while !sealed.is_empty() {
        let rest = sealed.split_off(sealed.len().saturating_sub(chunk));
        parts.push(rest);
    }
    parts.reverse();
    let opened: Vec<Result<Vec<StoredResource>, StoreError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| scope.spawn(move || part.into_iter().map(open_content).collect()))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(StoreError::Database("opening content failed".into())))
            })
            .collect()
    });
    let mut out = Vec::new();
    for part in opened {
        out.extend(part?);
    }
    Ok(out)
}

/// From how many resources a read opens their content on several threads.
const PARALLEL_OPEN_FROM: usize = 512;

/// A resource read from the database, its content still sealed (with the record's key).
type Sealed = (StoredResource, Option<([u8; 32], Vec<u8>)>);

/// Opens one resource's sealed content with its record's key.
fn open_content((mut meta, content): Sealed) -> Result<StoredResource, StoreError> {
    if let Some((key, sealed)) = content {
        let row = (
            meta.record.as_str(),
            meta.resource_type.as_str(),
            meta.id.as_str(),
            meta.version,
        );
        let plain = Keyring::open(&key, row, sealed)?;
        let text = String::from_utf8(plain)
            .map_err(|_| StoreError::Database("stored content is not UTF-8".into()))?;
        meta.resource = Some(
            RawValue::from_string(text)
                .map_err(|_| StoreError::Database("stored content is not JSON".into()))?,
        );
    }
    Ok(meta)
}

/// A resource serialized before its batch reaches the writer, with the place in its `meta`
/// where the writer puts the two fields only it knows, `versionId` and `lastUpdated` (FHIR R4
/// §3.1.0.4: the server owns them, and `id`). Serializing is work the request's own thread
/// can do; on SQLite's single writer it was a tenth of the time a resource took.
#[derive(Debug)]
pub struct Serialized {
    text: String,
    meta_at: usize,
    meta_has_fields: bool,
}

impl Serialized {
    /// `resource` with `id` set and its own `versionId` and `lastUpdated` left out (the
    /// batch owns it and does not use it again, so it is changed in place, not copied).
    fn of(resource: &mut Value, id: &str) -> Result<Self, StoreError> {
        let Value::Object(fields) = resource else {
            return Err(StoreError::Database(
                "a resource must be a JSON object".into(),
            ));
        };
        // A missing `meta` and `id` go straight after `resourceType`, where readers expect them.
        let after_type = fields.len().min(1);
        match fields.get_mut("meta") {
            Some(Value::Object(meta)) => {
                meta.shift_remove("versionId");
                meta.shift_remove("lastUpdated");
            }
            Some(other) => *other = Value::Object(Map::new()),
            None => {
                fields.shift_insert(after_type, "meta".into(), Value::Object(Map::new()));
            }
        }
        match fields.get_mut("id") {
            Some(own) => *own = Value::String(id.to_owned()),
            None => {
                fields.shift_insert(after_type, "id".into(), Value::String(id.to_owned()));
            }
        }
        let fail = |e: serde_json::Error| StoreError::Database(e.to_string());
        let mut out = Vec::with_capacity(1024);
        let mut meta_at = 0;
        let mut meta_has_fields = false;
        out.push(b'{');
        for (i, (key, value)) in fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, key).map_err(fail)?;
            out.push(b':');
            match value {
                // The writer's two fields go first in `meta`, at `meta_at`.
                Value::Object(meta) if key == "meta" => {
                    meta_at = out.len() + 1;
                    meta_has_fields = !meta.is_empty();
                    serde_json::to_writer(&mut out, meta).map_err(fail)?;
                }
                _ => serde_json::to_writer(&mut out, value).map_err(fail)?,
            }
        }
        out.push(b'}');
        let text = String::from_utf8(out).map_err(|e| StoreError::Database(e.to_string()))?;
        Ok(Self {
            text,
            meta_at,
            meta_has_fields,
        })
    }

    /// The text with `versionId` and `lastUpdated` (`last_updated` already formatted: a
    /// FHIR instant needs no escaping) put in.
    fn stamped(&self, version: i64, last_updated: &str) -> String {
        let mut out = String::with_capacity(self.text.len() + 64);
        out.push_str(&self.text[..self.meta_at]);
        out.push_str("\"versionId\":\"");
        out.push_str(&version.to_string());
        out.push_str("\",\"lastUpdated\":\"");
        out.push_str(last_updated);
        out.push('"');
        if self.meta_has_fields {
            out.push(',');
        }
        out.push_str(&self.text[self.meta_at..]);
        out
    }
}

/// A batch with its resources serialized ([`Serialized`]), ready for [`apply`].
#[derive(Debug)]
pub struct PreparedBatch {
    /// The batch itself (its resources' parsed content is not used again).
    pub batch: WriteBatch,
    /// One per op: the content of a `Put`.
    contents: Vec<Option<Serialized>>,
}

impl PreparedBatch {
    /// Whether only audit entries are in it (the log of reads, flushed in the background):
    /// no request waits for it.
    pub fn is_audit_only(&self) -> bool {
        self.batch
            .ops
            .iter()
            .all(|op| matches!(op, WriteOp::Audit(_) | WriteOp::AuditAll(_)))
    }
}

/// Serializes a batch's resources on the calling thread.
pub fn prepare(mut batch: WriteBatch) -> Result<PreparedBatch, StoreError> {
    let contents = batch
        .ops
        .iter_mut()
        .map(|op| match op {
            WriteOp::Put { id, resource, .. } => Serialized::of(resource, id).map(Some),
            _ => Ok(None),
        })
        .collect::<Result<_, _>>()?;
    Ok(PreparedBatch { batch, contents })
}

/// Applies a batch. The caller has opened a transaction and commits it if this succeeds.
pub fn apply(
    db: &mut dyn Db,
    keys: &Keyring,
    prepared: &PreparedBatch,
    now: i64,
) -> Result<WriteOutcome, StoreError> {
    let batch = &prepared.batch;
    let last_updated = hale_fhir::date::format_instant(now);
    let mut results = Vec::with_capacity(batch.ops.len());
    let mut samples_added = 0;
    // The record a batch writes into is checked once, not once for each of its resources.
    let mut known_record: Option<RecordId> = None;
    for (op, content) in batch.ops.iter().zip(&prepared.contents) {
        results.push(match op {
            WriteOp::CreateRecord { record } => {
                let r = record.as_str();
                if !db
                    .query("SELECT 1 FROM records WHERE record_id = ?", &[t(r)])?
                    .is_empty()
                {
                    return Err(StoreError::VersionConflict {
                        resource_type: "Patient".into(),
                        id: r.to_owned(),
                        expected: "absent".into(),
                        actual: "present".into(),
                    });
                }
                let wrapped = keys.new_record_key(r)?;
                db.execute(
                    "INSERT INTO records (record_id, created_at) VALUES (?, ?)",
                    &[t(r), SqlValue::Int(now)],
                )?;
                db.execute(
                    "INSERT INTO record_keys (record_id, wrapped_key) VALUES (?, ?)",
                    &[t(r), SqlValue::Blob(wrapped)],
                )?;
                None
            }
            WriteOp::Put {
                record,
                resource_type,
                id,
                expect,
                resource: _,
                index,
            } => Some({
                if known_record.as_ref() != Some(record) {
                    require_record(db, record)?;
                    known_record = Some(record.clone());
                }
                let content = content
                    .as_ref()
                    .ok_or_else(|| StoreError::Database("a resource was not prepared".into()))?;
                put(
                    db,
                    keys,
                    record,
                    resource_type,
                    id,
                    *expect,
                    content,
                    index,
                    (now, &last_updated),
                )?
            }),
            WriteOp::Delete {
                record,
                resource_type,
                id,
                expect,
            } => delete(db, record, resource_type, id, *expect, now)?,
            WriteOp::EraseRecord { record } => {
                erase_record(db, keys, record)?;
                known_record = None;
                None
            }
            WriteOp::DeleteAccount { account_id } => {
                accounts::delete_account(db, account_id)?;
                None
            }
            WriteOp::LimitFailed {
                keys,
                max_wait_ms,
                forget_after_ms,
            } => {
                limit_failed(db, keys, *max_wait_ms, *forget_after_ms, now)?;
                None
            }
            WriteOp::LimitCleared { key } => {
                db.execute("DELETE FROM sign_in_limits WHERE key_hash = ?", &[t(key)])?;
                None
            }
            WriteOp::Audit(entry) => {
                crate::audit::append(db, keys.audit_key(), std::slice::from_ref(entry))?;
                None
            }
            WriteOp::AuditAll(entries) => {
                crate::audit::append(db, keys.audit_key(), entries)?;
                None
            }
            WriteOp::AuditCheckpoint => {
                crate::audit::checkpoint(db, keys.audit_key(), now)?;
                None
            }
            WriteOp::Samples { record, rows } => {
                samples_added += write_samples(db, record, rows)?;
                None
            }
            WriteOp::PutAccount(account) => {
                accounts::put_account(db, account)?;
                None
            }
            WriteOp::PutSession(session) => {
                accounts::put_session(db, session)?;
                None
            }
            WriteOp::EndSessions { account_id, only } => {
                accounts::end_sessions(db, account_id, only.as_deref())?;
                None
            }
            WriteOp::PutToken(token) => {
                accounts::put_token(db, token)?;
                None
            }
            WriteOp::UseToken { token_hash } => {
                accounts::use_token(db, token_hash, now)?;
                None
            }
            WriteOp::PutClient(client) => {
                crate::oauth::put_client(db, client)?;
                None
            }
            WriteOp::PutPasskey(passkey) => {
                accounts::put_passkey(db, passkey)?;
                None
            }
            WriteOp::DeletePasskey {
                account_id,
                credential_id,
            } => {
                accounts::delete_passkey(db, account_id, credential_id)?;
                None
            }
            WriteOp::PutIdentity(identity) => {
                accounts::put_identity(db, identity)?;
                None
            }
            WriteOp::PutOrganisation(org) => {
                crate::oauth::put_organisation(db, org)?;
                None
            }
            WriteOp::UseAssertion {
                client_id,
                jti,
                expires_at,
            } => {
                crate::oauth::use_assertion(db, client_id, jti, *expires_at, now)?;
                None
            }
            WriteOp::PutOAuthToken(token) => {
                crate::oauth::put_token(db, token)?;
                None
            }
            WriteOp::UseOAuthToken { token_hash } => {
                crate::oauth::use_token(db, token_hash, now)?;
                None
            }
            WriteOp::SetRecoveryCodes { account_id, hashes } => {
                accounts::set_recovery_codes(db, account_id, hashes)?;
                None
            }
            WriteOp::UseRecoveryCode { account_id, hash } => {
                accounts::use_recovery_code(db, account_id, hash)?;
                None
            }
        });
    }
    Ok(WriteOutcome {
        results,
        samples_added,
    })
}

struct Current {
    record: String,
    version: i64,
    deleted: bool,
}

fn current(db: &mut dyn Db, rtype: &str, id: &str) -> Result<Option<Current>, StoreError> {
    let sql = format!(
        "SELECT record_id, version, deleted FROM resources WHERE rtype = ? AND id = ?{}",
        db.lock_clause()
    );
    let rows = db.query(&sql, &[t(rtype), t(id)])?;
    Ok(rows.into_iter().next().map(|r| Current {
        record: text(&r[0]),
        version: int(&r[1]),
        deleted: int(&r[2]) != 0,
    }))
}

fn check(
    rtype: &str,
    id: &str,
    record: &RecordId,
    cur: Option<&Current>,
    expect: Expect,
) -> Result<(), StoreError> {
    if let Some(c) = cur
        && c.record != record.as_str()
    {
        return Err(StoreError::OtherRecord {
            resource_type: rtype.into(),
            id: id.into(),
        });
    }
    let live = cur.filter(|c| !c.deleted);
    let conflict = |expected: String| StoreError::VersionConflict {
        resource_type: rtype.into(),
        id: id.into(),
        expected,
        actual: live.map_or("absent".into(), |c| c.version.to_string()),
    };
    match (expect, live) {
        (Expect::Absent, Some(_)) => Err(conflict("absent".into())),
        (Expect::Version(v), Some(c)) if c.version == v => Ok(()),
        (Expect::Version(v), _) => Err(conflict(v.to_string())),
        _ => Ok(()),
    }
}

fn require_record(db: &mut dyn Db, record: &RecordId) -> Result<(), StoreError> {
    if db
        .query(
            "SELECT 1 FROM records WHERE record_id = ?",
            &[t(record.as_str())],
        )?
        .is_empty()
    {
        return Err(StoreError::NoRecord(record.to_string()));
    }
    Ok(())
}

/// Forgets the keys of the records a committed batch erased: a reader may have cached one
/// from the snapshot it began with while the erasure was being written.
pub fn forget_erased(keys: &Keyring, batch: &WriteBatch) {
    for op in &batch.ops {
        if let WriteOp::EraseRecord { record } = op {
            keys.forget(record.as_str());
        }
    }
}

/// See [`WriteOp::EraseRecord`].
fn erase_record(db: &mut dyn Db, keys: &Keyring, record: &RecordId) -> Result<(), StoreError> {
    require_record(db, record)?;
    let r = || [t(record.as_str())];
    for row in db.query("SELECT account_id FROM accounts WHERE record_id = ?", &r())? {
        accounts::delete_account(db, &text(&row[0]))?;
    }
    db.execute("DELETE FROM oauth_tokens WHERE record_id = ?", &r())?;
    // Every table keyed by the record, the index before what it indexes.
    for table in INDEX_TABLES
        .iter()
        .chain(&["resource_versions", "resources"])
    {
        db.execute(&format!("DELETE FROM {table} WHERE record_id = ?"), &r())?;
    }
    db.execute(
        "DELETE FROM samples WHERE series_id IN \
         (SELECT series_id FROM sample_series WHERE record_id = ?)",
        &r(),
    )?;
    db.execute("DELETE FROM sample_series WHERE record_id = ?", &r())?;
    db.execute("DELETE FROM record_keys WHERE record_id = ?", &r())?;
    db.execute("DELETE FROM records WHERE record_id = ?", &r())?;
    // The backend forgets the unwrapped key again once the erasure is committed (a reader
    // may have cached it meanwhile from the snapshot it started with).
    keys.forget(record.as_str());
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn put(
    db: &mut dyn Db,
    keys: &Keyring,
    record: &RecordId,
    rtype: &str,
    id: &str,
    expect: Expect,
    content: &Serialized,
    index: &[IndexEntry],
    (now, last_updated): (i64, &str),
) -> Result<StoredResource, StoreError> {
    let cur = current(db, rtype, id)?;
    check(rtype, id, record, cur.as_ref(), expect)?;
    let version = cur.as_ref().map_or(1, |c| c.version + 1);
    let method = if cur.as_ref().is_none_or(|c| c.deleted) {
        Method::Create
    } else {
        Method::Update
    };
    let text = content.stamped(version, last_updated);
    let plain = text.as_bytes();
    let r = record.as_str();
    let key = keys.record_key(r, || wrapped_key(db, r))?;
    let sealed = Keyring::seal(&key, (r, rtype, id, version), plain)?;
    db.execute(
        "INSERT INTO resource_versions (record_id, rtype, id, version, updated_at, method, content) VALUES (?, ?, ?, ?, ?, ?, ?)",
        &[t(r), t(rtype), t(id), SqlValue::Int(version), SqlValue::Int(now), t(method.as_str()), SqlValue::Blob(sealed)],
    )?;
    set_current(db, r, rtype, id, version, now, false, cur.is_some())?;
    replace_index(db, r, rtype, id, index, cur.is_some())?;
    Ok(StoredResource {
        record: record.clone(),
        resource_type: rtype.to_owned(),
        id: id.to_owned(),
        version,
        last_updated: now,
        method,
        resource: Some(
            RawValue::from_string(text).map_err(|e| StoreError::Database(e.to_string()))?,
        ),
    })
}

#[allow(clippy::too_many_arguments)]
fn set_current(
    db: &mut dyn Db,
    r: &str,
    rtype: &str,
    id: &str,
    version: i64,
    now: i64,
    deleted: bool,
    exists: bool,
) -> Result<(), StoreError> {
    let deleted = SqlValue::Int(i64::from(deleted));
    if exists {
        db.execute(
            "UPDATE resources SET version = ?, updated_at = ?, deleted = ? WHERE record_id = ? AND rtype = ? AND id = ?",
            &[SqlValue::Int(version), SqlValue::Int(now), deleted, t(r), t(rtype), t(id)],
        )?;
    } else {
        db.execute(
            "INSERT INTO resources (record_id, rtype, id, version, updated_at, deleted) VALUES (?, ?, ?, ?, ?, ?)",
            &[t(r), t(rtype), t(id), SqlValue::Int(version), SqlValue::Int(now), deleted],
        )?;
    }
    Ok(())
}

const INDEX_TABLES: [&str; 7] = [
    "idx_token",
    "idx_string",
    "idx_date",
    "idx_ref",
    "idx_quantity",
    "idx_number",
    "idx_uri",
];

/// Writes a resource's index entries; `had_entries` when an earlier version's must go first.
fn replace_index(
    db: &mut dyn Db,
    r: &str,
    rtype: &str,
    id: &str,
    index: &[IndexEntry],
    had_entries: bool,
) -> Result<(), StoreError> {
    for table in INDEX_TABLES.iter().filter(|_| had_entries) {
        db.execute(
            &format!("DELETE FROM {table} WHERE record_id = ? AND rtype = ? AND id = ?"),
            &[t(r), t(rtype), t(id)],
        )?;
    }
    for entry in index {
        let head = [t(r), t(rtype), t(id), t(&entry.param)];
        let (sql, rest): (&str, Vec<SqlValue>) = match &entry.value {
            IndexValue::Token { system, code, text } => (
                "INSERT INTO idx_token (record_id, rtype, id, param, system, code, text) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                vec![t(system), t(code), t(text)],
            ),
            IndexValue::String { norm, exact } => (
                "INSERT INTO idx_string (record_id, rtype, id, param, norm, exact) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                vec![t(norm), t(exact)],
            ),
            IndexValue::Date(range) => (
                "INSERT INTO idx_date (record_id, rtype, id, param, lo, hi) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                vec![SqlValue::Int(range.lo), SqlValue::Int(range.hi)],
            ),
            IndexValue::Reference {
                target_type,
                target_id,
                url,
            } => (
                "INSERT INTO idx_ref (record_id, rtype, id, param, target_type, target_id, url) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                vec![t(target_type), t(target_id), t(url)],
            ),
            IndexValue::Quantity {
                system,
                code,
                value,
            } => (
                "INSERT INTO idx_quantity (record_id, rtype, id, param, system, code, value) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                vec![t(system), t(code), SqlValue::Real(*value)],
            ),
            IndexValue::Number(value) => (
                "INSERT INTO idx_number (record_id, rtype, id, param, value) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                vec![SqlValue::Real(*value)],
            ),
            IndexValue::Uri(value) => (
                "INSERT INTO idx_uri (record_id, rtype, id, param, value) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                vec![t(value)],
            ),
        };
        let params: Vec<SqlValue> = head.iter().cloned().chain(rest).collect();
        db.execute(sql, &params)?;
    }
    Ok(())
}

fn delete(
    db: &mut dyn Db,
    record: &RecordId,
    rtype: &str,
    id: &str,
    expect: Expect,
    now: i64,
) -> Result<Option<StoredResource>, StoreError> {
    let cur = current(db, rtype, id)?;
    check(rtype, id, record, cur.as_ref(), expect)?;
    let Some(c) = cur.filter(|c| !c.deleted) else {
        return Ok(None);
    };
    let r = record.as_str();
    let version = c.version + 1;
    db.execute(
        "INSERT INTO resource_versions (record_id, rtype, id, version, updated_at, method, content) VALUES (?, ?, ?, ?, ?, ?, NULL)",
        &[t(r), t(rtype), t(id), SqlValue::Int(version), SqlValue::Int(now), t(Method::Delete.as_str())],
    )?;
    set_current(db, r, rtype, id, version, now, true, true)?;
    replace_index(db, r, rtype, id, &[], true)?;
    Ok(Some(StoredResource {
        record: record.clone(),
        resource_type: rtype.to_owned(),
        id: id.to_owned(),
        version,
        last_updated: now,
        method: Method::Delete,
        resource: None,
    }))
}

fn scoped(sql: &mut String, params: &mut Vec<SqlValue>, alias: &str, scope: Option<&RecordId>) {
    if let Some(r) = scope {
        sql.push_str(&format!(" AND {alias}.record_id = ?"));
        params.push(t(r.as_str()));
    }
}

const FROM: &str = "FROM resources r JOIN resource_versions v ON v.record_id = r.record_id AND v.rtype = r.rtype AND v.id = r.id";
/// Like [`RESOURCE_COLUMNS`], but each version's own number and time (vread, history).
const VERSION_COLUMNS: &str =
    "r.record_id, r.rtype, r.id, v.version, v.updated_at, v.method, v.content";

/// The current version of a resource: its newest version, found without reading its
/// `resources` row (which holds the same number and time). On a large database nearly every
/// B-tree a read descends costs a page read and decryption: this is three descents where
/// the join was four (two when the record is known), and at 1 M resources reads by id ran
/// 10,000–11,300 → 12,200–13,000 a second.
pub fn read(
    db: &mut dyn Db,
    keys: &Keyring,
    scope: Option<&RecordId>,
    rtype: &str,
    id: &str,
) -> Result<Option<StoredResource>, StoreError> {
    const IN_RECORD: &str = "SELECT v.record_id, v.rtype, v.id, v.version, v.updated_at, \
        v.method, v.content FROM resource_versions v \
        WHERE v.record_id = ? AND v.rtype = ? AND v.id = ? ORDER BY v.version DESC LIMIT 1";
    // Ids are unique per type across records: the `resources_by_id` index names the record.
    const ANY_RECORD: &str = "SELECT v.record_id, v.rtype, v.id, v.version, v.updated_at, \
        v.method, v.content FROM resource_versions v \
        WHERE v.record_id = (SELECT record_id FROM resources WHERE rtype = ? AND id = ?) \
        AND v.rtype = ? AND v.id = ? ORDER BY v.version DESC LIMIT 1";
    let rows = match scope {
        Some(record) => db.query(IN_RECORD, &[t(record.as_str()), t(rtype), t(id)])?,
        None => db.query(ANY_RECORD, &[t(rtype), t(id), t(rtype), t(id)])?,
    };
    Ok(decode(db, keys, rows)?.into_iter().next())
}

/// One version of a resource.
pub fn vread(
    db: &mut dyn Db,
    keys: &Keyring,
    scope: Option<&RecordId>,
    rtype: &str,
    id: &str,
    version: i64,
) -> Result<Option<StoredResource>, StoreError> {
    let mut sql =
        format!("SELECT {VERSION_COLUMNS} {FROM} WHERE r.rtype = ? AND r.id = ? AND v.version = ?");
    let mut params = vec![t(rtype), t(id), SqlValue::Int(version)];
    scoped(&mut sql, &mut params, "r", scope);
    let rows = db.query(&sql, &params)?;
    Ok(decode(db, keys, rows)?.into_iter().next())
}

/// History, newest first.
pub fn history(
    db: &mut dyn Db,
    keys: &Keyring,
    scope: Option<&RecordId>,
    q: &HistoryQuery,
) -> Result<Vec<StoredResource>, StoreError> {
    let mut sql = format!("SELECT {VERSION_COLUMNS} {FROM} WHERE 1 = 1");
    let mut params = Vec::new();
    scoped(&mut sql, &mut params, "r", scope);
    if let Some(rt) = &q.resource_type {
        sql.push_str(" AND r.rtype = ?");
        params.push(t(rt));
    }
    if let Some(id) = &q.id {
        sql.push_str(" AND r.id = ?");
        params.push(t(id));
    }
    if let Some(since) = q.since {
        sql.push_str(" AND v.updated_at >= ?");
        params.push(SqlValue::Int(since));
    }
    sql.push_str(" ORDER BY v.updated_at DESC, v.version DESC, r.id LIMIT ?");
    params.push(SqlValue::Int(i64::try_from(q.count).unwrap_or(i64::MAX)));
    let rows = db.query(&sql, &params)?;
    decode(db, keys, rows)
}

fn run(db: &mut dyn Db, keys: &Keyring, sql: Sql) -> Result<Vec<StoredResource>, StoreError> {
    let rows = db.query(&sql.text, &sql.params)?;
    decode(db, keys, rows)
}

/// A search: the page, what it includes, and the total when asked.
pub fn search(
    db: &mut dyn Db,
    keys: &Keyring,
    scope: Option<&RecordId>,
    q: &SearchQuery,
) -> Result<SearchPage, StoreError> {
    let total = if q.summary_count || q.total == hale_fhir::search::Total::Accurate {
        let c = sql::search_count(scope, q);
        let rows = db.query(&c.text, &c.params)?;
        Some(rows.first().and_then(|r| r.first()).map_or(0, int))
    } else {
        None
    };
    if q.summary_count {
        return Ok(SearchPage {
            matches: Vec::new(),
            included: Vec::new(),
            total,
        });
    }
    let matches = run(db, keys, sql::search_page(scope, q))?;
    let ids: Vec<String> = matches.iter().map(|m| m.id.clone()).collect();
    let mut included: Vec<StoredResource> = Vec::new();
    if !ids.is_empty() {
        let mut records: Vec<&RecordId> = matches.iter().map(|m| &m.record).collect();
        records.sort();
        records.dedup();
        let specs = q
            .include
            .iter()
            .map(|i| (i, false))
            .chain(q.revinclude.iter().map(|i| (i, true)));
        for (inc, reverse) in specs {
            for found in run(
                db,
                keys,
                sql::include(scope, inc, &q.resource_type, &ids, &records, reverse),
            )? {
                let dup =
                    |x: &StoredResource| x.resource_type == found.resource_type && x.id == found.id;
                if !matches.iter().any(dup) && !included.iter().any(dup) {
                    included.push(found);
                }
            }
        }
    }
    Ok(SearchPage {
        matches,
        included,
        total,
    })
}

/// Every current resource of a record.
pub fn everything(
    db: &mut dyn Db,
    keys: &Keyring,
    record: &RecordId,
) -> Result<Vec<StoredResource>, StoreError> {
    let sql = format!(
        "SELECT {RESOURCE_COLUMNS} {FROM} AND v.version = r.version WHERE r.record_id = ? AND r.deleted = 0 ORDER BY r.rtype, r.id"
    );
    let rows = db.query(&sql, &[t(record.as_str())])?;
    decode(db, keys, rows)
}

/// Whether a record exists.
pub fn record_exists(db: &mut dyn Db, record: &RecordId) -> Result<bool, StoreError> {
    Ok(!db
        .query(
            "SELECT 1 FROM records WHERE record_id = ?",
            &[t(record.as_str())],
        )?
        .is_empty())
}

/// Live resources of a record by type.
pub fn count_by_type(db: &mut dyn Db, record: &RecordId) -> Result<Vec<(String, i64)>, StoreError> {
    let rows = db.query(
        "SELECT rtype, COUNT(*) FROM resources WHERE record_id = ? AND deleted = 0 GROUP BY rtype ORDER BY rtype",
        &[t(record.as_str())],
    )?;
    Ok(rows.iter().map(|r| (text(&r[0]), int(&r[1]))).collect())
}

/// Stores samples, each series (record, metric, source) looked up or created once per batch.
fn write_samples(
    db: &mut dyn Db,
    record: &RecordId,
    rows: &[SampleRow],
) -> Result<u64, StoreError> {
    require_record(db, record)?;
    let r = record.as_str();
    let mut series: std::collections::HashMap<(&str, &str), i64> = std::collections::HashMap::new();
    let mut ids = Vec::with_capacity(rows.len());
    for row in rows {
        let key = (row.metric.as_str(), row.source.as_str());
        let id = match series.get(&key) {
            Some(id) => *id,
            None => {
                let found = db.query(
                    "SELECT series_id FROM sample_series WHERE record_id = ? AND metric = ? AND source = ?",
                    &[t(r), t(key.0), t(key.1)],
                )?;
                let id = match found.first().and_then(|f| f.first()) {
                    Some(v) => int(v),
                    None => db
                        .query(
                            "INSERT INTO sample_series (record_id, metric, source) VALUES (?, ?, ?) RETURNING series_id",
                            &[t(r), t(key.0), t(key.1)],
                        )?
                        .first()
                        .and_then(|f| f.first())
                        .map(int)
                        .ok_or_else(|| StoreError::Database("no series id returned".into()))?,
                };
                series.insert(key, id);
                id
            }
        };
        ids.push(id);
    }
    // Many rows a statement: per-statement work, not the row, was most of an import's cost.
    let mut added = 0;
    let mut params = Vec::with_capacity(SAMPLES_PER_STATEMENT * 4);
    for (chunk, chunk_ids) in rows
        .chunks(SAMPLES_PER_STATEMENT)
        .zip(ids.chunks(SAMPLES_PER_STATEMENT))
    {
        params.clear();
        for (row, id) in chunk.iter().zip(chunk_ids) {
            params.extend([
                SqlValue::Int(*id),
                SqlValue::Int(row.start),
                SqlValue::Int(row.end),
                SqlValue::Real(row.value),
            ]);
        }
        let sql = if chunk.len() == SAMPLES_PER_STATEMENT {
            FULL_SAMPLE_INSERT.get_or_init(|| sample_insert(SAMPLES_PER_STATEMENT))
        } else {
            &sample_insert(chunk.len())
        };
        added += db.execute(sql, &params)?;
    }
    Ok(added)
}

/// Rows in one `INSERT` of samples (4 parameters each: well inside every database's limit).
const SAMPLES_PER_STATEMENT: usize = 128;
static FULL_SAMPLE_INSERT: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn sample_insert(rows: usize) -> String {
    let values = vec!["(?, ?, ?, ?)"; rows].join(", ");
    format!(
        "INSERT INTO samples (series_id, start_ms, end_ms, value) VALUES {values} ON CONFLICT DO NOTHING"
    )
}

fn real(v: &SqlValue) -> f64 {
    match v {
        SqlValue::Real(f) => *f,
        SqlValue::Int(i) => *i as f64,
        _ => 0.0,
    }
}

/// A metric's samples in buckets of `bucket_ms` from `from` (inclusive) to `to` (exclusive).
pub fn sample_buckets(
    db: &mut dyn Db,
    record: &RecordId,
    metric: &str,
    from: i64,
    to: i64,
    bucket_ms: i64,
) -> Result<Vec<SampleBucket>, StoreError> {
    let bucket = bucket_ms.max(1);
    let rows = db.query(
        "SELECT (s.start_ms - ?) / ? AS b, COUNT(*), MIN(s.value), MAX(s.value), AVG(s.value) \
         FROM samples s JOIN sample_series ss ON ss.series_id = s.series_id \
         WHERE ss.record_id = ? AND ss.metric = ? AND s.start_ms >= ? AND s.start_ms < ? \
         GROUP BY b ORDER BY b",
        &[
            SqlValue::Int(from),
            SqlValue::Int(bucket),
            t(record.as_str()),
            t(metric),
            SqlValue::Int(from),
            SqlValue::Int(to),
        ],
    )?;
    Ok(rows
        .iter()
        .map(|r| SampleBucket {
            start: from + int(&r[0]) * bucket,
            count: int(&r[1]),
            min: real(&r[2]),
            max: real(&r[3]),
            mean: real(&r[4]),
        })
        .collect())
}

/// How many samples a record holds.
/// The metrics a record holds samples of, by id.
pub fn sample_metrics(db: &mut dyn Db, record: &RecordId) -> Result<Vec<String>, StoreError> {
    let rows = db.query(
        "SELECT DISTINCT metric FROM sample_series WHERE record_id = ? ORDER BY metric",
        &[t(record.as_str())],
    )?;
    Ok(rows.iter().filter_map(|r| r.first()).map(text).collect())
}

/// See [`Store::samples_after`](crate::Store::samples_after). Series are walked in order
/// and each is read along its primary key, so every page costs the same however deep.
pub fn samples_after(
    db: &mut dyn Db,
    record: &RecordId,
    after: Option<&SampleRow>,
    limit: usize,
) -> Result<Vec<SampleRow>, StoreError> {
    let (from_metric, from_source) = after.map_or(("", ""), |a| (&*a.metric, &*a.source));
    let series = db.query(
        "SELECT series_id, metric, source FROM sample_series \
         WHERE record_id = ? AND (metric > ? OR (metric = ? AND source >= ?)) \
         ORDER BY metric, source",
        &[
            t(record.as_str()),
            t(from_metric),
            t(from_metric),
            t(from_source),
        ],
    )?;
    let mut out = Vec::new();
    for s in series {
        let remaining = limit.saturating_sub(out.len());
        if remaining == 0 {
            break;
        }
        let (metric, source) = (text(&s[1]), text(&s[2]));
        let mut params = vec![s[0].clone()];
        let mut sql =
            String::from("SELECT start_ms, end_ms, value FROM samples WHERE series_id = ?");
        if let Some(a) = after.filter(|a| a.metric == metric && a.source == source) {
            sql.push_str(" AND (start_ms, end_ms, value) > (?, ?, ?)");
            params.extend([
                SqlValue::Int(a.start),
                SqlValue::Int(a.end),
                SqlValue::Real(a.value),
            ]);
        }
        sql.push_str(" ORDER BY start_ms, end_ms, value LIMIT ?");
        params.push(SqlValue::Int(i64::try_from(remaining).unwrap_or(i64::MAX)));
        for row in db.query(&sql, &params)? {
            out.push(SampleRow {
                metric: metric.clone(),
                source: source.clone(),
                start: int(&row[0]),
                end: int(&row[1]),
                value: real(&row[2]),
            });
        }
    }
    Ok(out)
}

/// See [`WriteOp::LimitFailed`]. Inside the writer's transaction, so processes sharing the
/// database count one after another.
fn limit_failed(
    db: &mut dyn Db,
    keys: &[(String, i64)],
    max_wait_ms: i64,
    forget_after_ms: i64,
    now: i64,
) -> Result<(), StoreError> {
    db.execute(
        "DELETE FROM sign_in_limits WHERE last_at < ?",
        &[SqlValue::Int(now - forget_after_ms)],
    )?;
    for (key, free) in keys {
        let failures = db
            .query(
                "SELECT failures FROM sign_in_limits WHERE key_hash = ?",
                &[t(key)],
            )?
            .first()
            .map_or(0, |r| int(&r[0]))
            + 1;
        let blocked_until = if failures > *free {
            let doublings = u32::try_from((failures - free - 1).min(20)).unwrap_or(20);
            now + (1000_i64 << doublings).min(max_wait_ms)
        } else {
            0
        };
        db.execute(
            "INSERT INTO sign_in_limits (key_hash, failures, blocked_until, last_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (key_hash) DO UPDATE SET failures = excluded.failures, \
             blocked_until = excluded.blocked_until, last_at = excluded.last_at",
            &[t(key), SqlValue::Int(failures), SqlValue::Int(blocked_until), SqlValue::Int(now)],
        )?;
    }
    Ok(())
}

/// See [`Store::limit_blocked_until`](crate::Store::limit_blocked_until).
pub fn limit_blocked_until(db: &mut dyn Db, keys: &[String]) -> Result<i64, StoreError> {
    let mut latest = 0;
    for key in keys {
        if let Some(row) = db
            .query(
                "SELECT blocked_until FROM sign_in_limits WHERE key_hash = ?",
                &[t(key)],
            )?
            .first()
        {
            latest = latest.max(int(&row[0]));
        }
    }
    Ok(latest)
}

pub fn sample_count(db: &mut dyn Db, record: &RecordId) -> Result<i64, StoreError> {
    let rows = db.query(
        "SELECT COUNT(*) FROM samples s JOIN sample_series ss ON ss.series_id = s.series_id WHERE ss.record_id = ?",
        &[t(record.as_str())],
    )?;
    Ok(rows.first().and_then(|r| r.first()).map_or(0, int))
}

#[cfg(test)]
mod tests {
    use super::Serialized;
    use serde_json::{Value, json};

    /// What the writer stores: the resource with the server's `id`, `versionId` and
    /// `lastUpdated`, everything else as sent.
    fn stored(resource: Value, id: &str) -> Value {
        let mut resource = resource;
        let text = Serialized::of(&mut resource, id)
            .unwrap()
            .stamped(3, "2026-12-01T10:00:00.000Z");
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn the_writer_stamps_id_version_and_time_into_what_was_serialized_before() {
        // No id, no meta: both are added (after resourceType).
        let out = stored(
            json!({"resourceType": "Observation", "status": "final"}),
            "o1",
        );
        assert_eq!(
            out,
            json!({"resourceType": "Observation", "id": "o1", "status": "final",
                   "meta": {"versionId": "3", "lastUpdated": "2026-12-01T10:00:00.000Z"}})
        );
        // A client's id, version and time are replaced; its other meta is kept, and so is
        // the meta of a contained resource.
        let out = stored(
            json!({"resourceType": "Observation", "id": "theirs",
                   "meta": {"versionId": "9", "tag": [{"code": "t"}], "lastUpdated": "2000-01-01T00:00:00Z"},
                   "contained": [{"resourceType": "Patient", "id": "p", "meta": {"versionId": "7"}}]}),
            "o2",
        );
        assert_eq!(
            out,
            json!({"resourceType": "Observation", "id": "o2",
                   "meta": {"versionId": "3", "lastUpdated": "2026-12-01T10:00:00.000Z", "tag": [{"code": "t"}]},
                   "contained": [{"resourceType": "Patient", "id": "p", "meta": {"versionId": "7"}}]})
        );
        // A meta that is not an object becomes one.
        let out = stored(json!({"resourceType": "Basic", "meta": "x"}), "b");
        assert_eq!(
            out["meta"],
            json!({"versionId": "3", "lastUpdated": "2026-12-01T10:00:00.000Z"})
        );
        // Exact decimals and escapes survive.
        let sent = r#"{"resourceType": "Observation", "valueQuantity": {"value": 1.50}, "note": [{"text": "a \"b\"\n"}]}"#;
        let out = stored(serde_json::from_str(sent).unwrap(), "o3");
        assert_eq!(out["valueQuantity"]["value"].to_string(), "1.50");
        assert_eq!(out["note"][0]["text"], "a \"b\"\n");
        // Not an object: refused, not stored as something else.
        assert!(Serialized::of(&mut json!([1]), "x").is_err());
    }
}
