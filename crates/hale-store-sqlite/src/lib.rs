//! Hale's embedded storage backend: one SQLCipher-encrypted SQLite file in the data folder.
//!
//! - **Encryption at rest**: the database, its WAL and any backup are encrypted with a key
//!   derived from the master key (SQLCipher, raw key, so no passphrase stretching is needed
//!   for a random 256-bit key); content is also sealed per record by `hale-store`.
//! - **Durability with throughput**: `journal_mode=WAL`, `synchronous=FULL`, and one writer
//!   thread that commits up to [`GROUP_MAX`] waiting batches in one transaction (group
//!   commit), each in its own savepoint so one failing batch never sinks another.
//! - **Readers** use their own connections from a small pool; WAL lets them run while the
//!   writer commits. Other processes (the `hale` CLI while a server runs) share the file
//!   through SQLite's locking, waiting up to [`BUSY_TIMEOUT`].
//!
//! Must not: decide access, or be named anywhere but `hale-server` and the tests.

mod db;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hale_core::RecordId;
use hale_fhir::search::SearchQuery;
use hale_store::engine::{self, PreparedBatch};
use hale_store::{
    HistoryQuery, Keyring, MasterKey, SampleRow, SearchPage, Store, StoreError, StoredResource,
    WriteBatch, WriteOutcome,
};
use rusqlite::Connection;

use db::{SqliteDb, open_connection};

/// The most batches one group commit takes.
pub const GROUP_MAX: usize = 64;
/// How long a connection waits for another writer (another process) before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
const READERS: usize = 8;

const MIGRATIONS: &[(u32, &str)] = &[
    (
        1,
        include_str!("../migrations/0001_records_and_resources.sql"),
    ),
    (2, include_str!("../migrations/0002_samples.sql")),
    (3, include_str!("../migrations/0003_accounts.sql")),
    (4, include_str!("../migrations/0004_audit.sql")),
    (5, include_str!("../migrations/0005_oauth.sql")),
    (
        6,
        include_str!("../migrations/0006_organisations_and_identities.sql"),
    ),
    (7, include_str!("../migrations/0007_sign_in_limits.sql")),
    (8, include_str!("../migrations/0008_versions_by_rowid.sql")),
    (
        9,
        include_str!("../migrations/0009_searches_across_records.sql"),
    ),
    (10, include_str!("../migrations/0010_union_parameters.sql")),
];

/// The answer to a batch, with the batch itself: it goes back to be freed on the caller's
/// thread, since every moment of the one writer thread is throughput.
type Reply = mpsc::SyncSender<(Result<WriteOutcome, StoreError>, PreparedBatch)>;

/// The SQLite store.
pub struct SqliteStore {
    path: PathBuf,
    sqlcipher_key: [u8; 32],
    keys: Arc<Keyring>,
    writer: Mutex<Option<mpsc::Sender<(PreparedBatch, Reply)>>>,
    writer_thread: Option<std::thread::JoinHandle<()>>,
    checkpointer: Option<(mpsc::Sender<()>, std::thread::JoinHandle<()>)>,
    readers: Mutex<Vec<Connection>>,
}

impl Drop for SqliteStore {
    /// Stops the writer and waits for it, so the file is closed (and the WAL checkpointed)
    /// when the store is gone.
    fn drop(&mut self) {
        if let Ok(mut w) = self.writer.lock() {
            w.take();
        }
        if let Some(t) = self.writer_thread.take() {
            let _ = t.join();
        }
        if let Some((stop, t)) = self.checkpointer.take() {
            drop(stop);
            let _ = t.join();
        }
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if absent) the database at `path`, runs migrations, starts the writer.
    /// A wrong key or a file that is not a Hale database is an error, never overwritten.
    pub fn open(path: &Path, master: &MasterKey) -> Result<Self, StoreError> {
        Self::open_with_wal_limit(path, master, WAL_LIMIT_BYTES)
    }

    fn open_with_wal_limit(
        path: &Path,
        master: &MasterKey,
        wal_limit: u64,
    ) -> Result<Self, StoreError> {
        let sqlcipher_key = master.derive("sqlcipher-database");
        let mut conn = open_connection(path, &sqlcipher_key)?;
        migrate(&mut conn)?;
        // Checkpoints run on their own thread, off the commit path (see `checkpoint_loop`).
        // The writer touches every index; a larger page cache spares it re-reading (and
        // decrypting) pages it wrote a moment ago.
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = -131072")
            .map_err(db::err)?;
        let checkpoint_conn = open_connection(path, &sqlcipher_key)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let checkpoint_thread = std::thread::Builder::new()
            .name("hale-sqlite-checkpoint".into())
            .spawn(move || {
                lower_own_priority();
                checkpoint_loop(&checkpoint_conn, &stopped)
            })
            .map_err(|e| StoreError::Open(e.to_string()))?;
        let keys = Arc::new(Keyring::new(master));
        let (tx, rx) = mpsc::channel::<(PreparedBatch, Reply)>();
        let writer_keys = Arc::clone(&keys);
        let wal = WalLimit {
            path: wal_path(path),
            bytes: wal_limit,
        };
        let writer_thread = std::thread::Builder::new()
            .name("hale-sqlite-writer".into())
            .spawn(move || writer_loop(conn, &writer_keys, &rx, &wal))
            .map_err(|e| StoreError::Open(e.to_string()))?;
        Ok(Self {
            path: path.to_owned(),
            sqlcipher_key,
            keys,
            writer: Mutex::new(Some(tx)),
            writer_thread: Some(writer_thread),
            checkpointer: Some((stop, checkpoint_thread)),
            readers: Mutex::new(Vec::new()),
        })
    }

    fn with_reader<T>(
        &self,
        f: impl FnOnce(&mut SqliteDb<'_>, &Keyring) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self.readers.lock().ok().and_then(|mut p| p.pop());
        let conn = match pooled {
            Some(c) => c,
            None => open_connection(&self.path, &self.sqlcipher_key)?,
        };
        // A consistent snapshot across the several queries of one read (search + includes).
        let result = (|| {
            conn.prepare_cached("BEGIN")
                .and_then(|mut st| st.execute([]))
                .map_err(db::err)?;
            let out = f(&mut SqliteDb(&conn), &self.keys);
            conn.prepare_cached("COMMIT")
                .and_then(|mut st| st.execute([]))
                .map_err(db::err)?;
            out
        })();
        if result.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        if let Ok(mut p) = self.readers.lock()
            && p.len() < READERS
        {
            p.push(conn);
        }
        result
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    apply_migrations(conn, MIGRATIONS)
}

fn apply_migrations(conn: &mut Connection, migrations: &[(u32, &str)]) -> Result<(), StoreError> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")
        .map_err(db::err)?;
    for (version, sql) in migrations {
        let done: bool = conn
            .query_row(
                "SELECT COUNT(*) FROM schema_migrations WHERE version = ?1",
                [version],
                |r| r.get::<_, i64>(0),
            )
            .map_err(db::err)?
            > 0;
        if done {
            continue;
        }
        let fail = |e: rusqlite::Error| StoreError::Migration {
            version: *version,
            message: e.to_string(),
        };
        let tx = conn.transaction().map_err(fail)?;
        tx.execute_batch(sql).map_err(fail)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            rusqlite::params![version, hale_fhir::date::now_millis()],
        )
        .map_err(fail)?;
        tx.commit().map_err(fail)?;
        tracing::info!(version, "applied sqlite migration");
    }
    Ok(())
}

/// Copies committed WAL frames into the database every 200 ms, so the writer never pays
/// for it and the WAL stays small. PASSIVE: it never blocks readers or the writer; frames a
/// reader still needs are left for the next round. Ends when the store is dropped.
///
/// Nothing more at the end: the last connection to close checkpoints and removes the WAL
/// itself (SQLite does, when no other process has the file open). A blocking checkpoint here
/// would hold up a server's writers for as long as it took whenever a `hale` command run
/// beside it ended.
fn checkpoint_loop(conn: &Connection, stop: &mpsc::Receiver<()>) {
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(Duration::from_millis(200)) {
        if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)") {
            tracing::warn!(error = %e, "checkpoint failed; will retry");
        }
    }
}

/// The nice value the writer asks for while a request waits on it.
const WRITER_NICE: i32 = -10;

/// How much lower than the request threads background work runs: checkpoints, and the
/// writer appending the log of reads (where it may raise its priority again after).
const BACKGROUND_NICE: i32 = 5;

/// Puts the calling thread behind the request threads (always allowed).
fn lower_own_priority() {
    #[cfg(target_os = "linux")]
    if let Ok(own) = rustix::process::getpriority_process(None) {
        let _ = rustix::process::setpriority_process(None, own + BACKGROUND_NICE);
    }
}

/// Every write waits for the one writer thread, so it should not wait for a core while
/// request threads validate the next bundles: measured on two cores, bundle import ran
/// 5,200 → 5,900 resources/s (four pairs of runs, each pair faster) with the writer at a
/// higher priority. Linux gives it where allowed: root, `CAP_SYS_NICE`, or a raised
/// `RLIMIT_NICE` (systemd's `LimitNICE=-10`); otherwise the writer runs as before.
///
/// Appending the log of reads, which nobody waits for, runs behind the request threads:
/// ahead of the readers, it held them up for the length of each append (read by id, p99
/// 5.5 → 5.1 ms with this and checkpoints behind them too; six pairs of runs, five better).
struct WriterPriority {
    own: i32,
    now: i32,
    allowed: bool,
}

impl WriterPriority {
    /// Starts ahead, if the system allows raising a priority at all; otherwise the writer
    /// never changes its priority (lowered for the log of reads, it could not come back).
    fn new() -> Self {
        #[cfg(target_os = "linux")]
        let (own, allowed) = (
            rustix::process::getpriority_process(None).unwrap_or(0),
            rustix::process::setpriority_process(None, WRITER_NICE).is_ok(),
        );
        #[cfg(not(target_os = "linux"))]
        let (own, allowed) = (0, false);
        if !allowed {
            tracing::debug!("the writer thread keeps its priority (not allowed to raise it)");
        }
        Self {
            own,
            now: if allowed { WRITER_NICE } else { own },
            allowed,
        }
    }

    /// Ahead of request threads (`urgent`) or behind them.
    fn set(&mut self, urgent: bool) {
        let wanted = if urgent {
            WRITER_NICE
        } else {
            self.own + BACKGROUND_NICE
        };
        if !self.allowed || wanted == self.now {
            return;
        }
        #[cfg(target_os = "linux")]
        if rustix::process::setpriority_process(None, wanted).is_ok() {
            self.now = wanted;
        }
    }
}

/// The size past which the writer checkpoints the WAL itself (see [`WalLimit`]).
const WAL_LIMIT_BYTES: u64 = 256 << 20;

/// Under a steady stream of writes the checkpoint thread never catches up: by the time it has
/// copied the frames it saw, newer ones are there, and SQLite starts the WAL again from its
/// beginning only when a write finds every frame copied. The WAL then grows without end (4.2
/// GB, more than the database, after loading 1 M resources), and a server that stops before
/// catching up leaves it all to be read again at the next start. So once the file passes
/// `bytes`, the writer, between commits, copies what is left itself: nothing new is written
/// meanwhile, the copy completes, and the next commit starts the WAL again and cuts the file
/// back to `journal_size_limit`.
struct WalLimit {
    path: PathBuf,
    bytes: u64,
}

impl WalLimit {
    fn enforce(&self, conn: &Connection) {
        if std::fs::metadata(&self.path).map_or(true, |m| m.len() <= self.bytes) {
            return;
        }
        let copied = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        });
        match copied {
            Ok((frames, copied)) => {
                tracing::debug!(frames, copied, "writer checkpointed a long WAL")
            }
            Err(e) => tracing::warn!(error = %e, "checkpoint of a long WAL failed; will retry"),
        }
    }
}

fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// Group commit: take one batch, then whatever else is already waiting, and commit them
/// together with one fsync.
fn writer_loop(
    conn: Connection,
    keys: &Keyring,
    rx: &mpsc::Receiver<(PreparedBatch, Reply)>,
    wal: &WalLimit,
) {
    let mut priority = WriterPriority::new();
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < GROUP_MAX {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        priority.set(group.iter().any(|(batch, _)| !batch.is_audit_only()));
        let results = commit_group(&conn, keys, &group);
        for ((batch, reply), result) in group.into_iter().zip(results) {
            let _ = reply.send((result, batch));
        }
        wal.enforce(&conn);
    }
}

fn commit_group(
    conn: &Connection,
    keys: &Keyring,
    group: &[(PreparedBatch, Reply)],
) -> Vec<Result<WriteOutcome, StoreError>> {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let e = db::err(e);
        return group
            .iter()
            .map(|_| Err(StoreError::Database(e.to_string())))
            .collect();
    }
    let now = hale_fhir::date::now_millis();
    let mut results = Vec::with_capacity(group.len());
    for (batch, _) in group {
        let outcome = conn
            .execute_batch("SAVEPOINT batch")
            .map_err(db::err)
            .and_then(|()| engine::apply(&mut SqliteDb(conn), keys, batch, now));
        match outcome {
            Ok(o) => {
                results.push(
                    conn.execute_batch("RELEASE batch")
                        .map_err(db::err)
                        .map(|()| o),
                );
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK TO batch; RELEASE batch");
                results.push(Err(e));
            }
        }
    }
    if let Err(e) = conn.execute_batch("COMMIT") {
        let _ = conn.execute_batch("ROLLBACK");
        let message = db::err(e).to_string();
        return group
            .iter()
            .map(|_| Err(StoreError::Database(message.clone())))
            .collect();
    }
    results
}

impl Store for SqliteStore {
    fn write(&self, batch: WriteBatch) -> Result<WriteOutcome, StoreError> {
        // Serialized here, on the caller's thread, not on the one writer (see `Serialized`).
        let batch = engine::prepare(batch)?;
        let (reply, answer) = mpsc::sync_channel(1);
        self.writer
            .lock()
            .map_err(|_| StoreError::Database("writer lock poisoned".into()))?
            .as_ref()
            .ok_or_else(|| StoreError::Database("the store is closing".into()))?
            .send((batch, reply))
            .map_err(|_| StoreError::Database("the writer thread has stopped".into()))?;
        let (outcome, batch) = answer
            .recv()
            .map_err(|_| StoreError::Database("the writer thread has stopped".into()))?;
        let outcome = outcome?;
        engine::forget_erased(&self.keys, &batch.batch);
        Ok(outcome)
    }

    fn read(
        &self,
        scope: Option<&RecordId>,
        rtype: &str,
        id: &str,
    ) -> Result<Option<StoredResource>, StoreError> {
        self.with_reader(|db, keys| engine::read(db, keys, scope, rtype, id))
    }

    fn vread(
        &self,
        scope: Option<&RecordId>,
        rtype: &str,
        id: &str,
        version: i64,
    ) -> Result<Option<StoredResource>, StoreError> {
        self.with_reader(|db, keys| engine::vread(db, keys, scope, rtype, id, version))
    }

    fn history(
        &self,
        scope: Option<&RecordId>,
        query: &HistoryQuery,
    ) -> Result<Vec<StoredResource>, StoreError> {
        self.with_reader(|db, keys| engine::history(db, keys, scope, query))
    }

    fn search(
        &self,
        scope: Option<&RecordId>,
        query: &SearchQuery,
    ) -> Result<SearchPage, StoreError> {
        self.with_reader(|db, keys| engine::search(db, keys, scope, query))
    }

    fn everything(&self, record: &RecordId) -> Result<Vec<StoredResource>, StoreError> {
        self.with_reader(|db, keys| engine::everything(db, keys, record))
    }

    fn sample_buckets(
        &self,
        record: &RecordId,
        metric: &str,
        from: i64,
        to: i64,
        bucket_ms: i64,
    ) -> Result<Vec<hale_store::SampleBucket>, StoreError> {
        self.with_reader(|db, _| engine::sample_buckets(db, record, metric, from, to, bucket_ms))
    }

    fn audit_of_record(
        &self,
        record: &RecordId,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<hale_store::StoredAuditEntry>, StoreError> {
        self.with_reader(|db, _| hale_store::audit::of_record(db, record, before, limit))
    }

    fn audit_verify(&self) -> Result<hale_store::Verification, StoreError> {
        self.with_reader(|db, _| hale_store::audit::verify(db, self.keys.audit_key()))
    }

    fn audit_checkpoints(&self) -> Result<Vec<hale_store::Checkpoint>, StoreError> {
        self.with_reader(|db, _| hale_store::audit::checkpoints(db))
    }

    fn sample_metrics(&self, record: &RecordId) -> Result<Vec<String>, StoreError> {
        self.with_reader(|db, _| engine::sample_metrics(db, record))
    }

    fn sample_count(&self, record: &RecordId) -> Result<i64, StoreError> {
        self.with_reader(|db, _| engine::sample_count(db, record))
    }

    fn limit_blocked_until(&self, keys: &[String]) -> Result<i64, StoreError> {
        self.with_reader(|db, _| engine::limit_blocked_until(db, keys))
    }

    fn samples_after(
        &self,
        record: &RecordId,
        after: Option<&SampleRow>,
        limit: usize,
    ) -> Result<Vec<SampleRow>, StoreError> {
        self.with_reader(|db, _| engine::samples_after(db, record, after, limit))
    }

    fn account(&self, id: &str) -> Result<Option<hale_store::Account>, StoreError> {
        self.with_reader(|db, _| hale_store::accounts::account(db, id))
    }

    fn account_by_email(&self, email: &str) -> Result<Option<hale_store::Account>, StoreError> {
        self.with_reader(|db, _| hale_store::accounts::account_by_email(db, email))
    }

    fn accounts_of_record(
        &self,
        record: &RecordId,
    ) -> Result<Vec<hale_store::Account>, StoreError> {
        self.with_reader(|db, _| hale_store::accounts::accounts_of_record(db, record))
    }

    fn session(&self, key_hash: &str) -> Result<Option<hale_store::Session>, StoreError> {
        self.with_reader(|db, _| hale_store::accounts::session(db, key_hash))
    }

    fn sessions_of(&self, account_id: &str) -> Result<Vec<hale_store::Session>, StoreError> {
        self.with_reader(|db, _| hale_store::accounts::sessions_of(db, account_id))
    }

    fn one_time_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<hale_store::OneTimeToken>, StoreError> {
        self.with_reader(|db, _| hale_store::accounts::token(db, token_hash))
    }

    fn recovery_codes_left(&self, account_id: &str) -> Result<i64, StoreError> {
        self.with_reader(|db, _| hale_store::accounts::recovery_codes_left(db, account_id))
    }

    fn oauth_client(&self, client_id: &str) -> Result<Option<hale_store::OAuthClient>, StoreError> {
        self.with_reader(|db, _| hale_store::oauth::client(db, client_id))
    }

    fn account_identity(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<hale_store::AccountIdentity>, StoreError> {
        self.with_reader(|db, _| hale_store::accounts::identity(db, issuer, subject))
    }

    fn identities_of_account(
        &self,
        account_id: &str,
    ) -> Result<Vec<hale_store::AccountIdentity>, StoreError> {
        self.with_reader(|db, _| hale_store::accounts::identities_of(db, account_id))
    }

    fn passkeys_of(&self, account_id: &str) -> Result<Vec<hale_store::StoredPasskey>, StoreError> {
        self.with_reader(|db, _| hale_store::accounts::passkeys_of(db, account_id))
    }

    fn organisations(&self) -> Result<Vec<hale_store::Organisation>, StoreError> {
        self.with_reader(|db, _| hale_store::oauth::organisations(db))
    }

    fn oauth_token(&self, token_hash: &str) -> Result<Option<hale_store::OAuthToken>, StoreError> {
        self.with_reader(|db, _| hale_store::oauth::token(db, token_hash))
    }

    fn record_exists(&self, record: &RecordId) -> Result<bool, StoreError> {
        self.with_reader(|db, _| engine::record_exists(db, record))
    }

    fn count_by_type(&self, record: &RecordId) -> Result<Vec<(String, i64)>, StoreError> {
        self.with_reader(|db, _| engine::count_by_type(db, record))
    }

    fn inline_reads(&self) -> bool {
        true
    }

    fn backup(&self, dest: &Path) -> Result<(), StoreError> {
        // SQLite's online backup, page by page, into a new file opened with the same key and
        // cipher settings: a consistent copy, as unreadable without the key as the original.
        if dest.exists() {
            return Err(StoreError::Database(
                "the backup file exists already; choose a new name".into(),
            ));
        }
        let src = open_connection(&self.path, &self.sqlcipher_key)?;
        let mut out = open_connection(dest, &self.sqlcipher_key)?;
        {
            let backup = rusqlite::backup::Backup::new(&src, &mut out).map_err(db::err)?;
            backup
                .run_to_completion(1024, Duration::from_millis(0), None)
                .map_err(db::err)?;
        }
        out.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE")
            .map_err(db::err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    struct TempStore {
        store: SqliteStore,
        _dir: tempfile::TempDir,
    }

    impl std::ops::Deref for TempStore {
        type Target = SqliteStore;
        fn deref(&self) -> &SqliteStore {
            &self.store
        }
    }

    fn fresh() -> Option<TempStore> {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("hale.db"), &MasterKey::generate()).unwrap();
        Some(TempStore { store, _dir: dir })
    }

    mod conformance {
        use super::fresh;
        hale_store::conformance_tests!(fresh);
    }

    /// The nice value of each of this process's threads with this name (from `/proc`).
    #[cfg(target_os = "linux")]
    fn nice_of_threads(name: &str) -> Vec<i32> {
        let mut found = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap() {
            let dir = task.unwrap().path();
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            if comm.trim_end() != name {
                continue;
            }
            let stat = std::fs::read_to_string(dir.join("stat")).unwrap();
            // After the name in parentheses: state is field 3, nice field 19.
            let after = &stat[stat.rfind(')').unwrap() + 2..];
            found.push(after.split(' ').nth(16).unwrap().parse().unwrap());
        }
        found
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_writer_runs_ahead_of_request_threads_where_allowed_and_background_work_behind() {
        // Whether this process may raise a thread's priority, tried on a thread of its own.
        let allowed = std::thread::spawn(|| {
            rustix::process::setpriority_process(None, super::WRITER_NICE).is_ok()
        })
        .join()
        .unwrap();
        let own = rustix::process::getpriority_process(None).unwrap();
        let store = fresh().unwrap();
        let writers = || {
            let found = nice_of_threads("hale-sqlite-wri");
            assert!(!found.is_empty(), "no writer thread found");
            found
        };
        // A write a request waits for: ahead, where allowed.
        store
            .write(hale_store::WriteBatch {
                ops: vec![hale_store::WriteOp::LimitCleared { key: "k".into() }],
            })
            .unwrap();
        let expected = if allowed { super::WRITER_NICE } else { own };
        assert!(
            writers().iter().all(|n| *n == expected),
            "after a write: {:?}, expected {expected} (allowed: {allowed})",
            writers()
        );
        // The log of reads, which nobody waits for: behind the readers.
        let record = hale_core::RecordId::parse("r1").unwrap();
        store
            .write(hale_store::WriteBatch {
                ops: vec![hale_store::WriteOp::AuditAll(vec![
                    hale_store::conformance::audit_entry(&record, 1),
                ])],
            })
            .unwrap();
        let behind = if allowed {
            own + super::BACKGROUND_NICE
        } else {
            own
        };
        assert!(
            writers().iter().all(|n| *n == behind),
            "after appending reads: {:?}, expected {behind}",
            writers()
        );
        // Checkpoints, always behind (lowering a thread's priority needs no permission).
        let checkpointers = nice_of_threads("hale-sqlite-che");
        assert!(!checkpointers.is_empty(), "no checkpoint thread found");
        assert!(
            checkpointers
                .iter()
                .all(|n| *n == own + super::BACKGROUND_NICE),
            "checkpoint threads at {checkpointers:?}"
        );
        assert_eq!(rustix::process::getpriority_process(None).unwrap(), own);
    }

    /// Several writers, back to back, for longer than the checkpoint thread takes to catch up:
    /// the WAL stays near its limit (here 1 MiB) instead of growing with everything written,
    /// and all of it is there.
    #[test]
    fn a_steady_stream_of_writes_keeps_the_wal_near_its_limit() {
        const LIMIT: u64 = 1 << 20;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hale.db");
        let store = Arc::new(
            SqliteStore::open_with_wal_limit(&path, &MasterKey::generate(), LIMIT).unwrap(),
        );
        let record = hale_store::conformance::new_record(store.as_ref(), "p1");
        let largest = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let (store, record, largest) =
                    (Arc::clone(&store), record.clone(), Arc::clone(&largest));
                let wal = wal_path(&path);
                std::thread::spawn(move || {
                    for b in 0..40 {
                        let entries = (0..500)
                            .map(|n| {
                                hale_store::conformance::audit_entry(
                                    &record,
                                    w * 1_000_000 + b * 1000 + n,
                                )
                            })
                            .collect();
                        store
                            .write(hale_store::WriteBatch {
                                ops: vec![hale_store::WriteOp::AuditAll(entries)],
                            })
                            .unwrap();
                        let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
                        largest.fetch_max(size, std::sync::atomic::Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let verified = store.audit_verify().unwrap();
        assert_eq!(verified.entries, 4 * 40 * 500);
        assert_eq!(verified.first_bad, None);
        let largest = largest.load(std::sync::atomic::Ordering::Relaxed);
        assert!(
            largest < 8 * LIMIT,
            "the WAL reached {largest} bytes, against a limit of {LIMIT}"
        );
        let written = std::fs::metadata(&path).unwrap().len();
        assert!(written > 12 * LIMIT, "only {written} bytes were written");
    }

    /// Each way of tampering with the audit table, on a log of ten entries (a checkpoint
    /// after the fourth), and the entry `hale audit verify` must name.
    #[test]
    fn audit_tampering_is_found_every_time_and_the_first_bad_entry_named() {
        let cases: [(&str, i64); 7] = [
            (
                "UPDATE audit_events SET what = 'Observation/other' WHERE seq = 3",
                3,
            ),
            (
                "UPDATE audit_events SET actor = 'someone-else' WHERE seq = 7",
                7,
            ),
            ("DELETE FROM audit_events WHERE seq = 5", 5),
            // A back-dated entry slipped in: it takes entry 4's place and pushes the rest on.
            (
                "UPDATE audit_events SET seq = seq + 100 WHERE seq >= 4; \
                 UPDATE audit_events SET seq = seq - 99 WHERE seq >= 104; \
                 INSERT INTO audit_events SELECT 4, 1, record_id, actor, on_behalf_of, app, action, what, purpose, outcome, request_id, hash FROM audit_events WHERE seq = 3",
                4,
            ),
            // Two entries swapped.
            (
                "UPDATE audit_events SET seq = -6 WHERE seq = 6; \
                 UPDATE audit_events SET seq = 6 WHERE seq = 8; \
                 UPDATE audit_events SET seq = 8 WHERE seq = -6",
                6,
            ),
            ("DELETE FROM audit_events WHERE seq > 8", 9),
            // Cut back to before the checkpoint, head and all.
            (
                "DELETE FROM audit_events WHERE seq > 2; \
                 UPDATE audit_head SET seq = 2, hash = (SELECT hash FROM audit_events WHERE seq = 2)",
                3,
            ),
        ];
        for (sql, first_bad) in cases {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("hale.db");
            let master = MasterKey::generate();
            let store = SqliteStore::open(&path, &master).unwrap();
            let record = hale_store::conformance::new_record(&store, "p1");
            hale_store::conformance::append_audit(&store, &record, 4);
            store
                .write(hale_store::WriteBatch {
                    ops: vec![hale_store::WriteOp::AuditCheckpoint],
                })
                .unwrap();
            for n in 5..=10 {
                store
                    .write(hale_store::WriteBatch {
                        ops: vec![hale_store::WriteOp::Audit(
                            hale_store::conformance::audit_entry(&record, n),
                        )],
                    })
                    .unwrap();
            }
            assert_eq!(store.audit_verify().unwrap().first_bad, None);
            let raw = db::open_connection(&path, &master.derive("sqlcipher-database")).unwrap();
            raw.execute_batch(sql).unwrap();
            drop(raw);
            let found = store.audit_verify().unwrap().first_bad;
            assert_eq!(
                found.as_ref().map(|f| f.0),
                Some(first_bad),
                "{sql}: {found:?}"
            );
        }
    }

    /// A new database with `migrations` applied, as an older release would have left it.
    fn database_at(migrations: &[(u32, &str)]) -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::generate().derive("sqlcipher-database");
        let mut conn = db::open_connection(&dir.path().join("hale.db"), &key).unwrap();
        apply_migrations(&mut conn, migrations).unwrap();
        (dir, conn)
    }

    /// A database made before migration 8 keeps every version, byte for byte, when its
    /// content moves to a rowid table, and a version still cannot be written twice.
    #[test]
    fn upgrading_keeps_every_version_of_every_resource() {
        let (_dir, mut conn) = database_at(&MIGRATIONS[..7]);
        let content: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        for version in 1..=3i64 {
            conn.execute(
                "INSERT INTO resource_versions (record_id, rtype, id, version, updated_at, method, content) \
                 VALUES ('r1', 'Observation', 'o1', ?1, ?2, 'update', ?3)",
                rusqlite::params![version, 1000 + version, &content[..1000 * version as usize]],
            )
            .unwrap();
        }
        let read = |conn: &Connection| -> Vec<(i64, i64, Vec<u8>)> {
            let mut st = conn
                .prepare(
                    "SELECT version, updated_at, content FROM resource_versions ORDER BY version",
                )
                .unwrap();
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let before = read(&conn);
        migrate(&mut conn).unwrap();
        assert_eq!(read(&conn), before);
        assert_eq!(before.len(), 3);
        // Now a rowid table: content lives on the table's leaves, not in an index key.
        let rowids: i64 = conn
            .query_row("SELECT COUNT(rowid) FROM resource_versions", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(rowids, 3);
        let again = conn.execute(
            "INSERT INTO resource_versions (record_id, rtype, id, version, updated_at, method, content) \
             VALUES ('r1', 'Observation', 'o1', 2, 0, 'update', NULL)",
            [],
        );
        assert!(again.is_err(), "a second version 2 was accepted");
    }

    #[test]
    fn upgrading_removes_the_rows_combined_parameters_no_longer_use() {
        let (_dir, mut conn) = database_at(&MIGRATIONS[..9]);
        for param in ["code", "combo-code"] {
            conn.execute(
                "INSERT INTO idx_token (record_id, rtype, param, code, system, text, id) \
                 VALUES ('r1', 'Observation', ?1, '8867-4', 'http://loinc.org', '', 'o1')",
                [param],
            )
            .unwrap();
        }
        migrate(&mut conn).unwrap();
        let params: Vec<String> = conn
            .prepare("SELECT param FROM idx_token")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(params, ["code"]);
    }

    /// What SQLite plans for a search, one line per step, and whether
    /// any step reads a whole table or index. Reading back the page a subquery made (the
    /// top-level `SCAN r` of `CO-ROUTINE r`) is not such a step.
    fn plan_of(conn: &Connection, sql: &hale_store::sql::Sql) -> (String, bool) {
        let mut st = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", sql.text))
            .unwrap();
        let params: Vec<_> = sql.params.iter().map(db::to_sql).collect();
        let steps: Vec<(i64, String)> = st
            .query_map(rusqlite::params_from_iter(params), |r| {
                Ok((r.get(1)?, r.get(3)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let page = steps.iter().any(|(_, d)| d == "CO-ROUTINE r");
        let scans = steps
            .iter()
            .any(|(parent, d)| d.starts_with("SCAN") && !(page && *parent == 0 && d == "SCAN r"));
        let text: Vec<&str> = steps.iter().map(|(_, d)| d.as_str()).collect();
        (text.join("\n"), scans)
    }

    #[test]
    fn searches_across_records_read_an_index_never_every_record() {
        let (_dir, conn) = database_at(MIGRATIONS);
        let defs = hale_fhir::Definitions::r4();
        let query = |rtype: &str, pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            hale_fhir::search::parse(defs, rtype, &pairs, true).unwrap()
        };
        let nhs = ("identifier", "https://fhir.nhs.uk/Id/nhs-number|9434765919");
        let searches = [
            query("Patient", &[nhs]),
            query("Consent", &[("actor:identifier", "urn:hale:account|a1")]),
            // Other clauses only probe the rows the identifier found, in their own record.
            query(
                "Patient",
                &[nhs, ("general-practitioner:Practitioner.name", "Hale")],
            ),
            query(
                "Patient",
                &[nhs, ("_has:Observation:patient:code", "8867-4")],
            ),
            query(
                "Patient",
                &[nhs, ("name", "Ann"), ("birthdate:missing", "true")],
            ),
        ];
        for q in &searches {
            let (plan, scans) = plan_of(&conn, &hale_store::sql::search_page(None, q));
            assert!(
                plan.contains("idx_token_across_records"),
                "{}: {plan}",
                q.resource_type
            );
            assert!(!scans, "{}: {plan}", q.resource_type);
        }
        // What a page includes is read in the page's records.
        let revinclude = query(
            "Patient",
            &[
                nhs,
                ("_revinclude", "Observation:patient"),
                ("_include", "Patient:general-practitioner"),
            ],
        );
        let record = RecordId::parse("r1").unwrap();
        for scope in [None, Some(&record)] {
            for (inc, reverse) in [
                (&revinclude.revinclude[0], true),
                (&revinclude.include[0], false),
            ] {
                let sql = hale_store::sql::include(
                    scope,
                    inc,
                    "Patient",
                    &["p1".into()],
                    &[&record],
                    reverse,
                );
                let (plan, scans) = plan_of(&conn, &sql);
                assert!(!scans, "include (reverse {reverse}, {scope:?}): {plan}");
            }
        }
        // Within a record, following references either way reads the reference table's key.
        for q in [
            query("Observation", &[("subject:Patient.name", "Ann")]),
            query("Patient", &[("_has:Observation:subject:code", "8867-4")]),
            query("Observation", &[("patient", "r1"), ("code", "8867-4")]),
        ] {
            let (plan, scans) = plan_of(&conn, &hale_store::sql::search_page(Some(&record), &q));
            assert!(!scans, "{}: {plan}", q.resource_type);
        }
    }

    #[test]
    fn a_failed_migration_stops_start_up_loudly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hale.db");
        let master = MasterKey::generate();
        // A database whose tables clash with the first migration.
        let conn = db::open_connection(&path, &master.derive("sqlcipher-database")).unwrap();
        conn.execute_batch("CREATE TABLE records (something_else TEXT)")
            .unwrap();
        drop(conn);
        let err = SqliteStore::open(&path, &master).unwrap_err();
        assert!(
            matches!(err, StoreError::Migration { version: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn a_wrong_key_is_refused_and_the_file_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hale.db");
        drop(SqliteStore::open(&path, &MasterKey::generate()).unwrap());
        let before = std::fs::read(&path).unwrap();
        let err = SqliteStore::open(&path, &MasterKey::generate()).unwrap_err();
        assert!(matches!(err, StoreError::Open(_)), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }
}
