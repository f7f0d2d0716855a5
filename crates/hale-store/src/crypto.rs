//! Sealing of resource content with a per-record key (crypto-shredding).
//!
//! Each record has its own random 256-bit key, stored wrapped (encrypted) by the master key.
//! Content is sealed with XChaCha20-Poly1305: a random 192-bit nonce per write makes nonce
//! reuse a non-issue without counters, and the row's identity (record, type, id, version) is
//! the associated data, so a sealed blob moved to another row fails to open. Destroying a
//! record's wrapped key makes every copy of its content (including old backups) unreadable.

use std::collections::HashMap;
use std::sync::RwLock;

use chacha20::cipher::consts::U10;
use chacha20::cipher::generic_array::GenericArray;
use rand::RngCore;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};

use crate::StoreError;

const NONCE: usize = 24;

/// The installation's master key: 32 bytes from the key file or `HALE_KEY`.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// A key from its bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        Self(k)
    }

    /// The raw bytes (to write the key file, or derive the SQLCipher key).
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A key for another purpose, derived so that the two can never be confused
    /// (HMAC-style domain separation through the AEAD's key schedule is not enough; we hash).
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"hale-key-derivation-v1\0");
        h.update(purpose.as_bytes());
        h.update([0]);
        h.update(self.0);
        h.finalize().into()
    }
}

/// XChaCha20-Poly1305 as draft-irtf-cfrg-xchacha builds it: HChaCha20 makes a subkey from
/// the key and the nonce's first 16 bytes, and ChaCha20-Poly1305 runs under that subkey with
/// the nonce's last 8 bytes. The bulk work is ring's (assembly): RustCrypto's
/// `chacha20poly1305` 0.10 left its AVX2 intrinsics as calls on this compiler, a quarter of
/// the time of reading a whole record. The bytes are the same as before (a test holds it).
fn xchacha(key: &[u8; 32], nonce: &[u8; NONCE]) -> Option<(LessSafeKey, Nonce)> {
    let subkey = chacha20::hchacha::<U10>(
        GenericArray::from_slice(key),
        GenericArray::from_slice(&nonce[..16]),
    );
    let cipher = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &subkey).ok()?);
    let mut short = [0u8; 12];
    short[4..].copy_from_slice(&nonce[16..]);
    Some((cipher, Nonce::assume_unique_for_key(short)))
}

fn seal_with(key: &[u8; 32], plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, StoreError> {
    let failed = || StoreError::Database("sealing failed".into());
    let mut nonce = [0u8; NONCE];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let (cipher, short) = xchacha(key, &nonce).ok_or_else(failed)?;
    let mut out = Vec::with_capacity(NONCE + plaintext.len() + CHACHA20_POLY1305.tag_len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let tag = cipher
        .seal_in_place_separate_tag(short, Aad::from(aad), &mut out[NONCE..])
        .map_err(|_| failed())?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Opens `sealed` in place (its buffer becomes the plaintext's).
fn open_with(key: &[u8; 32], mut sealed: Vec<u8>, aad: &[u8]) -> Option<Vec<u8>> {
    let nonce: [u8; NONCE] = sealed.get(..NONCE)?.try_into().ok()?;
    let (cipher, short) = xchacha(key, &nonce)?;
    let len = cipher
        .open_within(short, Aad::from(aad), &mut sealed, NONCE..)
        .ok()?
        .len();
    sealed.truncate(len);
    Some(sealed)
}

/// The master key and an in-memory cache of unwrapped record keys.
pub struct Keyring {
    master: [u8; 32],
    audit: [u8; 32],
    cache: RwLock<HashMap<String, [u8; 32]>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyring(..)")
    }
}

impl Keyring {
    /// A keyring under `master`.
    pub fn new(master: &MasterKey) -> Self {
        Self {
            master: master.derive("record-key-wrapping"),
            audit: master.derive("audit-log"),
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// The key that signs the audit log's head and checkpoints.
    pub fn audit_key(&self) -> &[u8; 32] {
        &self.audit
    }

    /// A new record key, returned wrapped for storage (and cached unwrapped).
    pub fn new_record_key(&self, record: &str) -> Result<Vec<u8>, StoreError> {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        let wrapped = seal_with(&self.master, &key, record.as_bytes())?;
        if let Ok(mut c) = self.cache.write() {
            c.insert(record.to_owned(), key);
        }
        Ok(wrapped)
    }

    /// The record's key: from the cache, or unwrapped with `load` (which reads the stored
    /// wrapped key; `None` if it has been destroyed).
    pub fn record_key(
        &self,
        record: &str,
        load: impl FnOnce() -> Result<Option<Vec<u8>>, StoreError>,
    ) -> Result<[u8; 32], StoreError> {
        if let Some(k) = self.cache.read().ok().and_then(|c| c.get(record).copied()) {
            return Ok(k);
        }
        let wrapped = load()?.ok_or_else(|| StoreError::Sealed(record.to_owned()))?;
        let bytes = open_with(&self.master, wrapped, record.as_bytes())
            .ok_or_else(|| StoreError::Sealed(record.to_owned()))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| StoreError::Sealed(record.to_owned()))?;
        if let Ok(mut c) = self.cache.write() {
            c.insert(record.to_owned(), key);
        }
        Ok(key)
    }

    /// Forgets a record's key (after erasure).
    pub fn forget(&self, record: &str) {
        if let Ok(mut c) = self.cache.write() {
            c.remove(record);
        }
    }

    /// Seals content of one version of one resource.
    pub fn seal(
        key: &[u8; 32],
        row: (&str, &str, &str, i64),
        plaintext: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        seal_with(key, plaintext, &row_aad(row))
    }

    /// Opens content sealed by [`Keyring::seal`] for the same row, in `sealed`'s own buffer.
    pub fn open(
        key: &[u8; 32],
        row: (&str, &str, &str, i64),
        sealed: Vec<u8>,
    ) -> Result<Vec<u8>, StoreError> {
        open_with(key, sealed, &row_aad(row)).ok_or_else(|| StoreError::Sealed(row.0.to_owned()))
    }
}

fn row_aad((record, rtype, id, version): (&str, &str, &str, i64)) -> Vec<u8> {
    format!("{record}\0{rtype}\0{id}\0{version}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The format is RustCrypto's XChaCha20-Poly1305 (what sealed every record before ring
    /// did the bulk work): each opens what the other sealed, and neither opens a changed byte.
    #[test]
    fn content_sealed_before_and_after_the_change_of_library_opens_either_way() {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        use chacha20poly1305::{XChaCha20Poly1305, XNonce};
        let key = [7u8; 32];
        let aad = b"r1\x00Observation\x00o1\x003";
        for len in [0usize, 1, 63, 64, 65, 1500, 70_000] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 31 % 256) as u8).collect();
            let ours = seal_with(&key, &plain, aad).unwrap();
            let (nonce, body) = ours.split_at(NONCE);
            let theirs = XChaCha20Poly1305::new((&key).into())
                .decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad })
                .unwrap();
            assert_eq!(theirs, plain, "{len}");
            let nonce = [len as u8; NONCE];
            let mut old = nonce.to_vec();
            old.extend(
                XChaCha20Poly1305::new((&key).into())
                    .encrypt(XNonce::from_slice(&nonce), Payload { msg: &plain, aad })
                    .unwrap(),
            );
            assert_eq!(open_with(&key, old.clone(), aad).unwrap(), plain, "{len}");
            let last = old.len() - 1;
            old[last] ^= 1;
            assert!(open_with(&key, old, aad).is_none());
        }
        assert!(open_with(&key, vec![0; 10], aad).is_none());
    }

    #[test]
    fn sealed_content_opens_only_for_its_own_row() {
        let ring = Keyring::new(&MasterKey::generate());
        let wrapped = ring.new_record_key("r1").unwrap();
        let key = ring.record_key("r1", || Ok(Some(wrapped.clone()))).unwrap();
        let sealed = Keyring::seal(&key, ("r1", "Observation", "o1", 1), b"{\"a\":1}").unwrap();
        assert!(!sealed.windows(5).any(|w| w == b"\"a\":1"));
        assert_eq!(
            Keyring::open(&key, ("r1", "Observation", "o1", 1), sealed.clone()).unwrap(),
            b"{\"a\":1}"
        );
        assert!(Keyring::open(&key, ("r1", "Observation", "o1", 2), sealed).is_err());
    }

    #[test]
    fn a_destroyed_or_foreign_key_cannot_open_a_record() {
        let ring = Keyring::new(&MasterKey::generate());
        let wrapped = ring.new_record_key("r1").unwrap();
        let other = Keyring::new(&MasterKey::generate());
        assert!(
            other
                .record_key("r1", || Ok(Some(wrapped.clone())))
                .is_err()
        );
        assert!(other.record_key("r1", || Ok(None)).is_err());
    }
}
