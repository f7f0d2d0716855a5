//! Hale's PostgreSQL backend, for several `hale serve` processes sharing one database.
//!
//! The storage logic is `hale-store`'s engine, shared with SQLite; this crate owns the
//! connections, transactions and migrations. Durability: every session runs with
//! `synchronous_commit = on`, so a commit is acknowledged only once it is flushed to the WAL.
//! Content is sealed per record before it reaches the server, so the database and its
//! backups hold no readable health data without Hale's master key; the search index is
//! plaintext and relies on the server's own disk encryption (see docs/architecture.md).
//!
//! Must not: decide access, or be named anywhere but `hale-server` and the tests.

use std::sync::Mutex;

use hale_core::RecordId;
use hale_fhir::search::SearchQuery;
use hale_store::engine::{self, Db, Row};
use hale_store::sql::{SqlValue, numbered};
use hale_store::{
    HistoryQuery, Keyring, MasterKey, SampleRow, SearchPage, Store, StoreError, StoredResource,
    WriteBatch, WriteOutcome,
};
use postgres::types::{ToSql, Type};
use postgres::{Client, NoTls};

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
    // 8 was SQLite's alone (its resource versions as a rowid table); the numbers stay in step.
    (
        9,
        include_str!("../migrations/0009_searches_across_records.sql"),
    ),
    (10, include_str!("../migrations/0010_union_parameters.sql")),
];
const POOL_MAX: usize = 16;
/// Serialises migrations when several servers start at once.
const MIGRATION_LOCK: i64 = 0x4841_4c45; // "HALE"

fn err(e: postgres::Error) -> StoreError {
    // A unique violation means a concurrent writer created the same resource first.
    if e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) {
        return StoreError::VersionConflict {
            resource_type: String::new(),
            id: String::new(),
            expected: "absent".into(),
            actual: "written concurrently".into(),
        };
    }
    StoreError::Database(e.to_string())
}

/// The PostgreSQL store.
pub struct PostgresStore {
    url: String,
    keys: Keyring,
    pool: Mutex<Vec<Client>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

fn connect(url: &str) -> Result<Client, StoreError> {
    let mut client = Client::connect(url, NoTls).map_err(|e| StoreError::Open(e.to_string()))?;
    client
        .batch_execute("SET synchronous_commit = on; SET client_min_messages = warning")
        .map_err(err)?;
    Ok(client)
}

impl PostgresStore {
    /// Connects to `url` (`postgres://…`) and runs migrations.
    pub fn open(url: &str, master: &MasterKey) -> Result<Self, StoreError> {
        let mut client = connect(url)?;
        migrate(&mut client)?;
        Ok(Self {
            url: url.to_owned(),
            keys: Keyring::new(master),
            pool: Mutex::new(vec![client]),
        })
    }

    fn with_client<T>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self.pool.lock().ok().and_then(|mut p| p.pop());
        let mut client = match pooled {
            Some(c) if !c.is_closed() => c,
            _ => connect(&self.url)?,
        };
        let out = f(&mut client);
        if let Ok(mut p) = self.pool.lock()
            && p.len() < POOL_MAX
            && !client.is_closed()
        {
            p.push(client);
        }
        out
    }

    /// Runs `f` in one transaction (a consistent snapshot for reads, atomic for writes).
    fn in_transaction<T>(
        &self,
        f: impl FnOnce(&mut PgDb<'_, '_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with_client(|client| {
            let mut tx = client.transaction().map_err(err)?;
            let out = f(&mut PgDb(&mut tx))?;
            tx.commit().map_err(err)?;
            Ok(out)
        })
    }
}

fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let mut tx = client.transaction().map_err(err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(err)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)")
        .map_err(err)?;
    for (version, sql) in MIGRATIONS {
        let v = i32::try_from(*version).unwrap_or(i32::MAX);
        let done = !tx
            .query("SELECT 1 FROM schema_migrations WHERE version = $1", &[&v])
            .map_err(err)?
            .is_empty();
        if done {
            continue;
        }
        let fail = |e: postgres::Error| StoreError::Migration {
            version: *version,
            message: e.to_string(),
        };
        tx.batch_execute(sql).map_err(fail)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
            &[&v, &hale_fhir::date::now_millis()],
        )
        .map_err(fail)?;
        tracing::info!(version, "applied postgres migration");
    }
    tx.commit().map_err(err)
}

struct PgDb<'a, 'b>(&'a mut postgres::Transaction<'b>);

/// SQL NULL for a parameter of any type (an `Option<T>` would fix the type to `T`'s).
#[derive(Debug)]
struct Null;

impl ToSql for Null {
    fn to_sql(
        &self,
        _: &Type,
        _: &mut postgres::types::private::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        Ok(postgres::types::IsNull::Yes)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

fn params(values: &[SqlValue]) -> Vec<Box<dyn ToSql + Sync>> {
    values
        .iter()
        .map(|v| -> Box<dyn ToSql + Sync> {
            match v {
                SqlValue::Text(s) => Box::new(s.clone()),
                SqlValue::Int(i) => Box::new(*i),
                SqlValue::Real(f) => Box::new(*f),
                SqlValue::Blob(b) => Box::new(b.clone()),
                SqlValue::Null => Box::new(Null),
            }
        })
        .collect()
}

impl Db for PgDb<'_, '_> {
    fn query(&mut self, sql: &str, values: &[SqlValue]) -> Result<Vec<Row>, StoreError> {
        let owned = params(values);
        let refs: Vec<&(dyn ToSql + Sync)> = owned.iter().map(|b| b.as_ref()).collect();
        let stmt = self.0.prepare(&numbered(sql)).map_err(err)?;
        let rows = self.0.query(&stmt, &refs).map_err(err)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut values = Vec::with_capacity(row.len());
            for (i, col) in row.columns().iter().enumerate() {
                let v = match *col.type_() {
                    Type::TEXT | Type::VARCHAR => row
                        .try_get::<_, Option<String>>(i)
                        .map_err(err)?
                        .map(SqlValue::Text),
                    Type::INT8 => row
                        .try_get::<_, Option<i64>>(i)
                        .map_err(err)?
                        .map(SqlValue::Int),
                    Type::INT4 => row
                        .try_get::<_, Option<i32>>(i)
                        .map_err(err)?
                        .map(|v| SqlValue::Int(i64::from(v))),
                    Type::FLOAT8 => row
                        .try_get::<_, Option<f64>>(i)
                        .map_err(err)?
                        .map(SqlValue::Real),
                    Type::BYTEA => row
                        .try_get::<_, Option<Vec<u8>>>(i)
                        .map_err(err)?
                        .map(SqlValue::Blob),
                    _ => {
                        return Err(StoreError::Database(format!(
                            "unexpected column type {}",
                            col.type_()
                        )));
                    }
                };
                values.push(v.unwrap_or(SqlValue::Null));
            }
            out.push(values);
        }
        Ok(out)
    }

    fn execute(&mut self, sql: &str, values: &[SqlValue]) -> Result<u64, StoreError> {
        let owned = params(values);
        let refs: Vec<&(dyn ToSql + Sync)> = owned.iter().map(|b| b.as_ref()).collect();
        let stmt = self.0.prepare(&numbered(sql)).map_err(err)?;
        self.0.execute(&stmt, &refs).map_err(err)
    }

    fn execute_each(
        &mut self,
        sql: &str,
        each: &mut dyn Iterator<Item = Vec<SqlValue>>,
    ) -> Result<u64, StoreError> {
        // Prepared once: each `prepare` is a round trip to the server.
        let stmt = self.0.prepare(&numbered(sql)).map_err(err)?;
        let mut changed = 0;
        for values in each {
            let owned = params(&values);
            let refs: Vec<&(dyn ToSql + Sync)> = owned.iter().map(|b| b.as_ref()).collect();
            changed += self.0.execute(&stmt, &refs).map_err(err)?;
        }
        Ok(changed)
    }

    fn lock_clause(&self) -> &'static str {
        " FOR UPDATE"
    }
}

impl Store for PostgresStore {
    fn write(&self, batch: WriteBatch) -> Result<WriteOutcome, StoreError> {
        let prepared = engine::prepare(batch)?;
        let now = hale_fhir::date::now_millis();
        let outcome = self.in_transaction(|db| engine::apply(db, &self.keys, &prepared, now))?;
        engine::forget_erased(&self.keys, &prepared.batch);
        Ok(outcome)
    }

    fn read(
        &self,
        scope: Option<&RecordId>,
        rtype: &str,
        id: &str,
    ) -> Result<Option<StoredResource>, StoreError> {
        self.in_transaction(|db| engine::read(db, &self.keys, scope, rtype, id))
    }

    fn vread(
        &self,
        scope: Option<&RecordId>,
        rtype: &str,
        id: &str,
        version: i64,
    ) -> Result<Option<StoredResource>, StoreError> {
        self.in_transaction(|db| engine::vread(db, &self.keys, scope, rtype, id, version))
    }

    fn history(
        &self,
        scope: Option<&RecordId>,
        query: &HistoryQuery,
    ) -> Result<Vec<StoredResource>, StoreError> {
        self.in_transaction(|db| engine::history(db, &self.keys, scope, query))
    }

    fn search(
        &self,
        scope: Option<&RecordId>,
        query: &SearchQuery,
    ) -> Result<SearchPage, StoreError> {
        self.in_transaction(|db| engine::search(db, &self.keys, scope, query))
    }

    fn everything(&self, record: &RecordId) -> Result<Vec<StoredResource>, StoreError> {
        self.in_transaction(|db| engine::everything(db, &self.keys, record))
    }

    fn sample_buckets(
        &self,
        record: &RecordId,
        metric: &str,
        from: i64,
        to: i64,
        bucket_ms: i64,
    ) -> Result<Vec<hale_store::SampleBucket>, StoreError> {
        self.in_transaction(|db| engine::sample_buckets(db, record, metric, from, to, bucket_ms))
    }

    fn audit_of_record(
        &self,
        record: &RecordId,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<hale_store::StoredAuditEntry>, StoreError> {
        self.in_transaction(|db| hale_store::audit::of_record(db, record, before, limit))
    }

    fn audit_verify(&self) -> Result<hale_store::Verification, StoreError> {
        self.in_transaction(|db| hale_store::audit::verify(db, self.keys.audit_key()))
    }

    fn audit_checkpoints(&self) -> Result<Vec<hale_store::Checkpoint>, StoreError> {
        self.in_transaction(|db| hale_store::audit::checkpoints(db))
    }

    fn sample_metrics(&self, record: &RecordId) -> Result<Vec<String>, StoreError> {
        self.in_transaction(|db| engine::sample_metrics(db, record))
    }

    fn sample_count(&self, record: &RecordId) -> Result<i64, StoreError> {
        self.in_transaction(|db| engine::sample_count(db, record))
    }

    fn limit_blocked_until(&self, keys: &[String]) -> Result<i64, StoreError> {
        self.in_transaction(|db| engine::limit_blocked_until(db, keys))
    }

    fn samples_after(
        &self,
        record: &RecordId,
        after: Option<&SampleRow>,
        limit: usize,
    ) -> Result<Vec<SampleRow>, StoreError> {
        self.in_transaction(|db| engine::samples_after(db, record, after, limit))
    }

    fn account(&self, id: &str) -> Result<Option<hale_store::Account>, StoreError> {
        self.in_transaction(|db| hale_store::accounts::account(db, id))
    }

    fn account_by_email(&self, email: &str) -> Result<Option<hale_store::Account>, StoreError> {
        self.in_transaction(|db| hale_store::accounts::account_by_email(db, email))
    }

    fn accounts_of_record(
        &self,
        record: &RecordId,
    ) -> Result<Vec<hale_store::Account>, StoreError> {
        self.in_transaction(|db| hale_store::accounts::accounts_of_record(db, record))
    }

    fn session(&self, key_hash: &str) -> Result<Option<hale_store::Session>, StoreError> {
        self.in_transaction(|db| hale_store::accounts::session(db, key_hash))
    }

    fn sessions_of(&self, account_id: &str) -> Result<Vec<hale_store::Session>, StoreError> {
        self.in_transaction(|db| hale_store::accounts::sessions_of(db, account_id))
    }

    fn one_time_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<hale_store::OneTimeToken>, StoreError> {
        self.in_transaction(|db| hale_store::accounts::token(db, token_hash))
    }

    fn recovery_codes_left(&self, account_id: &str) -> Result<i64, StoreError> {
        self.in_transaction(|db| hale_store::accounts::recovery_codes_left(db, account_id))
    }

    fn oauth_client(&self, client_id: &str) -> Result<Option<hale_store::OAuthClient>, StoreError> {
        self.in_transaction(|db| hale_store::oauth::client(db, client_id))
    }

    fn account_identity(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<hale_store::AccountIdentity>, StoreError> {
        self.in_transaction(|db| hale_store::accounts::identity(db, issuer, subject))
    }

    fn identities_of_account(
        &self,
        account_id: &str,
    ) -> Result<Vec<hale_store::AccountIdentity>, StoreError> {
        self.in_transaction(|db| hale_store::accounts::identities_of(db, account_id))
    }

    fn passkeys_of(&self, account_id: &str) -> Result<Vec<hale_store::StoredPasskey>, StoreError> {
        self.in_transaction(|db| hale_store::accounts::passkeys_of(db, account_id))
    }

    fn organisations(&self) -> Result<Vec<hale_store::Organisation>, StoreError> {
        self.in_transaction(|db| hale_store::oauth::organisations(db))
    }

    fn oauth_token(&self, token_hash: &str) -> Result<Option<hale_store::OAuthToken>, StoreError> {
        self.in_transaction(|db| hale_store::oauth::token(db, token_hash))
    }

    fn record_exists(&self, record: &RecordId) -> Result<bool, StoreError> {
        self.in_transaction(|db| engine::record_exists(db, record))
    }

    fn count_by_type(&self, record: &RecordId) -> Result<Vec<(String, i64)>, StoreError> {
        self.in_transaction(|db| engine::count_by_type(db, record))
    }

    fn backup(&self, _dest: &std::path::Path) -> Result<(), StoreError> {
        Err(StoreError::Database(
            "back up PostgreSQL with pg_dump or base backups; content stays sealed per record"
                .into(),
        ))
    }
}

/// A fresh, empty database on the server at `HALE_TEST_POSTGRES_URL`, dropped afterwards.
/// For tests (this crate's and the HTTP suite's).
pub mod testing {
    use super::*;

    /// Owns a throwaway database.
    pub struct TestDatabase {
        /// The URL of the new database.
        pub url: String,
        admin_url: String,
        name: String,
    }

    impl TestDatabase {
        /// Creates one, or `None` when `HALE_TEST_POSTGRES_URL` is not set.
        pub fn create() -> Option<Result<Self, StoreError>> {
            let admin_url = std::env::var("HALE_TEST_POSTGRES_URL").ok()?;
            Some((|| {
                let name = format!("hale_test_{}", uuid_like());
                let mut admin = Client::connect(&admin_url, NoTls)
                    .map_err(|e| StoreError::Open(e.to_string()))?;
                admin
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .map_err(err)?;
                let url = with_database(&admin_url, &name);
                Ok(Self {
                    url,
                    admin_url,
                    name,
                })
            })())
        }
    }

    impl Drop for TestDatabase {
        fn drop(&mut self) {
            if let Ok(mut admin) = Client::connect(&self.admin_url, NoTls) {
                let _ = admin.batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ));
            }
        }
    }

    fn uuid_like() -> String {
        use std::time::{SystemTime, UNIX_EPOCH};
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("{}_{}", std::process::id(), nanos)
    }

    /// `url` with its database name replaced.
    fn with_database(url: &str, name: &str) -> String {
        let (base, query) = match url.split_once('?') {
            Some((b, q)) => (b, format!("?{q}")),
            None => (url, String::new()),
        };
        let authority_end = base.find("://").map_or(0, |i| i + 3);
        match base[authority_end..].find('/') {
            Some(slash) => format!("{}/{name}{query}", &base[..authority_end + slash]),
            None => format!("{base}/{name}{query}"),
        }
    }

    /// A store on a fresh database, which is dropped with it.
    pub struct TestStore {
        store: PostgresStore,
        _db: TestDatabase,
    }

    impl std::ops::Deref for TestStore {
        type Target = PostgresStore;
        fn deref(&self) -> &PostgresStore {
            &self.store
        }
    }

    /// A fresh store, or `None` without `HALE_TEST_POSTGRES_URL`.
    #[allow(clippy::expect_used)]
    pub fn fresh() -> Option<TestStore> {
        let db = TestDatabase::create()?.expect("cannot create a test database");
        let store = PostgresStore::open(&db.url, &MasterKey::generate())
            .expect("cannot open the test database");
        Some(TestStore { store, _db: db })
    }
}

#[cfg(test)]
mod tests {
    mod conformance {
        use crate::testing::fresh;
        hale_store::conformance_tests!(fresh);
    }
}
