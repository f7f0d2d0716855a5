//! The `hale` command line, for the integration tests to run as a child process.

fn main() -> anyhow::Result<()> {
    hale_server::cli::run()
}
