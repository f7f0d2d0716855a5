//! `hale`: run Hale, and operate it. The command line lives in `hale_server::cli`, so the
//! integration tests can run exactly the same code as a child process.

fn main() -> anyhow::Result<()> {
    hale_server::cli::run()
}
