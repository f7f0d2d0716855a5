//! `hale`: run Hale, and operate it. The command line lives in `hale_server::cli`, so the
//! integration tests can run exactly the same code as a child process.

/// See the note on `mimalloc` in Cargo.toml.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    hale_server::cli::run()
}
