//! Parse speed of the Apple Health reader on a synthetic export (a benchmark, not a test).
//!
//!     cargo run --release -p hale-import --example apple_parse_speed -- 2000000
//!
//! Prints `metric=… value=…` lines.

use std::io::{BufWriter, Write};
use std::time::Instant;

fn main() -> std::io::Result<()> {
    let records: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let path = std::env::temp_dir().join(format!("hale-apple-{}.xml", std::process::id()));
    let mut out = BufWriter::new(std::fs::File::create(&path)?);
    let written = hale_import::synthetic::write_export(
        &mut out,
        hale_import::synthetic::Options {
            records,
            seed: 1,
            ios16_dtd: true,
            messy: true,
        },
    )?;
    out.flush()?;
    drop(out);
    let bytes = std::fs::metadata(&path)?.len();
    let start = Instant::now();
    let mut reader = hale_import::apple_health::Reader::new(std::fs::File::open(&path)?);
    let mut n = 0u64;
    for item in reader.by_ref() {
        if item.is_ok() {
            n += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    std::fs::remove_file(&path)?;
    assert_eq!(n, written.importable);
    println!(
        "metric=apple_parse_mb_s value={:.0}",
        bytes as f64 / 1e6 / secs
    );
    println!(
        "metric=apple_parse_records_s value={:.0}",
        reader.report().records as f64 / secs
    );
    println!("metric=apple_parse_bytes value={bytes}");
    Ok(())
}
