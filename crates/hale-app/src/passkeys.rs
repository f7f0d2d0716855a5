//! Passkeys (issue 3 §2): a WebAuthn credential as the second factor, beside the
//! authenticator app's codes. The person adds one from "Your account" (both factors proven
//! recently), and then, after their password, can use it instead of a code. The challenge
//! state of each ceremony travels sealed in the browser's form, bound to the session, so a
//! state from another session or a changed one does not open.
//!
//! WebAuthn needs a domain name: with a public address that is an IP address, passkeys are
//! not offered (the authenticator app still is).

use hale_store::{StoredPasskey, WriteBatch, WriteOp};
use serde_json::Value;
use webauthn_rs::prelude::{
    Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
};

use crate::accounts::SignedIn;
use crate::{App, AppError};

/// Why a passkey step was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasskeyProblem {
    /// No name, or too long.
    NameMissing,
    /// The browser sent no passkey: JavaScript is off, or the person cancelled.
    NotMade,
    /// The passkey did not check (another site's, tampered, an unknown one, a stale
    /// ceremony).
    NotAccepted,
}

/// The relying party: this Hale, by its public address.
pub(crate) struct Passkeys {
    webauthn: Webauthn,
}

impl std::fmt::Debug for Passkeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passkeys(..)")
    }
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(e.to_string())
}

impl Passkeys {
    /// The relying party for `public_url`; `None` when its host is not a domain name.
    pub(crate) fn for_site(public_url: &str) -> Option<Self> {
        let url = Url::parse(public_url).ok()?;
        let host = url.host_str()?;
        if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
            return None;
        }
        let webauthn = WebauthnBuilder::new(host, &url)
            .ok()?
            .rp_name("Hale")
            .build()
            .ok()?;
        Some(Self { webauthn })
    }
}

fn context(who: &SignedIn, step: &str) -> String {
    format!("passkey-{step}:{}", who.session.key_hash)
}

impl App {
    /// Turns on passkeys for a Hale served at `public_url` (if it is a domain name), once
    /// the address is known.
    pub fn enable_passkeys(&self, public_url: &str) {
        match Passkeys::for_site(public_url) {
            Some(p) => {
                let _ = self.passkeys.set(p);
            }
            None => tracing::info!(
                "passkeys need a domain name in the public address; they are not offered"
            ),
        }
    }

    /// Whether passkeys can be used here.
    pub fn passkeys_available(&self) -> bool {
        self.passkeys.get().is_some()
    }

    fn relying_party(&self) -> Result<&Webauthn, AppError> {
        self.passkeys
            .get()
            .map(|p| &p.webauthn)
            .ok_or_else(|| AppError::NotSupported("passkeys are not available here".into()))
    }

    fn seal_state(
        &self,
        who: &SignedIn,
        step: &str,
        state: &impl serde::Serialize,
    ) -> Result<String, AppError> {
        use base64::Engine as _;
        let json = serde_json::to_vec(state).map_err(internal)?;
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(self.identity()?.seal.seal(&json, &context(who, step))))
    }

    fn open_state<T: serde::de::DeserializeOwned>(
        &self,
        who: &SignedIn,
        step: &str,
        sealed: &str,
    ) -> Option<T> {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sealed.trim())
            .ok()?;
        let json = self
            .identity()
            .ok()?
            .seal
            .open(&bytes, &context(who, step))
            .ok()?;
        serde_json::from_slice(&json).ok()
    }

    /// The account's passkeys, oldest first.
    pub fn passkeys_of(&self, who: &SignedIn) -> Result<Vec<StoredPasskey>, AppError> {
        Ok(self.store.passkeys_of(&who.account.id)?)
    }

    /// Starts adding a passkey: the options for the browser, and the sealed state to send
    /// back with the new credential. Both factors must have been proven recently.
    pub fn passkey_register_begin(&self, who: &SignedIn) -> Result<(Value, String), AppError> {
        self.require_recent(who)?;
        let rp = self.relying_party()?;
        let user = Uuid::parse_str(&who.account.id).map_err(internal)?;
        let existing: Vec<_> = self
            .passkeys_of(who)?
            .iter()
            .filter_map(|p| serde_json::from_str::<Passkey>(&p.passkey).ok())
            .map(|p| p.cred_id().clone())
            .collect();
        let (options, state) = rp
            .start_passkey_registration(
                user,
                &who.account.email,
                &who.account.email,
                Some(existing),
            )
            .map_err(internal)?;
        Ok((
            serde_json::to_value(options).map_err(internal)?,
            self.seal_state(who, "add", &state)?,
        ))
    }

    /// Finishes adding a passkey named `name` from the browser's credential (JSON).
    pub fn passkey_register_finish(
        &self,
        who: &SignedIn,
        sealed_state: &str,
        credential: &str,
        name: &str,
    ) -> Result<Result<(), Vec<PasskeyProblem>>, AppError> {
        self.require_recent(who)?;
        let rp = self.relying_party()?;
        let mut problems = Vec::new();
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            problems.push(PasskeyProblem::NameMissing);
        }
        if credential.trim().is_empty() {
            problems.push(PasskeyProblem::NotMade);
        }
        if !problems.is_empty() {
            return Ok(Err(problems));
        }
        let state: Option<PasskeyRegistration> = self.open_state(who, "add", sealed_state);
        let made: Option<RegisterPublicKeyCredential> = serde_json::from_str(credential).ok();
        let passkey = match (state, made) {
            (Some(state), Some(made)) => rp.finish_passkey_registration(&made, &state).ok(),
            _ => None,
        };
        let Some(passkey) = passkey else {
            return Ok(Err(vec![PasskeyProblem::NotAccepted]));
        };
        use base64::Engine as _;
        let id =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(passkey.cred_id().as_ref());
        self.store.write(WriteBatch {
            ops: vec![WriteOp::PutPasskey(StoredPasskey {
                credential_id: id,
                account_id: who.account.id.clone(),
                name: name.to_owned(),
                passkey: serde_json::to_string(&passkey).map_err(internal)?,
                created_at: hale_fhir::date::now_millis(),
                last_used_at: None,
            })],
        })?;
        Ok(Ok(()))
    }

    /// Removes one of the account's passkeys (both factors proven recently).
    pub fn passkey_remove(&self, who: &SignedIn, credential_id: &str) -> Result<(), AppError> {
        self.require_recent(who)?;
        self.store.write(WriteBatch {
            ops: vec![WriteOp::DeletePasskey {
                account_id: who.account.id.clone(),
                credential_id: credential_id.to_owned(),
            }],
        })?;
        Ok(())
    }

    /// Starts signing in with a passkey after the password: the options for the browser
    /// and the sealed state; `None` if the account has no passkey.
    pub fn passkey_sign_in_begin(
        &self,
        who: &SignedIn,
    ) -> Result<Option<(Value, String)>, AppError> {
        let rp = self.relying_party()?;
        let keys: Vec<Passkey> = self
            .passkeys_of(who)?
            .iter()
            .filter_map(|p| serde_json::from_str(&p.passkey).ok())
            .collect();
        if keys.is_empty() {
            return Ok(None);
        }
        let (options, state) = rp.start_passkey_authentication(&keys).map_err(internal)?;
        Ok(Some((
            serde_json::to_value(options).map_err(internal)?,
            self.seal_state(who, "sign-in", &state)?,
        )))
    }

    /// Finishes signing in with a passkey: the session has then proven both factors.
    /// Failures count towards the same limits as security codes.
    pub fn passkey_sign_in_finish(
        &self,
        who: &SignedIn,
        sealed_state: &str,
        credential: &str,
        client: &str,
    ) -> Result<Result<(), PasskeyProblem>, AppError> {
        let rp = self.relying_party()?;
        let identity = self.identity()?;
        let keys = crate::accounts::code_keys(who, client);
        identity.throttle.check(&keys)?;
        if credential.trim().is_empty() {
            return Ok(Err(PasskeyProblem::NotMade));
        }
        let state: Option<PasskeyAuthentication> = self.open_state(who, "sign-in", sealed_state);
        let used: Option<PublicKeyCredential> = serde_json::from_str(credential).ok();
        let result = match (state, used) {
            (Some(state), Some(used)) => rp.finish_passkey_authentication(&used, &state).ok(),
            _ => None,
        };
        let Some(result) = result else {
            identity.throttle.failed(&keys);
            return Ok(Err(PasskeyProblem::NotAccepted));
        };
        identity.throttle.succeeded(&keys[0]);
        let now = hale_fhir::date::now_millis();
        let mut ops = Vec::new();
        for mut stored in self.passkeys_of(who)? {
            let Ok(mut key) = serde_json::from_str::<Passkey>(&stored.passkey) else {
                continue;
            };
            if key.cred_id() == result.cred_id() {
                key.update_credential(&result);
                stored.passkey = serde_json::to_string(&key).map_err(internal)?;
                stored.last_used_at = Some(now);
                ops.push(WriteOp::PutPasskey(stored));
            }
        }
        ops.push(WriteOp::PutSession(crate::accounts::with_second_factor(
            who,
        )));
        self.store.write(WriteBatch { ops })?;
        Ok(Ok(()))
    }
}
