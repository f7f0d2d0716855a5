//! The rusqlite side of [`engine::Db`](hale_store::engine::Db), and opening connections.

use std::path::Path;

use hale_store::StoreError;
use hale_store::engine::{Db, Row};
use hale_store::sql::SqlValue;
use rusqlite::types::{ToSqlOutput, Value as SqliteValue, ValueRef};
use rusqlite::{Connection, OpenFlags};

use crate::BUSY_TIMEOUT;

pub(crate) fn err(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

/// Opens a connection with the key and the pragmas every connection needs.
pub(crate) fn open_connection(path: &Path, key: &[u8; 32]) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StoreError::Open(e.to_string()))?;
    let hex = hale_core::hex(key);
    // A raw key (x'...') skips SQLCipher's PBKDF2: the key is already 256 random bits.
    // HMAC-SHA256 rather than SQLCipher 4's default SHA512 for the per-page MAC: as strong
    // for integrity here, and several times faster on CPUs with SHA extensions (page
    // encryption was a quarter of the write path's time). Every connection must agree, so
    // it is set here, once, for all of them; changing it makes existing files unreadable.
    conn.execute_batch(&format!(
        "PRAGMA key = \"x'{hex}'\"; PRAGMA cipher_hmac_algorithm = HMAC_SHA256; \
         PRAGMA cipher_kdf_algorithm = PBKDF2_HMAC_SHA256;"
    ))
    .map_err(|e| StoreError::Open(e.to_string()))?;
    // The first read proves the key: a wrong key reads as "file is not a database".
    conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })
    .map_err(|_| StoreError::Open("the file is not a Hale database, or the key is wrong".into()))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
    // The engine uses a few dozen distinct statements; rusqlite's default cache of 16 would
    // re-prepare them on every write.
    conn.set_prepared_statement_cache_capacity(256);
    // WAL + synchronous=FULL: a commit is on disk (WAL fsynced) before it is acknowledged.
    // secure_delete overwrites freed pages, so erased content does not linger in the file.
    // journal_size_limit: once checkpointed and rewound, the WAL is cut back to 64 MiB (after
    // a large import it had grown past the database itself, and stayed that size).
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA secure_delete = ON; \
         PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -16000; \
         PRAGMA journal_size_limit = 67108864;",
    )
    .map_err(err)?;
    Ok(conn)
}

/// A connection seen as an engine [`Db`].
pub(crate) struct SqliteDb<'a>(pub &'a Connection);

pub(crate) fn to_sql(v: &SqlValue) -> ToSqlOutput<'_> {
    match v {
        SqlValue::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        SqlValue::Int(i) => ToSqlOutput::Owned(SqliteValue::Integer(*i)),
        SqlValue::Real(f) => ToSqlOutput::Owned(SqliteValue::Real(*f)),
        SqlValue::Blob(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        SqlValue::Null => ToSqlOutput::Owned(SqliteValue::Null),
    }
}

fn bind(stmt: &mut rusqlite::Statement<'_>, params: &[SqlValue]) -> Result<(), StoreError> {
    for (i, p) in params.iter().enumerate() {
        stmt.raw_bind_parameter(i + 1, to_sql(p)).map_err(err)?;
    }
    Ok(())
}

impl Db for SqliteDb<'_> {
    fn query(&mut self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, StoreError> {
        let mut stmt = self.0.prepare_cached(sql).map_err(err)?;
        bind(&mut stmt, params)?;
        let n = stmt.column_count();
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(err)? {
            let mut values = Vec::with_capacity(n);
            for i in 0..n {
                values.push(match row.get_ref(i).map_err(err)? {
                    ValueRef::Null => SqlValue::Null,
                    ValueRef::Integer(i) => SqlValue::Int(i),
                    ValueRef::Real(f) => SqlValue::Real(f),
                    ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => SqlValue::Blob(b.to_vec()),
                });
            }
            out.push(values);
        }
        Ok(out)
    }

    fn execute(&mut self, sql: &str, params: &[SqlValue]) -> Result<u64, StoreError> {
        let mut stmt = self.0.prepare_cached(sql).map_err(err)?;
        bind(&mut stmt, params)?;
        Ok(stmt.raw_execute().map_err(err)? as u64)
    }

    fn execute_each(
        &mut self,
        sql: &str,
        each: &mut dyn Iterator<Item = Vec<SqlValue>>,
    ) -> Result<u64, StoreError> {
        // Taken from the cache once: each `prepare_cached` hashes the SQL text to find it.
        let mut stmt = self.0.prepare_cached(sql).map_err(err)?;
        let mut changed = 0;
        for params in each {
            bind(&mut stmt, &params)?;
            changed += stmt.raw_execute().map_err(err)? as u64;
        }
        Ok(changed)
    }
}
