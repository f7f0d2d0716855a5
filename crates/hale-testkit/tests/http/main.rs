//! The one integration-test binary: every HTTP and command-line test, against a real server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod access_matrix;
mod accounts;
mod api;
mod audit;
mod backend;
mod bad_input;
mod cli;
mod demo;
mod durability;
mod encryption;
mod erasure;
mod examples;
mod golden;
mod import;
mod labels;
mod mail;
mod oauth;
mod oidc;
mod pages;
mod passkeys;
mod record;
mod samples;
mod sharing;
mod synthea;
mod tls;
mod uploads;

/// The real `hale` command line (built as `hale-under-test`), without any `HALE_KEY` from
/// the environment, so each test's key file is the one used.
pub fn hale() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_hale-under-test"));
    c.env_remove("HALE_KEY");
    c
}

/// Runs the command line with these arguments and returns what happened.
pub fn run(args: &[&str]) -> std::process::Output {
    hale().args(args).output().unwrap()
}

/// Runs the command line and returns its standard output, trimmed; the test fails if it did.
pub fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "hale {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap().trim().to_owned()
}

/// A bearer token for everything in one record, issued through the command line.
pub fn record_token(data_dir: &str, record: &str) -> String {
    ok(&[
        "admin",
        "token",
        "issue",
        "--data-dir",
        data_dir,
        "--record",
        record,
        "--scope",
        "patient/*.cruds",
    ])
}

/// Creates a person's record in a data folder through the command line; returns its id.
pub fn new_person(data_dir: &str, name: &str) -> String {
    ok(&[
        "admin",
        "person",
        "create",
        "--data-dir",
        data_dir,
        "--name",
        name,
    ])
}
