//! Mutation fuzzing of every reader: real and synthetic inputs, damaged thousands of ways
//! (bits flipped, bytes cut, chunks repeated or dropped, control characters and markup
//! inserted). Each damaged input must end in samples, reports or a clear error: never a panic
//! (the test fails) and never a hang (each input is held to a time limit).
//!
//! Deterministic: the same seeds run every time, so a failure names an input to reproduce.
//! `HALE_FUZZ_ROUNDS` raises the number of mutations for a longer local run.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::io::{Cursor, Write};
use std::time::{Duration, Instant};

use hale_import::{
    SampleReader, UtcOffset, apple_health, archive, csv, fit, fitbit, google_fit, omh,
};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INSERTS: &[&[u8]] = &[
    b"\x0b",
    b"\0",
    b"<",
    b">",
    b"&",
    b"&xxe;",
    b"<!ENTITY x SYSTEM \"file:///etc/passwd\">",
    b"]]>",
    b"\"",
    b"{",
    b"}",
    b"[",
    b"9999999999999999999999",
    b"-1",
    b"\xff\xfe",
    b"PK\x03\x04",
];

/// One input damaged a few ways.
fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        if out.is_empty() {
            out.extend_from_slice(INSERTS[rng.below(INSERTS.len())]);
            continue;
        }
        let at = rng.below(out.len());
        match rng.below(6) {
            0 => out[at] ^= 1 << rng.below(8),
            1 => out.truncate(at),
            2 => {
                let end = (at + 1 + rng.below(64)).min(out.len());
                out.drain(at..end);
            }
            3 => {
                let end = (at + 1 + rng.below(64)).min(out.len());
                let chunk = out[at..end].to_vec();
                out.splice(at..at, chunk);
            }
            4 => {
                let insert = INSERTS[rng.below(INSERTS.len())];
                out.splice(at..at, insert.iter().copied());
            }
            _ => out[at] = rng.next() as u8,
        }
    }
    out
}

fn rounds() -> usize {
    std::env::var("HALE_FUZZ_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(400)
}

/// Runs `read` on `rounds()` mutations of each seed, each within `limit`.
fn fuzz(name: &str, seeds: &[Vec<u8>], limit: Duration, read: impl Fn(&[u8])) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for (s, seed) in seeds.iter().enumerate() {
        read(seed);
        for round in 0..rounds() {
            let input = mutate(seed, &mut rng);
            let started = Instant::now();
            read(&input);
            assert!(
                started.elapsed() < limit,
                "{name}: seed {s} round {round} took {:?}",
                started.elapsed()
            );
        }
    }
}

/// Drains a reader to its end, whatever it yields.
fn drain(reader: impl SampleReader) {
    let mut reader = reader;
    for item in reader.by_ref() {
        if item.is_err() {
            break;
        }
    }
    let _ = reader.report();
}

fn data(path: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn synthetic_export(records: u64, ios16_dtd: bool) -> Vec<u8> {
    let mut xml = Vec::new();
    let options = hale_import::synthetic::Options {
        records,
        seed: 7,
        ios16_dtd,
        messy: true,
    };
    hale_import::synthetic::write_export(&mut xml, options).unwrap();
    xml
}

fn zipped(xml: &[u8]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let stored = zip::write::SimpleFileOptions::default();
    zip.start_file("apple_health_export/export_cda.xml", stored)
        .unwrap();
    zip.write_all(b"<ClinicalDocument/><ClinicalDocument/>")
        .unwrap();
    zip.start_file("apple_health_export/export.xml", stored)
        .unwrap();
    zip.write_all(xml).unwrap();
    zip.finish().unwrap().into_inner()
}

#[test]
fn the_apple_health_xml_reader_survives_damaged_exports() {
    let seeds = vec![
        data("apple-health-export.xml"),
        synthetic_export(60, true),
        synthetic_export(60, false),
    ];
    fuzz(
        "apple health xml",
        &seeds,
        Duration::from_secs(1),
        |bytes| {
            drain(apple_health::Reader::new(bytes));
        },
    );
}

#[test]
fn the_zip_reader_survives_damaged_archives() {
    let seeds = vec![
        zipped(&synthetic_export(40, true)),
        zipped(&data("apple-health-export.xml")),
    ];
    fuzz("zip", &seeds, Duration::from_secs(1), |bytes| {
        let _ = archive::with_apple_health_export(
            Cursor::new(bytes),
            archive::Limits::default(),
            |xml| drain(apple_health::Reader::new(xml)),
        );
    });
}

#[test]
fn the_fit_reader_survives_damaged_files() {
    let seeds = vec![
        data("fit/WeightScaleMultiUser.fit"),
        data("fit/MonitoringFile.fit"),
        data("fit/garmin-fenix-5-run.fit"),
    ];
    fuzz("fit", &seeds, Duration::from_secs(1), |bytes| {
        if let Ok(read) = fit::read(bytes, "fuzz.fit") {
            drain(read);
        }
    });
}

#[test]
fn the_json_and_csv_readers_survive_damaged_files() {
    let seeds = vec![
        data("omh/blood-pressure.json"),
        data("fitbit/fitbit-sleep-date.json"),
        data("fitbit/fitbit-activities-heart-1d-1m-intraday.json"),
        data("google-fit/googlefit-merge-weight.json"),
    ];
    fuzz("json", &seeds, Duration::from_secs(1), |bytes| {
        if let Ok(read) = omh::read(bytes) {
            drain(read);
        }
        if let Ok(read) = fitbit::read(bytes, UtcOffset::UTC) {
            drain(read);
        }
        if let Ok(read) = google_fit::read(bytes) {
            drain(read);
        }
    });
    let table = b"Date,Weight\n2024-06-01 07:30,70.1\n2024-06-02T07:30:00Z,70.4\n".to_vec();
    fuzz("csv", &[table], Duration::from_secs(1), |bytes| {
        let mapping = csv::Mapping {
            metric: hale_import::metrics::by_id("body_weight").unwrap(),
            time: "Date".into(),
            end: None,
            value: "Weight".into(),
            unit: "kg".into(),
            offset: UtcOffset::UTC,
            source: "fuzz".into(),
        };
        if let Ok(read) = csv::Reader::new(bytes, mapping) {
            drain(read);
        }
    });
}
