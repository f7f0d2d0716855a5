//! Accounts, sign-in sessions, one-time tokens and recovery codes: the rows behind sign-in,
//! written through [`WriteOp`](crate::WriteOp)s like everything else (so they share the
//! durable, group-committed write path) and read through the [`Store`](crate::Store).
//!
//! The store keeps only what it is given: password hashes, digests of session keys, email
//! links and recovery codes, and TOTP secrets already sealed by the application. It never
//! sees a password, a session key or a code.

use hale_core::{AccountKind, RecordId, VerificationLevel};

use crate::StoreError;
use crate::engine::{Db, Row};
use crate::sql::SqlValue;

/// A sign-in account.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    /// A random id (UUID), never shown as a name.
    pub id: String,
    /// The email address, trimmed and lower-cased; unique.
    pub email: String,
    /// What kind of account.
    pub kind: AccountKind,
    /// The record this account owns (a person's), if any.
    pub record: Option<RecordId>,
    /// The argon2id hash in PHC string form.
    pub password_hash: String,
    /// When the address was proven by following the emailed link, ms since the epoch.
    pub email_verified_at: Option<i64>,
    /// How sure we are who they are.
    pub verification_level: VerificationLevel,
    /// The TOTP secret, sealed by the application; `None` until enrolled.
    pub totp_sealed: Option<Vec<u8>>,
    /// The last TOTP time step accepted, so a code is never accepted twice (RFC 6238 §5.2).
    pub totp_last_step: Option<i64>,
    /// When the account was made, ms.
    pub created_at: i64,
    /// For a professional: the organisation they work for.
    pub org: Option<String>,
}

/// A server-side sign-in session. The browser holds a random key; only its digest is here.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// SHA-256 of the session key, hex.
    pub key_hash: String,
    /// Whose session.
    pub account_id: String,
    /// Signed in at, ms.
    pub created_at: i64,
    /// Last request at, ms (updated at most once a minute).
    pub last_seen_at: i64,
    /// When a second factor was completed; `None` while only the password is proven.
    pub second_factor_at: Option<i64>,
    /// A short description of the browser, for the person's list of sessions.
    pub user_agent: String,
}

/// A link sent by email (verify the address, reset the password): single use, expiring.
#[derive(Debug, Clone, PartialEq)]
pub struct OneTimeToken {
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    /// Whose.
    pub account_id: String,
    /// What it is for (`verify-email`, `reset-password`).
    pub purpose: String,
    /// Refused from this instant, ms.
    pub expires_at: i64,
    /// When it was used, if it was.
    pub used_at: Option<i64>,
}

fn t(s: &str) -> SqlValue {
    SqlValue::Text(s.to_owned())
}

fn opt_int(v: Option<i64>) -> SqlValue {
    v.map_or(SqlValue::Null, SqlValue::Int)
}

fn get_text(v: &SqlValue) -> String {
    match v {
        SqlValue::Text(s) => s.clone(),
        _ => String::new(),
    }
}

fn get_int(v: &SqlValue) -> Option<i64> {
    match v {
        SqlValue::Int(i) => Some(*i),
        _ => None,
    }
}

fn bad_row(what: &str) -> StoreError {
    StoreError::Database(format!("unexpected {what} row"))
}

const ACCOUNT_COLUMNS: &str = "account_id, email, kind, record_id, password_hash, \
     email_verified_at, verification_level, totp_sealed, totp_last_step, created_at, org_id";

fn account_from(row: Row) -> Result<Account, StoreError> {
    let [
        id,
        email,
        kind,
        record,
        hash,
        verified,
        level,
        totp,
        last_step,
        created,
        org,
    ] = <[SqlValue; 11]>::try_from(row).map_err(|_| bad_row("account"))?;
    Ok(Account {
        id: get_text(&id),
        email: get_text(&email),
        kind: AccountKind::parse(&get_text(&kind)).ok_or_else(|| bad_row("account kind"))?,
        record: match record {
            SqlValue::Text(r) => Some(RecordId::parse(&r)?),
            _ => None,
        },
        password_hash: get_text(&hash),
        email_verified_at: get_int(&verified),
        verification_level: VerificationLevel::parse(&get_text(&level))
            .ok_or_else(|| bad_row("verification level"))?,
        totp_sealed: match totp {
            SqlValue::Blob(b) => Some(b),
            _ => None,
        },
        totp_last_step: get_int(&last_step),
        created_at: get_int(&created).unwrap_or(0),
        org: match org {
            SqlValue::Text(o) => Some(o),
            _ => None,
        },
    })
}

/// Inserts or replaces an account. An email address already used by another account is a
/// [`StoreError::Duplicate`].
pub(crate) fn put_account(db: &mut dyn Db, a: &Account) -> Result<(), StoreError> {
    let taken = db.query(
        "SELECT account_id FROM accounts WHERE email = ?",
        &[t(&a.email)],
    )?;
    if taken.iter().any(|row| get_text(&row[0]) != a.id) {
        return Err(StoreError::Duplicate(
            "an account with this email address".into(),
        ));
    }
    let params = [
        t(&a.id),
        t(&a.email),
        t(a.kind.as_str()),
        a.record.as_ref().map_or(SqlValue::Null, |r| t(r.as_str())),
        t(&a.password_hash),
        opt_int(a.email_verified_at),
        t(a.verification_level.as_str()),
        a.totp_sealed.clone().map_or(SqlValue::Null, SqlValue::Blob),
        opt_int(a.totp_last_step),
        SqlValue::Int(a.created_at),
        a.org.as_deref().map_or(SqlValue::Null, t),
    ];
    db.execute(
        &format!(
            "INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (account_id) DO UPDATE SET email = excluded.email, kind = excluded.kind, \
             record_id = excluded.record_id, password_hash = excluded.password_hash, \
             email_verified_at = excluded.email_verified_at, \
             verification_level = excluded.verification_level, totp_sealed = excluded.totp_sealed, \
             totp_last_step = excluded.totp_last_step, org_id = excluded.org_id"
        ),
        &params,
    )?;
    Ok(())
}

/// One account by id.
pub fn account(db: &mut dyn Db, id: &str) -> Result<Option<Account>, StoreError> {
    let rows = db.query(
        &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE account_id = ?"),
        &[t(id)],
    )?;
    rows.into_iter().next().map(account_from).transpose()
}

/// One account by its (normalised) email address.
pub fn account_by_email(db: &mut dyn Db, email: &str) -> Result<Option<Account>, StoreError> {
    let rows = db.query(
        &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE email = ?"),
        &[t(email)],
    )?;
    rows.into_iter().next().map(account_from).transpose()
}

/// The accounts that own a record.
pub fn accounts_of_record(db: &mut dyn Db, record: &RecordId) -> Result<Vec<Account>, StoreError> {
    let rows = db.query(
        &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE record_id = ? ORDER BY created_at"),
        &[t(record.as_str())],
    )?;
    rows.into_iter().map(account_from).collect()
}

const SESSION_COLUMNS: &str =
    "key_hash, account_id, created_at, last_seen_at, second_factor_at, user_agent";

fn session_from(row: Row) -> Result<Session, StoreError> {
    let [key, account, created, seen, second, agent] =
        <[SqlValue; 6]>::try_from(row).map_err(|_| bad_row("session"))?;
    Ok(Session {
        key_hash: get_text(&key),
        account_id: get_text(&account),
        created_at: get_int(&created).unwrap_or(0),
        last_seen_at: get_int(&seen).unwrap_or(0),
        second_factor_at: get_int(&second),
        user_agent: get_text(&agent),
    })
}

/// Inserts or replaces a session.
pub(crate) fn put_session(db: &mut dyn Db, s: &Session) -> Result<(), StoreError> {
    db.execute(
        &format!(
            "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (key_hash) DO UPDATE SET last_seen_at = excluded.last_seen_at, \
             second_factor_at = excluded.second_factor_at, user_agent = excluded.user_agent"
        ),
        &[
            t(&s.key_hash),
            t(&s.account_id),
            SqlValue::Int(s.created_at),
            SqlValue::Int(s.last_seen_at),
            opt_int(s.second_factor_at),
            t(&s.user_agent),
        ],
    )?;
    Ok(())
}

/// Ends one session of an account, or all of them; returns how many ended.
pub(crate) fn end_sessions(
    db: &mut dyn Db,
    account_id: &str,
    only: Option<&str>,
) -> Result<u64, StoreError> {
    match only {
        Some(key_hash) => db.execute(
            "DELETE FROM sessions WHERE account_id = ? AND key_hash = ?",
            &[t(account_id), t(key_hash)],
        ),
        None => db.execute(
            "DELETE FROM sessions WHERE account_id = ?",
            &[t(account_id)],
        ),
    }
}

/// One session by the digest of its key.
pub fn session(db: &mut dyn Db, key_hash: &str) -> Result<Option<Session>, StoreError> {
    let rows = db.query(
        &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE key_hash = ?"),
        &[t(key_hash)],
    )?;
    rows.into_iter().next().map(session_from).transpose()
}

/// An account's sessions, most recently used first.
pub fn sessions_of(db: &mut dyn Db, account_id: &str) -> Result<Vec<Session>, StoreError> {
    let rows = db.query(
        &format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE account_id = ? ORDER BY last_seen_at DESC"
        ),
        &[t(account_id)],
    )?;
    rows.into_iter().map(session_from).collect()
}

/// Stores a new one-time token.
pub(crate) fn put_token(db: &mut dyn Db, tok: &OneTimeToken) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO one_time_tokens (token_hash, account_id, purpose, expires_at, used_at) \
         VALUES (?, ?, ?, ?, ?)",
        &[
            t(&tok.token_hash),
            t(&tok.account_id),
            t(&tok.purpose),
            SqlValue::Int(tok.expires_at),
            opt_int(tok.used_at),
        ],
    )?;
    Ok(())
}

/// Marks a token used, if it is unused and unexpired at `now`; otherwise
/// [`StoreError::Spent`], so two requests racing with one link cannot both succeed.
pub(crate) fn use_token(db: &mut dyn Db, token_hash: &str, now: i64) -> Result<(), StoreError> {
    let changed = db.execute(
        "UPDATE one_time_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
        &[SqlValue::Int(now), t(token_hash), SqlValue::Int(now)],
    )?;
    if changed == 1 {
        Ok(())
    } else {
        Err(StoreError::Spent("link".into()))
    }
}

/// One token by its digest (used or not).
pub fn token(db: &mut dyn Db, token_hash: &str) -> Result<Option<OneTimeToken>, StoreError> {
    let rows = db.query(
        "SELECT token_hash, account_id, purpose, expires_at, used_at FROM one_time_tokens WHERE token_hash = ?",
        &[t(token_hash)],
    )?;
    let Some(row) = rows.into_iter().next() else {
        return Ok(None);
    };
    let [hash, account, purpose, expires, used] =
        <[SqlValue; 5]>::try_from(row).map_err(|_| bad_row("token"))?;
    Ok(Some(OneTimeToken {
        token_hash: get_text(&hash),
        account_id: get_text(&account),
        purpose: get_text(&purpose),
        expires_at: get_int(&expires).unwrap_or(0),
        used_at: get_int(&used),
    }))
}

/// Replaces an account's recovery codes.
pub(crate) fn set_recovery_codes(
    db: &mut dyn Db,
    account_id: &str,
    hashes: &[String],
) -> Result<(), StoreError> {
    db.execute(
        "DELETE FROM recovery_codes WHERE account_id = ?",
        &[t(account_id)],
    )?;
    for h in hashes {
        db.execute(
            "INSERT INTO recovery_codes (account_id, code_hash) VALUES (?, ?)",
            &[t(account_id), t(h)],
        )?;
    }
    Ok(())
}

/// Spends a recovery code: removed if present, else [`StoreError::Spent`].
pub(crate) fn use_recovery_code(
    db: &mut dyn Db,
    account_id: &str,
    hash: &str,
) -> Result<(), StoreError> {
    let changed = db.execute(
        "DELETE FROM recovery_codes WHERE account_id = ? AND code_hash = ?",
        &[t(account_id), t(hash)],
    )?;
    if changed == 1 {
        Ok(())
    } else {
        Err(StoreError::Spent("recovery code".into()))
    }
}

/// How many unused recovery codes an account has.
pub fn recovery_codes_left(db: &mut dyn Db, account_id: &str) -> Result<i64, StoreError> {
    let rows = db.query(
        "SELECT COUNT(*) FROM recovery_codes WHERE account_id = ?",
        &[t(account_id)],
    )?;
    Ok(rows
        .first()
        .and_then(|r| r.first())
        .and_then(get_int)
        .unwrap_or(0))
}

/// A person's identity at an OpenID Connect provider (NHS login, or another the operator
/// configured), linked to their account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountIdentity {
    /// The provider (its issuer URL).
    pub issuer: String,
    /// The provider's identifier for the person (`sub`).
    pub subject: String,
    /// The account.
    pub account_id: String,
    /// The NHS number the provider verified, if it gave one.
    pub nhs_number: Option<String>,
    /// How sure the provider was who they are, at the last sign-in (`P0`…`P9`).
    pub proofing_level: VerificationLevel,
    /// When first linked, ms.
    pub linked_at: i64,
}

/// Inserts an identity, or updates what the provider last said of it.
pub(crate) fn put_identity(db: &mut dyn Db, i: &AccountIdentity) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO account_identities (issuer, subject, account_id, nhs_number, proofing_level, linked_at) \
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (issuer, subject) DO UPDATE SET \
         nhs_number = excluded.nhs_number, proofing_level = excluded.proofing_level",
        &[
            t(&i.issuer),
            t(&i.subject),
            t(&i.account_id),
            i.nhs_number.as_deref().map_or(SqlValue::Null, t),
            t(i.proofing_level.as_str()),
            SqlValue::Int(i.linked_at),
        ],
    )?;
    Ok(())
}

/// The identity a provider's subject is linked to, if any.
pub fn identity(
    db: &mut dyn Db,
    issuer: &str,
    subject: &str,
) -> Result<Option<AccountIdentity>, StoreError> {
    let rows = db.query(
        "SELECT issuer, subject, account_id, nhs_number, proofing_level, linked_at \
         FROM account_identities WHERE issuer = ? AND subject = ?",
        &[t(issuer), t(subject)],
    )?;
    rows.into_iter().next().map(identity_from).transpose()
}

/// The identities at providers linked to an account.
pub fn identities_of(
    db: &mut dyn Db,
    account_id: &str,
) -> Result<Vec<AccountIdentity>, StoreError> {
    db.query(
        "SELECT issuer, subject, account_id, nhs_number, proofing_level, linked_at \
         FROM account_identities WHERE account_id = ? ORDER BY linked_at",
        &[t(account_id)],
    )?
    .into_iter()
    .map(identity_from)
    .collect()
}

fn identity_from(row: Row) -> Result<AccountIdentity, StoreError> {
    let [iss, sub, account, nhs, level, linked] =
        <[SqlValue; 6]>::try_from(row).map_err(|_| bad_row("identity"))?;
    Ok(AccountIdentity {
        issuer: get_text(&iss),
        subject: get_text(&sub),
        account_id: get_text(&account),
        nhs_number: match nhs {
            SqlValue::Text(n) => Some(n),
            _ => None,
        },
        proofing_level: VerificationLevel::parse(&get_text(&level))
            .ok_or_else(|| bad_row("identity level"))?,
        linked_at: get_int(&linked).unwrap_or(0),
    })
}

/// A passkey (a WebAuthn credential) an account signs in with as its second factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPasskey {
    /// The credential's id, base64url.
    pub credential_id: String,
    /// Whose.
    pub account_id: String,
    /// What the person called it ("my phone").
    pub name: String,
    /// The credential as the WebAuthn library keeps it (JSON): public key and counter.
    pub passkey: String,
    /// When added, ms.
    pub created_at: i64,
    /// When last used to sign in, ms.
    pub last_used_at: Option<i64>,
}

/// Inserts or updates a passkey (its counter and last use change with each sign-in).
pub(crate) fn put_passkey(db: &mut dyn Db, p: &StoredPasskey) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO passkeys (credential_id, account_id, name, passkey, created_at, last_used_at) \
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (credential_id) DO UPDATE SET \
         passkey = excluded.passkey, last_used_at = excluded.last_used_at, name = excluded.name",
        &[
            t(&p.credential_id),
            t(&p.account_id),
            t(&p.name),
            t(&p.passkey),
            SqlValue::Int(p.created_at),
            opt_int(p.last_used_at),
        ],
    )?;
    Ok(())
}

/// Removes one of an account's passkeys (absent is not an error).
/// See [`WriteOp::DeleteAccount`](crate::WriteOp::DeleteAccount).
pub(crate) fn delete_account(db: &mut dyn Db, account_id: &str) -> Result<(), StoreError> {
    for table in [
        "sessions",
        "one_time_tokens",
        "recovery_codes",
        "passkeys",
        "account_identities",
        "oauth_tokens",
        "accounts",
    ] {
        db.execute(
            &format!("DELETE FROM {table} WHERE account_id = ?"),
            &[t(account_id)],
        )?;
    }
    Ok(())
}

pub(crate) fn delete_passkey(
    db: &mut dyn Db,
    account_id: &str,
    credential_id: &str,
) -> Result<(), StoreError> {
    db.execute(
        "DELETE FROM passkeys WHERE account_id = ? AND credential_id = ?",
        &[t(account_id), t(credential_id)],
    )?;
    Ok(())
}

/// An account's passkeys, oldest first.
pub fn passkeys_of(db: &mut dyn Db, account_id: &str) -> Result<Vec<StoredPasskey>, StoreError> {
    db.query(
        "SELECT credential_id, account_id, name, passkey, created_at, last_used_at \
         FROM passkeys WHERE account_id = ? ORDER BY created_at, credential_id",
        &[t(account_id)],
    )?
    .into_iter()
    .map(|row| {
        let [id, account, name, passkey, created, used] =
            <[SqlValue; 6]>::try_from(row).map_err(|_| bad_row("passkey"))?;
        Ok(StoredPasskey {
            credential_id: get_text(&id),
            account_id: get_text(&account),
            name: get_text(&name),
            passkey: get_text(&passkey),
            created_at: get_int(&created).unwrap_or(0),
            last_used_at: get_int(&used),
        })
    })
    .collect()
}
