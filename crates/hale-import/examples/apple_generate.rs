//! Writes a synthetic Apple Health export (for benchmarks and trying Hale out).
//!
//!     cargo run --release -p hale-import --example apple_generate -- OUT.xml RECORDS [--ios16] [--messy]

use std::io::{BufWriter, Write};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(out), Some(records)) = (args.get(1), args.get(2).and_then(|r| r.parse().ok())) else {
        eprintln!("usage: apple_generate OUT.xml RECORDS [--ios16] [--messy]");
        std::process::exit(2);
    };
    let opts = hale_import::synthetic::Options {
        records,
        seed: 42,
        ios16_dtd: args.iter().any(|a| a == "--ios16"),
        messy: args.iter().any(|a| a == "--messy"),
    };
    let mut w = BufWriter::new(std::fs::File::create(out)?);
    let written = hale_import::synthetic::write_export(&mut w, opts)?;
    w.flush()?;
    println!(
        "importable={} unknown_types={}",
        written.importable, written.unknown_types
    );
    Ok(())
}
