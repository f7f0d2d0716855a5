//! The OAuth 2.0 authorisation server's rows (issue 3 §6): the clients an operator
//! registered, and the authorisation codes and refresh tokens issued to them, as digests,
//! each spent once. What an app may reach is not here: it is a grant (a `Consent`) in the
//! person's record, which every token names and every request checks.

use crate::StoreError;
use crate::engine::Db;
use crate::sql::SqlValue;

/// A registered client (an app).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClient {
    /// Its id, random.
    pub client_id: String,
    /// What people are shown.
    pub name: String,
    /// Where it may be sent back to, exactly as registered.
    pub redirect_uris: Vec<String>,
    /// A public client (an app on a phone or in a browser): no secret, PKCE alone.
    pub public: bool,
    /// For an organisation's system (SMART Backend Services): the organisation it belongs to.
    pub org: Option<String>,
    /// For an organisation's system: its public keys (a JWK Set, as registered), against
    /// which its signed client assertions are checked.
    pub jwks: Option<String>,
    /// When registered, ms.
    pub created_at: i64,
}

/// An authorisation code or a refresh token, by its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthToken {
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    /// `code` or `refresh`.
    pub kind: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The grant (a Consent id in the record) it belongs to: its family.
    pub grant_id: String,
    /// The record.
    pub record_id: String,
    /// The person's account.
    pub account_id: String,
    /// The scopes granted.
    pub scope: String,
    /// For a code: the redirect URI it was asked with.
    pub redirect_uri: Option<String>,
    /// For a code: the PKCE challenge (S256).
    pub challenge: Option<String>,
    /// Refused from this instant, ms.
    pub expires_at: i64,
    /// When it was spent.
    pub used_at: Option<i64>,
    /// For a code: the app's OpenID Connect nonce, for its ID token.
    pub nonce: Option<String>,
}

fn t(s: &str) -> SqlValue {
    SqlValue::Text(s.to_owned())
}

fn opt_text(v: Option<&str>) -> SqlValue {
    v.map_or(SqlValue::Null, t)
}

fn text(v: &SqlValue) -> String {
    match v {
        SqlValue::Text(s) => s.clone(),
        _ => String::new(),
    }
}

fn int(v: &SqlValue) -> Option<i64> {
    match v {
        SqlValue::Int(i) => Some(*i),
        _ => None,
    }
}

fn opt(v: &SqlValue) -> Option<String> {
    match v {
        SqlValue::Text(s) => Some(s.clone()),
        _ => None,
    }
}

fn bad_row(what: &str) -> StoreError {
    StoreError::Database(format!("unexpected {what} row"))
}

/// Inserts or replaces a client.
pub(crate) fn put_client(db: &mut dyn Db, c: &OAuthClient) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO oauth_clients (client_id, name, redirect_uris, public, created_at, org_id, jwks) \
         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (client_id) DO UPDATE SET name = excluded.name, \
         redirect_uris = excluded.redirect_uris, public = excluded.public, \
         org_id = excluded.org_id, jwks = excluded.jwks",
        &[
            t(&c.client_id),
            t(&c.name),
            t(&c.redirect_uris.join("\n")),
            SqlValue::Int(i64::from(c.public)),
            SqlValue::Int(c.created_at),
            opt_text(c.org.as_deref()),
            opt_text(c.jwks.as_deref()),
        ],
    )?;
    Ok(())
}

/// One client by id.
pub fn client(db: &mut dyn Db, client_id: &str) -> Result<Option<OAuthClient>, StoreError> {
    let rows = db.query(
        "SELECT client_id, name, redirect_uris, public, created_at, org_id, jwks \
         FROM oauth_clients WHERE client_id = ?",
        &[t(client_id)],
    )?;
    let Some(row) = rows.into_iter().next() else {
        return Ok(None);
    };
    let [id, name, uris, public, created, org, jwks] =
        <[SqlValue; 7]>::try_from(row).map_err(|_| bad_row("client"))?;
    Ok(Some(OAuthClient {
        client_id: text(&id),
        name: text(&name),
        redirect_uris: text(&uris)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        public: int(&public) == Some(1),
        created_at: int(&created).unwrap_or(0),
        org: opt(&org),
        jwks: opt(&jwks),
    }))
}

/// An organisation an operator registered: a health or care provider whose systems write
/// into and read from the records of people who gave it access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation {
    /// Its id, random.
    pub org_id: String,
    /// What people are shown.
    pub name: String,
    /// When registered, ms.
    pub created_at: i64,
}

/// Inserts or renames an organisation.
pub(crate) fn put_organisation(db: &mut dyn Db, o: &Organisation) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO organisations (org_id, name, created_at) VALUES (?, ?, ?) \
         ON CONFLICT (org_id) DO UPDATE SET name = excluded.name",
        &[t(&o.org_id), t(&o.name), SqlValue::Int(o.created_at)],
    )?;
    Ok(())
}

/// Every organisation, by name.
pub fn organisations(db: &mut dyn Db) -> Result<Vec<Organisation>, StoreError> {
    db.query(
        "SELECT org_id, name, created_at FROM organisations ORDER BY name, org_id",
        &[],
    )?
    .into_iter()
    .map(|row| {
        let [id, name, created] =
            <[SqlValue; 3]>::try_from(row).map_err(|_| bad_row("organisation"))?;
        Ok(Organisation {
            org_id: text(&id),
            name: text(&name),
            created_at: int(&created).unwrap_or(0),
        })
    })
    .collect()
}

/// Records a client assertion's `jti` until it expires; [`StoreError::Spent`] if that client
/// used it before, so a captured assertion cannot be replayed. Forgets expired ones.
pub(crate) fn use_assertion(
    db: &mut dyn Db,
    client_id: &str,
    jti: &str,
    expires_at: i64,
    now: i64,
) -> Result<(), StoreError> {
    db.execute(
        "DELETE FROM oauth_assertions WHERE expires_at < ?",
        &[SqlValue::Int(now)],
    )?;
    let changed = db.execute(
        "INSERT INTO oauth_assertions (client_id, jti, expires_at) VALUES (?, ?, ?) \
         ON CONFLICT (client_id, jti) DO NOTHING",
        &[t(client_id), t(jti), SqlValue::Int(expires_at)],
    )?;
    if changed == 1 {
        Ok(())
    } else {
        Err(StoreError::Spent("client assertion".into()))
    }
}

const TOKEN_COLUMNS: &str = "token_hash, kind, client_id, grant_id, record_id, account_id, \
     scope, redirect_uri, challenge, expires_at, used_at, nonce";

/// Stores a new code or refresh token.
pub(crate) fn put_token(db: &mut dyn Db, tok: &OAuthToken) -> Result<(), StoreError> {
    db.execute(
        &format!(
            "INSERT INTO oauth_tokens ({TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ),
        &[
            t(&tok.token_hash),
            t(&tok.kind),
            t(&tok.client_id),
            t(&tok.grant_id),
            t(&tok.record_id),
            t(&tok.account_id),
            t(&tok.scope),
            opt_text(tok.redirect_uri.as_deref()),
            opt_text(tok.challenge.as_deref()),
            SqlValue::Int(tok.expires_at),
            tok.used_at.map_or(SqlValue::Null, SqlValue::Int),
            opt_text(tok.nonce.as_deref()),
        ],
    )?;
    Ok(())
}

/// Spends a code or refresh token if it is unused and unexpired at `now`; otherwise
/// [`StoreError::Spent`], so two requests racing with one token cannot both succeed.
pub(crate) fn use_token(db: &mut dyn Db, token_hash: &str, now: i64) -> Result<(), StoreError> {
    let changed = db.execute(
        "UPDATE oauth_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
        &[SqlValue::Int(now), t(token_hash), SqlValue::Int(now)],
    )?;
    if changed == 1 {
        Ok(())
    } else {
        Err(StoreError::Spent("token".into()))
    }
}

/// One code or refresh token by its digest (spent or not).
pub fn token(db: &mut dyn Db, token_hash: &str) -> Result<Option<OAuthToken>, StoreError> {
    let rows = db.query(
        &format!("SELECT {TOKEN_COLUMNS} FROM oauth_tokens WHERE token_hash = ?"),
        &[t(token_hash)],
    )?;
    let Some(row) = rows.into_iter().next() else {
        return Ok(None);
    };
    let [
        hash,
        kind,
        client,
        grant,
        record,
        account,
        scope,
        redirect,
        challenge,
        expires,
        used,
        nonce,
    ] = <[SqlValue; 12]>::try_from(row).map_err(|_| bad_row("oauth token"))?;
    Ok(Some(OAuthToken {
        token_hash: text(&hash),
        kind: text(&kind),
        client_id: text(&client),
        grant_id: text(&grant),
        record_id: text(&record),
        account_id: text(&account),
        scope: text(&scope),
        redirect_uri: opt(&redirect),
        challenge: opt(&challenge),
        expires_at: int(&expires).unwrap_or(0),
        used_at: int(&used),
        nonce: opt(&nonce),
    }))
}
