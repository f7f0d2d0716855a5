//! The master key: where it comes from, and creating it on first start.
//!
//! The key encrypts the SQLite database (SQLCipher) and wraps every record's key. Without
//! it the data cannot be read by anyone, including the operator: back it up apart from the
//! data. It is read from `HALE_KEY` (64 hex digits) if set, else from the key file
//! (`--key-file`, default `DATA_DIR/hale.key`), which is created, readable by the owner
//! only, when a new database is created.

use std::io::Write;

use anyhow::{Context, bail};
use hale_store::MasterKey;

use crate::Config;

fn parse_hex(text: &str) -> anyhow::Result<MasterKey> {
    let text = text.trim();
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("a Hale key is 64 hexadecimal digits");
    }
    let mut bytes = [0u8; 32];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).context("bad hex digit")?;
    }
    Ok(MasterKey::from_bytes(bytes))
}

/// Loads the master key, creating the key file when `fresh` (a new database) and no key
/// exists. An existing database without its key is an error that says so plainly.
pub fn load_or_create_master_key(config: &Config, fresh: bool) -> anyhow::Result<MasterKey> {
    if let Some(hex) = &config.key_hex {
        return parse_hex(hex).context("HALE_KEY is not a valid key");
    }
    let path = config
        .key_file
        .clone()
        .unwrap_or_else(|| config.data_dir.join("hale.key"));
    match std::fs::read_to_string(&path) {
        Ok(text) => parse_hex(&text)
            .with_context(|| format!("the key file {} is not a valid key", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && fresh => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            let key = MasterKey::generate();
            let hex = hale_core::hex(key.bytes());
            let mut file = open_private(&path)
                .with_context(|| format!("cannot create the key file {}", path.display()))?;
            file.write_all(format!("{hex}\n").as_bytes())?;
            file.sync_all()?;
            tracing::info!(path = %path.display(), "created a new master key: back it up apart from the data");
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "the key file {} is missing. The database is encrypted with it and cannot be read without it: \
             restore the key from your backup (or set HALE_KEY)",
            path.display()
        ),
        Err(e) => Err(e).with_context(|| format!("cannot read the key file {}", path.display())),
    }
}

#[cfg(unix)]
fn open_private(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    // 0600: the key is as sensitive as all the data it protects.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_private(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}
