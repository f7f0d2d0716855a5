//! The one integration-test binary: every HTTP and command-line test, against a real server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;
mod bad_input;
mod cli;
mod durability;
mod encryption;
mod examples;
mod import;
mod synthea;

/// The real `hale` command line (built as `hale-under-test`).
pub fn hale() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_hale-under-test"))
}
