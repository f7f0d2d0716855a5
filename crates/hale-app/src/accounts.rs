//! Accounts and sign-in (issue 3): sign-up with email verification, password sign-in, a
//! second factor (TOTP, or a one-time recovery code) before any health data, server-side
//! sessions with idle and absolute timeouts, and sign-out one or everywhere.
//!
//! Messages never say whether an address has an account: sign-up answers "check your email"
//! either way (and the owner of an existing address is told by email), and sign-in answers
//! one message for a wrong address or a wrong password, after the same argon2 work.

use hale_auth::password::{self, Weakness};
use hale_auth::secret::{self, SealKey};
use hale_auth::totp;
use hale_core::{
    AccountKind, Actor, AuthStrength, RecordId, RequestContext, Scopes, VerificationLevel,
};
use hale_store::{Account, OneTimeToken, Session, WriteBatch, WriteOp};

use crate::throttle::Throttle;
use crate::{App, AppError};

/// A session unused for this long has ended (NHS login uses 15 minutes for its own
/// sessions; a record is read in longer stretches, and every page refresh counts as use).
pub const IDLE_TIMEOUT_MS: i64 = 30 * 60 * 1000;
/// However active, a session ends this long after sign-in.
pub const ABSOLUTE_TIMEOUT_MS: i64 = 12 * 60 * 60 * 1000;
/// A session that has proven only the password must finish the second factor within this.
pub const SECOND_FACTOR_WINDOW_MS: i64 = 10 * 60 * 1000;
/// How long after a second factor a sensitive action (a new password, authenticator or
/// recovery codes) goes ahead without asking again (DAPB3051 re-authentication; NHS login
/// asks again for changes to sign-in details).
pub const REAUTH_WINDOW_MS: i64 = 15 * 60 * 1000;
/// How long an emailed verification link works.
pub const VERIFY_LINK_TTL_MS: i64 = 24 * 60 * 60 * 1000;
/// How long a password reset link works: long enough to switch to the email app, short
/// enough that an old email in a mailbox is not a way in.
pub const RESET_LINK_TTL_MS: i64 = 60 * 60 * 1000;
/// `last_seen_at` is written at most this often, so browsing does not cost a durable
/// commit per page.
const TOUCH_EVERY_MS: i64 = 60 * 1000;

/// Sends email. Implemented over SMTP by the server; the application only composes.
pub trait Mailer: Send + Sync {
    /// Sends one plain-text message. The body must never carry health data.
    fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), String>;
}

/// Why a form was refused: the field and a stable reason the web layer turns into words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormProblem {
    /// The name is empty or too long.
    NameMissing,
    /// Not an email address.
    EmailInvalid,
    /// Too short.
    PasswordTooShort,
    /// Too long.
    PasswordTooLong,
    /// Easy to guess.
    PasswordTooEasy,
    /// The two password fields differ.
    PasswordsDiffer,
    /// Wrong address or password (one message for both).
    SignInFailed,
    /// The address has not been verified yet.
    EmailNotVerified,
    /// The security code is wrong, expired or already used.
    CodeWrong,
    /// The recovery code is wrong or already used.
    RecoveryCodeWrong,
    /// The emailed link is wrong, used or expired.
    LinkInvalid,
}

impl FormProblem {
    /// The form field the problem belongs to (for the error summary's link).
    pub fn field(self) -> &'static str {
        match self {
            FormProblem::NameMissing => "name",
            FormProblem::EmailInvalid
            | FormProblem::SignInFailed
            | FormProblem::EmailNotVerified => "email",
            FormProblem::PasswordTooShort
            | FormProblem::PasswordTooLong
            | FormProblem::PasswordTooEasy => "password",
            FormProblem::PasswordsDiffer => "confirm",
            FormProblem::CodeWrong | FormProblem::RecoveryCodeWrong => "code",
            FormProblem::LinkInvalid => "link",
        }
    }

    /// A stable identifier (the message id in the web app's catalogue).
    pub fn id(self) -> &'static str {
        match self {
            FormProblem::NameMissing => "error-name-missing",
            FormProblem::EmailInvalid => "error-email-invalid",
            FormProblem::PasswordTooShort => "error-password-too-short",
            FormProblem::PasswordTooLong => "error-password-too-long",
            FormProblem::PasswordTooEasy => "error-password-too-easy",
            FormProblem::PasswordsDiffer => "error-passwords-differ",
            FormProblem::SignInFailed => "error-sign-in-failed",
            FormProblem::EmailNotVerified => "error-email-not-verified",
            FormProblem::CodeWrong => "error-code-wrong",
            FormProblem::RecoveryCodeWrong => "error-recovery-code-wrong",
            FormProblem::LinkInvalid => "error-link-invalid",
        }
    }
}

/// A signed-in browser: the session and its account, as checked for this request.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The account.
    pub account: Account,
    /// The session row.
    pub session: Session,
}

impl SignedIn {
    /// How strongly this session signed in.
    pub fn strength(&self) -> AuthStrength {
        if self.session.second_factor_at.is_some() {
            AuthStrength::TwoFactor
        } else {
            AuthStrength::OneFactor
        }
    }

    /// Whether the account has a TOTP authenticator set up.
    pub fn has_totp(&self) -> bool {
        self.account.totp_sealed.is_some()
    }
}

/// A new TOTP enrolment to show: the QR code and the secret for typing, plus the secret
/// sealed to this session, which the confirming form sends back.
#[derive(Debug, Clone)]
pub struct TotpEnrolment {
    /// Inline SVG.
    pub qr_svg: String,
    /// Base32 in groups of four.
    pub secret_for_typing: String,
    /// The secret, sealed to the session (URL-safe base64), for the form's hidden field.
    pub sealed: String,
}

/// The time, ms.
fn now_ms() -> i64 {
    hale_fhir::date::now_millis()
}

/// Trims and lower-cases an address, and checks its shape (something@domain.tld, no
/// spaces, at most 254 characters: RFC 5321 §4.5.3.1.3).
pub fn normalise_email(typed: &str) -> Option<String> {
    let email = typed.trim().to_lowercase();
    let (local, domain) = email.split_once('@')?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.contains('@');
    ok.then_some(email)
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(e.to_string())
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
}

/// Identity settings the application needs beyond storage.
pub struct Identity {
    /// Seals TOTP secrets (derived from the master key).
    pub seal: SealKey,
    /// Sends mail.
    pub mailer: Box<dyn Mailer>,
    /// Sign-in attempt limits.
    pub throttle: Throttle,
    /// How long a second factor counts as recent for sensitive actions, ms.
    pub reauth_window_ms: i64,
}

impl App {
    pub(crate) fn identity(&self) -> Result<&Identity, AppError> {
        self.identity
            .as_ref()
            .ok_or_else(|| AppError::NotSupported("sign-in is not configured".into()))
    }

    /// Signs a person up: a new record, a P0 account that owns it, and an emailed link to
    /// verify the address (at `link_base` + `/account/verify-email?token=…`). If the address
    /// already has an account, nothing is created and its owner is told by email instead;
    /// the caller shows the same "check your email" page either way.
    pub fn sign_up(
        &self,
        name: &str,
        email: &str,
        password_typed: &str,
        confirm: &str,
        link_base: &str,
    ) -> Result<(), Vec<FormProblem>> {
        let identity = self
            .identity()
            .map_err(|_| vec![FormProblem::EmailInvalid])?;
        let mut problems = Vec::new();
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            problems.push(FormProblem::NameMissing);
        }
        let email = normalise_email(email);
        if email.is_none() {
            problems.push(FormProblem::EmailInvalid);
        }
        let inputs = [name, email.as_deref().unwrap_or("")];
        problems.extend(new_password_problems(password_typed, confirm, &inputs));
        let Some(email) = email.filter(|_| problems.is_empty()) else {
            return Err(problems);
        };
        // Hash first, so a new and an existing address cost the same time.
        let hash =
            password::hash(password_typed).map_err(|_| vec![FormProblem::PasswordTooEasy])?;
        let result = self.create_account(name, &email, &hash, link_base, identity);
        if let Err(e) = result {
            // Internal failures are logged without the address; the person sees the same
            // page, and can try again or sign in.
            tracing::error!(error = %e, "sign-up failed");
        }
        Ok(())
    }

    fn create_account(
        &self,
        name: &str,
        email: &str,
        hash: &str,
        link_base: &str,
        identity: &Identity,
    ) -> Result<(), AppError> {
        if self.store.account_by_email(email)?.is_some() {
            return identity
                .mailer
                .send(
                    email,
                    "Someone tried to create a Hale account with your email address",
                    &format!(
                        "Someone tried to create a Hale account with this email address, which already has one.\n\n\
                         If it was you, sign in instead: {link_base}/sign-in\n\
                         If you have forgotten your password, you can reset it from the sign-in page.\n\n\
                         If it was not you, you do not need to do anything."
                    ),
                )
                .map_err(internal);
        }
        let record = self.create_person(name, Some(email), None)?;
        let account = Account {
            id: uuid::Uuid::new_v4().to_string(),
            email: email.to_owned(),
            kind: AccountKind::Person,
            record: Some(record),
            password_hash: hash.to_owned(),
            email_verified_at: None,
            verification_level: VerificationLevel::P0,
            totp_sealed: None,
            totp_last_step: None,
            created_at: now_ms(),
            org: None,
        };
        let token = secret::random_token();
        self.store.write(WriteBatch {
            ops: vec![
                WriteOp::PutAccount(account.clone()),
                WriteOp::PutToken(OneTimeToken {
                    token_hash: secret::digest(&token),
                    account_id: account.id.clone(),
                    purpose: "verify-email".into(),
                    expires_at: now_ms() + VERIFY_LINK_TTL_MS,
                    used_at: None,
                }),
            ],
        })?;
        identity
            .mailer
            .send(
                email,
                "Confirm your email address for Hale",
                &format!(
                    "To finish creating your Hale account, open this link within 24 hours:\n\n\
                     {link_base}/account/verify-email?token={token}\n\n\
                     If you did not ask for a Hale account, you do not need to do anything."
                ),
            )
            .map_err(internal)
    }

    /// Follows an emailed verification link: marks the address verified, once.
    pub fn verify_email(&self, token: &str) -> Result<(), FormProblem> {
        let hash = secret::digest(token);
        let found = self
            .store
            .one_time_token(&hash)
            .ok()
            .flatten()
            .filter(|t| {
                t.purpose == "verify-email" && t.used_at.is_none() && t.expires_at > now_ms()
            })
            .ok_or(FormProblem::LinkInvalid)?;
        let mut account = self
            .store
            .account(&found.account_id)
            .ok()
            .flatten()
            .ok_or(FormProblem::LinkInvalid)?;
        account.email_verified_at = Some(now_ms());
        self.store
            .write(WriteBatch {
                ops: vec![
                    WriteOp::UseToken { token_hash: hash },
                    WriteOp::PutAccount(account),
                ],
            })
            .map(|_| ())
            .map_err(|_| FormProblem::LinkInvalid)
    }

    /// Asks to change the account's email address (both factors proven recently): a link
    /// to the new address proves it is theirs (24 hours, once), and the old address is told.
    /// An address that already has an account gets nothing, and the answer is the same, so
    /// this cannot be used to find out who has an account.
    pub fn request_email_change(
        &self,
        who: &SignedIn,
        new_email: &str,
        link_base: &str,
    ) -> Result<Result<(), FormProblem>, AppError> {
        self.require_recent(who)?;
        let identity = self.identity()?;
        let Some(email) = normalise_email(new_email) else {
            return Ok(Err(FormProblem::EmailInvalid));
        };
        if email == who.account.email || self.store.account_by_email(&email)?.is_some() {
            return Ok(Ok(()));
        }
        let token = secret::random_token();
        self.store.write(WriteBatch {
            ops: vec![WriteOp::PutToken(OneTimeToken {
                token_hash: secret::digest(&token),
                account_id: who.account.id.clone(),
                purpose: format!("change-email:{email}"),
                expires_at: now_ms() + VERIFY_LINK_TTL_MS,
                used_at: None,
            })],
        })?;
        let sent = identity.mailer.send(
            &email,
            "Confirm your new email address for Hale",
            &format!(
                "To use this address for your Hale account, open this link within 24 hours:\n\n\
                 {link_base}/account/email/confirm?token={token}\n\n\
                 If you did not ask for this, you do not need to do anything."
            ),
        );
        if sent.is_err() {
            tracing::warn!("the email change link could not be sent");
        }
        Ok(Ok(()))
    }

    /// Follows an email change link: the account's address becomes the new one (proven by
    /// the link), every session ends, and the old address is told.
    pub fn confirm_email_change(&self, token: &str) -> Result<(), FormProblem> {
        let hash = secret::digest(token.trim());
        let found = self
            .store
            .one_time_token(&hash)
            .ok()
            .flatten()
            .filter(|t| t.used_at.is_none() && t.expires_at > now_ms())
            .ok_or(FormProblem::LinkInvalid)?;
        let new_email = found
            .purpose
            .strip_prefix("change-email:")
            .ok_or(FormProblem::LinkInvalid)?
            .to_owned();
        let mut account = self
            .store
            .account(&found.account_id)
            .ok()
            .flatten()
            .ok_or(FormProblem::LinkInvalid)?;
        let old_email = std::mem::replace(&mut account.email, new_email);
        account.email_verified_at = Some(now_ms());
        self.store
            .write(WriteBatch {
                ops: vec![
                    WriteOp::UseToken { token_hash: hash },
                    WriteOp::EndSessions {
                        account_id: account.id.clone(),
                        only: None,
                    },
                    WriteOp::PutAccount(account),
                ],
            })
            .map_err(|_| FormProblem::LinkInvalid)?;
        if let Ok(identity) = self.identity()
            && identity
                .mailer
                .send(
                    &old_email,
                    "Your Hale email address has been changed",
                    "The email address of your Hale account has just been changed, and every device signed in to it has been signed out.\n\n\
                     If you did not do this, tell the people who run your Hale service now.",
                )
                .is_err()
        {
            tracing::warn!("the email-changed notice could not be sent");
        }
        Ok(())
    }

    /// Sends a password reset link, if the address has an account; the caller shows the
    /// same "check your email" page either way. Limited per address like sign-in.
    pub fn request_password_reset(
        &self,
        email: &str,
        client: &str,
        link_base: &str,
    ) -> Result<(), AppError> {
        let identity = self.identity()?;
        let Some(email) = normalise_email(email) else {
            return Ok(());
        };
        let keys = [format!("reset:{email}"), format!("addr:{client}")];
        identity.throttle.check(&keys)?;
        // Every request counts, so the link cannot be used to flood a mailbox.
        identity.throttle.failed(&keys);
        let Some(account) = self.store.account_by_email(&email)? else {
            return Ok(());
        };
        let token = secret::random_token();
        self.store.write(WriteBatch {
            ops: vec![WriteOp::PutToken(OneTimeToken {
                token_hash: secret::digest(&token),
                account_id: account.id,
                purpose: "reset-password".into(),
                expires_at: now_ms() + RESET_LINK_TTL_MS,
                used_at: None,
            })],
        })?;
        identity
            .mailer
            .send(
                &email,
                "Reset your Hale password",
                &format!(
                    "To choose a new password for Hale, open this link within 1 hour:\n\n\
                     {link_base}/account/reset-password?token={token}\n\n\
                     If you did not ask to reset your password, you do not need to do anything: \
                     your password has not changed."
                ),
            )
            .map_err(internal)
    }

    /// Whether a reset link is still good (to show the form, or say it has expired).
    pub fn reset_link_valid(&self, token: &str) -> bool {
        self.live_token(token, "reset-password").is_some()
    }

    fn live_token(&self, token: &str, purpose: &str) -> Option<OneTimeToken> {
        self.store
            .one_time_token(&secret::digest(token))
            .ok()
            .flatten()
            .filter(|t| t.purpose == purpose && t.used_at.is_none() && t.expires_at > now_ms())
    }

    /// Sets a new password through an emailed link: once, and it signs the account out
    /// everywhere (whoever knew the old password is out). Following the link also proves
    /// the address.
    pub fn reset_password(
        &self,
        token: &str,
        password_typed: &str,
        confirm: &str,
    ) -> Result<(), Vec<FormProblem>> {
        let identity = self
            .identity()
            .map_err(|_| vec![FormProblem::LinkInvalid])?;
        let found = self
            .live_token(token, "reset-password")
            .ok_or_else(|| vec![FormProblem::LinkInvalid])?;
        let mut account = self
            .store
            .account(&found.account_id)
            .ok()
            .flatten()
            .ok_or_else(|| vec![FormProblem::LinkInvalid])?;
        let mut problems = Vec::new();
        problems.extend(new_password_problems(
            password_typed,
            confirm,
            &[&account.email],
        ));
        if !problems.is_empty() {
            return Err(problems);
        }
        account.password_hash =
            password::hash(password_typed).map_err(|_| vec![FormProblem::PasswordTooEasy])?;
        account.email_verified_at.get_or_insert_with(now_ms);
        let email = account.email.clone();
        self.store
            .write(WriteBatch {
                ops: vec![
                    WriteOp::UseToken {
                        token_hash: found.token_hash,
                    },
                    WriteOp::EndSessions {
                        account_id: account.id.clone(),
                        only: None,
                    },
                    WriteOp::PutAccount(account),
                ],
            })
            .map_err(|_| vec![FormProblem::LinkInvalid])?;
        if let Err(e) = identity.mailer.send(
            &email,
            "Your Hale password has been changed",
            "Your Hale password has just been changed, and every device signed in to your account has been signed out.\n\n\
             If you did not do this, reset your password now from the sign-in page, and tell the people who run your Hale service.",
        ) {
            tracing::warn!(error = %e, "could not send the password-changed notice");
        }
        Ok(())
    }

    /// Checks an address and password and starts a session that has proven only the
    /// password. Returns the session key for the cookie.
    pub fn sign_in(
        &self,
        email: &str,
        password_typed: &str,
        client: &str,
        user_agent: &str,
    ) -> Result<String, AppError> {
        let identity = self.identity()?;
        let email = normalise_email(email).unwrap_or_default();
        identity
            .throttle
            .check(&[&format!("email:{email}"), &format!("addr:{client}")])?;
        let account = self.store.account_by_email(&email)?;
        let ok = match &account {
            Some(a) => password::verify(password_typed, &a.password_hash),
            None => password::verify_nothing(password_typed),
        };
        let Some(account) = account.filter(|_| ok) else {
            identity
                .throttle
                .failed(&[&format!("email:{email}"), &format!("addr:{client}")]);
            return Err(AppError::Rejected(FormProblem::SignInFailed));
        };
        if account.email_verified_at.is_none() {
            return Err(AppError::Rejected(FormProblem::EmailNotVerified));
        }
        identity.throttle.succeeded(&format!("email:{email}"));
        let key = secret::random_token();
        let now = now_ms();
        self.store.write(WriteBatch {
            ops: vec![WriteOp::PutSession(Session {
                key_hash: secret::digest(&key),
                account_id: account.id,
                created_at: now,
                last_seen_at: now,
                second_factor_at: None,
                user_agent: describe_browser(user_agent),
            })],
        })?;
        Ok(key)
    }

    /// The session behind a cookie's key, if it is live; touches it. Ended, timed-out and
    /// unknown sessions are all `None` (and a timed-out one is removed).
    pub fn session(&self, key: &str) -> Result<Option<SignedIn>, AppError> {
        let hash = secret::digest(key);
        let Some(mut session) = self.store.session(&hash)? else {
            return Ok(None);
        };
        let now = now_ms();
        let expired = now - session.last_seen_at > IDLE_TIMEOUT_MS
            || now - session.created_at > ABSOLUTE_TIMEOUT_MS
            || (session.second_factor_at.is_none()
                && now - session.created_at > SECOND_FACTOR_WINDOW_MS);
        if expired {
            self.store.write(WriteBatch {
                ops: vec![WriteOp::EndSessions {
                    account_id: session.account_id.clone(),
                    only: Some(hash),
                }],
            })?;
            return Ok(None);
        }
        let Some(account) = self.store.account(&session.account_id)? else {
            return Ok(None);
        };
        if now - session.last_seen_at > TOUCH_EVERY_MS {
            session.last_seen_at = now;
            self.store.write(WriteBatch {
                ops: vec![WriteOp::PutSession(session.clone())],
            })?;
        }
        Ok(Some(SignedIn { account, session }))
    }

    /// Starts setting up an authenticator app for a signed-in account, or shows the same
    /// one again (`sealed` from the form) after a wrong code, so the QR code already scanned
    /// stays valid.
    /// `qr_label` is the QR code's text alternative, in the page's language.
    pub fn totp_begin(
        &self,
        who: &SignedIn,
        sealed: Option<&str>,
        qr_label: &str,
    ) -> Result<TotpEnrolment, AppError> {
        let identity = self.identity()?;
        let secret = sealed
            .and_then(unb64)
            .and_then(|s| identity.seal.open(&s, &who.session.key_hash).ok())
            .unwrap_or_else(totp::new_secret);
        let uri = totp::otpauth_uri(&secret, "Hale", &who.account.email);
        Ok(TotpEnrolment {
            qr_svg: totp::qr_svg(&uri, qr_label).map_err(internal)?,
            secret_for_typing: totp::secret_for_typing(&secret),
            sealed: b64(&identity.seal.seal(&secret, &who.session.key_hash)),
        })
    }

    /// Finishes setting up an authenticator: the typed code must match the new secret. The
    /// session counts as two-factor from now, and ten recovery codes are returned (shown
    /// once; only their digests are kept).
    pub fn totp_confirm(
        &self,
        who: &SignedIn,
        sealed: &str,
        code: &str,
    ) -> Result<Vec<String>, AppError> {
        let identity = self.identity()?;
        if who.has_totp() && who.strength() < AuthStrength::TwoFactor {
            // Replacing an authenticator needs the old one first.
            return Err(AppError::Forbidden(
                "confirm your current security code first".into(),
            ));
        }
        let secret = unb64(sealed)
            .and_then(|s| identity.seal.open(&s, &who.session.key_hash).ok())
            .ok_or_else(|| AppError::bad_request("secret", "the set-up form has expired"))?;
        let step = totp::verify(&secret, code, unix_secs(), None)
            .map_err(internal)?
            .ok_or(AppError::Rejected(FormProblem::CodeWrong))?;
        let mut account = who.account.clone();
        account.totp_sealed = Some(identity.seal.seal(&secret, &account.id));
        account.totp_last_step = i64::try_from(step).ok();
        let codes = secret::recovery_codes();
        let session = with_second_factor(who);
        self.store.write(WriteBatch {
            ops: vec![
                WriteOp::PutAccount(account.clone()),
                WriteOp::SetRecoveryCodes {
                    account_id: account.id.clone(),
                    hashes: codes.iter().map(|c| secret::digest(c)).collect(),
                },
                WriteOp::PutSession(session),
            ],
        })?;
        Ok(codes)
    }

    /// Completes sign-in with a code from the authenticator app.
    pub fn totp_verify(&self, who: &SignedIn, code: &str, client: &str) -> Result<(), AppError> {
        let identity = self.identity()?;
        let keys = code_keys(who, client);
        identity.throttle.check(&keys)?;
        let sealed = who
            .account
            .totp_sealed
            .as_ref()
            .ok_or_else(|| AppError::Forbidden("no authenticator is set up".into()))?;
        let secret = identity
            .seal
            .open(sealed, &who.account.id)
            .map_err(internal)?;
        let last = who
            .account
            .totp_last_step
            .and_then(|s| u64::try_from(s).ok());
        let Some(step) = totp::verify(&secret, code, unix_secs(), last).map_err(internal)? else {
            identity.throttle.failed(&keys);
            return Err(AppError::Rejected(FormProblem::CodeWrong));
        };
        identity.throttle.succeeded(&keys[0]);
        let mut account = who.account.clone();
        account.totp_last_step = i64::try_from(step).ok();
        let session = with_second_factor(who);
        self.store.write(WriteBatch {
            ops: vec![WriteOp::PutAccount(account), WriteOp::PutSession(session)],
        })?;
        Ok(())
    }

    /// Completes sign-in with a one-time recovery code (the authenticator is lost).
    pub fn recovery_code_sign_in(
        &self,
        who: &SignedIn,
        code: &str,
        client: &str,
    ) -> Result<(), AppError> {
        let identity = self.identity()?;
        let keys = code_keys(who, client);
        identity.throttle.check(&keys)?;
        let session = with_second_factor(who);
        let spent = self.store.write(WriteBatch {
            ops: vec![
                WriteOp::UseRecoveryCode {
                    account_id: who.account.id.clone(),
                    hash: secret::digest(&secret::normalise_recovery_code(code)),
                },
                WriteOp::PutSession(session),
            ],
        });
        match spent {
            Ok(_) => {
                identity.throttle.succeeded(&keys[0]);
                Ok(())
            }
            Err(hale_store::StoreError::Spent(_)) => {
                identity.throttle.failed(&keys);
                Err(AppError::Rejected(FormProblem::RecoveryCodeWrong))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The context in which a signed-in person acts on their own record: their record, with
    /// every interaction on it. Needs a second factor; the consent work narrows this for
    /// proxies and professionals.
    pub fn person_context(
        &self,
        who: &SignedIn,
        request_id: &str,
    ) -> Result<RequestContext, AppError> {
        let record = self.own_record(who)?;
        let scopes = Scopes::parse("patient/*.cruds").map_err(internal)?;
        Ok(RequestContext {
            actor: Actor::Record {
                record,
                scopes,
                subject: format!("account:{}", who.account.id),
            },
            verification: who.account.verification_level,
            strength: who.strength(),
            request_id: request_id.to_owned(),
        })
    }

    /// What the signed-in person's record holds: resources by type and the number of
    /// wearable samples. Needs a second factor.
    pub fn record_overview(&self, who: &SignedIn) -> Result<(Vec<(String, i64)>, i64), AppError> {
        let record = self.own_record(who)?;
        Ok((
            self.store.count_by_type(&record)?,
            self.store.sample_count(&record)?,
        ))
    }

    /// Records an identity check an operator made in person against photo ID (issue 3 §4):
    /// raises the verification level of the accounts that own `record`, and keeps what
    /// was checked as a FHIR Provenance in the record, which the person can see. Returns
    /// how many accounts changed.
    pub fn verify_identity(
        &self,
        operator: &RequestContext,
        record: &RecordId,
        level: VerificationLevel,
        evidence: &str,
    ) -> Result<usize, AppError> {
        let evidence = evidence.trim();
        if evidence.is_empty() || evidence.chars().count() > 500 {
            return Err(AppError::bad_request(
                "evidence",
                "say what was checked (for example, which photo ID), in at most 500 characters",
            ));
        }
        if !matches!(operator.actor, Actor::System { .. }) {
            return Err(AppError::Forbidden(
                "only an operator records identity checks".into(),
            ));
        }
        let accounts = self.store.accounts_of_record(record)?;
        if accounts.is_empty() {
            return Err(AppError::NotFound {
                resource_type: "Patient".into(),
                id: record.to_string(),
            });
        }
        let patient = format!("Patient/{}", record.patient_id().as_str());
        self.create(
            operator,
            "Provenance",
            serde_json::json!({
                "resourceType": "Provenance",
                "target": [{"reference": patient}],
                "recorded": hale_fhir::date::format_instant(now_ms()),
                "activity": {"text": format!("Identity checked in person: {}", level.as_str())},
                "agent": [{"who": {"display": operator.actor.subject()}}],
                "reason": [{"text": evidence}],
            }),
            None,
        )?;
        let mut ops = Vec::new();
        for mut account in accounts {
            account.verification_level = level;
            ops.push(WriteOp::PutAccount(account));
        }
        let n = ops.len();
        ops.push(WriteOp::Audit(self.audit_entry(
            operator,
            record,
            "verify-identity",
            format!("identity level {}", level.as_str()),
        )));
        self.store.write(WriteBatch { ops })?;
        tracing::info!(record = %record, level = level.as_str(), accounts = n, "identity verification recorded");
        Ok(n)
    }

    /// The record an account (by email address) owns, for operators and tests.
    pub fn record_of_account(&self, email: &str) -> Result<Option<RecordId>, AppError> {
        let email = normalise_email(email).unwrap_or_default();
        Ok(self.store.account_by_email(&email)?.and_then(|a| a.record))
    }

    /// Whether this session proved both factors recently enough for a sensitive action.
    pub fn recently_authenticated(&self, who: &SignedIn) -> bool {
        let window = self
            .identity
            .as_ref()
            .map_or(REAUTH_WINDOW_MS, |i| i.reauth_window_ms);
        who.session
            .second_factor_at
            .is_some_and(|at| now_ms() - at < window)
    }

    pub(crate) fn require_recent(&self, who: &SignedIn) -> Result<(), AppError> {
        if self.recently_authenticated(who) {
            Ok(())
        } else {
            Err(AppError::Unauthenticated(
                "confirm your password and security code first".into(),
            ))
        }
    }

    /// Asks again before a sensitive action: the password and a code from the authenticator
    /// (or a recovery code). Limited like sign-in.
    pub fn reauthenticate(
        &self,
        who: &SignedIn,
        password_typed: &str,
        code: &str,
        client: &str,
    ) -> Result<(), AppError> {
        let identity = self.identity()?;
        let keys = code_keys(who, client);
        identity.throttle.check(&keys)?;
        if !password::verify(password_typed, &who.account.password_hash) {
            identity.throttle.failed(&keys);
            return Err(AppError::Rejected(FormProblem::SignInFailed));
        }
        match self.totp_verify(who, code, client) {
            Err(AppError::Rejected(_)) => self.recovery_code_sign_in(who, code, client),
            other => other,
        }
    }

    /// Changes the password of a recently authenticated account; every other session ends
    /// and the owner is told by email.
    pub fn change_password(
        &self,
        who: &SignedIn,
        password_typed: &str,
        confirm: &str,
    ) -> Result<Result<(), Vec<FormProblem>>, AppError> {
        let identity = self.identity()?;
        self.require_recent(who)?;
        let mut problems = Vec::new();
        problems.extend(new_password_problems(
            password_typed,
            confirm,
            &[&who.account.email],
        ));
        if !problems.is_empty() {
            return Ok(Err(problems));
        }
        let mut account = who.account.clone();
        account.password_hash = password::hash(password_typed).map_err(internal)?;
        let this = who.session.clone();
        self.store.write(WriteBatch {
            ops: vec![
                WriteOp::PutAccount(account),
                WriteOp::EndSessions {
                    account_id: who.account.id.clone(),
                    only: None,
                },
                WriteOp::PutSession(this),
            ],
        })?;
        if let Err(e) = identity.mailer.send(
            &who.account.email,
            "Your Hale password has been changed",
            "Your Hale password has just been changed, and every other device signed in to your account has been signed out.\n\n\
             If you did not do this, reset your password now from the sign-in page, and tell the people who run your Hale service.",
        ) {
            tracing::warn!(error = %e, "could not send the password-changed notice");
        }
        Ok(Ok(()))
    }

    /// Ten new recovery codes for a recently authenticated account; the old ones stop
    /// working.
    pub fn new_recovery_codes(&self, who: &SignedIn) -> Result<Vec<String>, AppError> {
        self.require_recent(who)?;
        let codes = secret::recovery_codes();
        self.store.write(WriteBatch {
            ops: vec![WriteOp::SetRecoveryCodes {
                account_id: who.account.id.clone(),
                hashes: codes.iter().map(|c| secret::digest(c)).collect(),
            }],
        })?;
        Ok(codes)
    }

    /// Deletes the account for good, and the record that is its own with everything in it
    /// (the right to erasure): both factors proven recently. One transaction takes the record,
    /// its key, the account and everything that signs in to it or reaches the record (see
    /// [`WriteOp::EraseRecord`]); the people the person shared with lose access with it. The
    /// audit log keeps the record's entries and gains one for the erasure: they say who did
    /// what and when, never what the record held, and the service must be able to show them.
    /// The person is told by email, in case it was not them.
    pub fn erase_account(&self, who: &SignedIn, request_id: &str) -> Result<(), AppError> {
        let identity = self.identity()?;
        self.require_recent(who)?;
        let account_id = who.account.id.clone();
        let record = who.account.record.clone();
        let entry = hale_store::AuditEntry {
            at: now_ms(),
            record: record.clone(),
            actor: format!("account:{account_id}"),
            on_behalf_of: None,
            app: None,
            action: "erase".into(),
            what: if record.is_some() {
                "the account and its record".into()
            } else {
                "the account".into()
            },
            purpose: "personal".into(),
            outcome: "ok".into(),
            request_id: request_id.to_owned(),
        };
        let (erase, what) = match record {
            Some(record) => (
                WriteOp::EraseRecord { record },
                "Your Hale account, and the record that was in it, have been deleted as you asked. \
                 Nothing in it can be recovered, and anyone you shared it with can no longer see it.",
            ),
            None => (
                WriteOp::DeleteAccount { account_id },
                "Your Hale account has been deleted as you asked.",
            ),
        };
        self.store.write(WriteBatch {
            ops: vec![WriteOp::Audit(entry), erase],
        })?;
        let body = format!(
            "{what}\n\nIf you did not do this, tell the people who run your Hale service straight away."
        );
        if let Err(e) = identity.mailer.send(
            &who.account.email,
            "Your Hale account has been deleted",
            &body,
        ) {
            tracing::warn!(error = %e, "could not send the account-deleted notice");
        }
        Ok(())
    }

    /// How many recovery codes the account has left.
    pub fn recovery_codes_left(&self, who: &SignedIn) -> Result<i64, AppError> {
        Ok(self.store.recovery_codes_left(&who.account.id)?)
    }

    /// The account's sessions, most recent first.
    pub fn sessions(&self, who: &SignedIn) -> Result<Vec<Session>, AppError> {
        Ok(self.store.sessions_of(&who.account.id)?)
    }

    /// Ends one of the account's sessions (by its key hash), or every one of them.
    pub fn end_sessions(&self, who: &SignedIn, only: Option<&str>) -> Result<(), AppError> {
        self.store.write(WriteBatch {
            ops: vec![WriteOp::EndSessions {
                account_id: who.account.id.clone(),
                only: only.map(str::to_owned),
            }],
        })?;
        Ok(())
    }

    /// The record a signed-in person may see, only once they have completed a second
    /// factor (DAPB3051: no health data on a password alone).
    pub fn own_record(&self, who: &SignedIn) -> Result<RecordId, AppError> {
        if who.strength() < AuthStrength::TwoFactor {
            return Err(AppError::Unauthenticated(
                "a second factor is needed before health data is shown".into(),
            ));
        }
        who.account
            .record
            .clone()
            .ok_or_else(|| AppError::Forbidden("this account has no record of its own".into()))
    }
}

fn unix_secs() -> u64 {
    u64::try_from(now_ms() / 1000).unwrap_or(0)
}

/// The sign-in limit keys for a code typed by a signed-in account: the account, and the
/// address it came from.
pub(crate) fn code_keys(who: &SignedIn, client: &str) -> [String; 2] {
    [format!("totp:{}", who.account.id), format!("addr:{client}")]
}

/// The session as it is once a second factor has just been proven.
pub(crate) fn with_second_factor(who: &SignedIn) -> Session {
    let mut session = who.session.clone();
    session.second_factor_at = Some(now_ms());
    session
}

/// What is wrong with a new password and its confirmation, if anything.
fn new_password_problems(typed: &str, confirm: &str, user_inputs: &[&str]) -> Vec<FormProblem> {
    let mut problems = Vec::new();
    match password::check_strength(typed, user_inputs) {
        Ok(()) => {}
        Err(Weakness::TooShort) => problems.push(FormProblem::PasswordTooShort),
        Err(Weakness::TooLong) => problems.push(FormProblem::PasswordTooLong),
        Err(Weakness::TooEasyToGuess) => problems.push(FormProblem::PasswordTooEasy),
    }
    if typed != confirm {
        problems.push(FormProblem::PasswordsDiffer);
    }
    problems
}

/// A short, non-identifying description of a browser for the list of sessions: the
/// browser's and the system's names as `Browser;System` (either may be empty when not
/// recognised; the page words it). The full user-agent string is not kept.
pub fn describe_browser(user_agent: &str) -> String {
    let browser = [
        ("Edg/", "Edge"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
    ]
    .iter()
    .find(|(marker, _)| user_agent.contains(marker))
    .map_or("", |(_, name)| name);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Windows", "Windows"),
        ("Mac OS X", "Mac"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(marker, _)| user_agent.contains(marker))
    .map_or("", |(_, name)| name);
    format!("{browser};{system}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_addresses_are_normalised_and_nonsense_is_refused() {
        assert_eq!(
            normalise_email("  Alex.Example@Example.ORG "),
            Some("alex.example@example.org".into())
        );
        for bad in [
            "",
            "alex",
            "alex@",
            "@example.org",
            "alex@example",
            "a b@example.org",
            "a@b@c.org",
            "a@.org",
        ] {
            assert_eq!(normalise_email(bad), None, "{bad}");
        }
    }

    #[test]
    fn browsers_are_described_without_identifying_detail() {
        let ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
        assert_eq!(describe_browser(ua), "Chrome;Linux");
        assert_eq!(describe_browser("curl/8.0"), ";");
    }
}
