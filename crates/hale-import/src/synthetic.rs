//! A generator of synthetic Apple Health exports, with the element shapes and sizes of real
//! ones (a DTD, `Me`, `Record`s with metadata, blood-pressure `Correlation`s, sleep
//! categories), for tests and benchmarks. Optionally with the iOS 16 DTD defect and the
//! messes real exports carry. Deterministic for a seed; no real person's data.

use std::io::{self, Write};

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// How many `Record` elements (the ones inside correlations included).
    pub records: u64,
    /// The seed.
    pub seed: u64,
    /// Write iOS 16's broken DTD (an `ATTLIST` missing its `>`).
    pub ios16_dtd: bool,
    /// Mix in the messes of real exports: unit case, control characters, other offsets,
    /// record types Hale does not import.
    pub messy: bool,
}

/// What was generated, for a test to compare an import against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Records of types Hale imports.
    pub importable: u64,
    /// Records of types Hale does not import.
    pub unknown_types: u64,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: plenty for shaping test data.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const GOOD_DTD: &str = "<!DOCTYPE HealthData [\n<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary|ClinicalRecord)*)>\n<!ATTLIST HealthData\n  locale CDATA #REQUIRED\n>\n<!ELEMENT Record ((MetadataEntry|HeartRateVariabilityMetadataList)*)>\n<!ATTLIST Record\n  type          CDATA #REQUIRED\n  unit          CDATA #IMPLIED\n  value         CDATA #IMPLIED\n>\n]>\n";
/// iOS 16: the `ATTLIST` of `Record` lost its closing `>`.
const BROKEN_DTD: &str = "<!DOCTYPE HealthData [\n<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary|ClinicalRecord)*)>\n<!ATTLIST HealthData\n  locale CDATA #REQUIRED\n>\n<!ELEMENT Record ((MetadataEntry|HeartRateVariabilityMetadataList)*)>\n<!ATTLIST Record\n  type          CDATA #REQUIRED\n  unit          CDATA #IMPLIED\n  value         CDATA #IMPLIED\n\n<!ELEMENT Correlation ((MetadataEntry|Record)*)>\n]>\n";

fn date(ms: i64, offset_hours: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms / 1000 + offset_hours * 3600)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let sign = if offset_hours < 0 { '-' } else { '+' };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} {sign}{:02}00",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        offset_hours.abs()
    )
}

/// Writes an export to `w`.
pub fn write_export(w: &mut impl Write, opts: Options) -> io::Result<Written> {
    let mut rng = Rng(opts.seed | 1);
    let mut written = Written::default();
    writeln!(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>")?;
    w.write_all(if opts.ios16_dtd { BROKEN_DTD } else { GOOD_DTD }.as_bytes())?;
    writeln!(w, "<HealthData locale=\"en_GB\">")?;
    writeln!(w, " <ExportDate value=\"2026-01-01 09:00:00 +0000\"/>")?;
    writeln!(
        w,
        " <Me HKCharacteristicTypeIdentifierDateOfBirth=\"1980-01-01\" HKCharacteristicTypeIdentifierBiologicalSex=\"HKBiologicalSexNotSet\"/>"
    )?;
    let mut t: i64 = 1_600_000_000_000;
    let mut n = 0;
    while n < opts.records {
        t += 60_000 + i64::try_from(rng.below(600_000)).unwrap_or(0);
        let offset = if opts.messy && rng.below(10) == 0 {
            -5
        } else {
            0
        };
        let source = if opts.messy && rng.below(50) == 0 {
            "Synthetic\u{b}Watch"
        } else {
            "Synthetic Watch"
        };
        let (kind, unit, value) = match rng.below(20) {
            0 if opts.records - n >= 2 => {
                // A blood pressure correlation holding two records.
                let s = 100 + rng.below(50);
                let d = 60 + rng.below(30);
                let when = date(t, offset);
                writeln!(
                    w,
                    " <Correlation type=\"HKCorrelationTypeIdentifierBloodPressure\" sourceName=\"{source}\" creationDate=\"{when}\" startDate=\"{when}\" endDate=\"{when}\">"
                )?;
                for (k, v) in [("Systolic", s), ("Diastolic", d)] {
                    writeln!(
                        w,
                        "  <Record type=\"HKQuantityTypeIdentifierBloodPressure{k}\" sourceName=\"{source}\" unit=\"mmHg\" creationDate=\"{when}\" startDate=\"{when}\" endDate=\"{when}\" value=\"{v}\"/>"
                    )?;
                }
                writeln!(w, " </Correlation>")?;
                n += 2;
                written.importable += 2;
                continue;
            }
            1 if opts.messy => (
                "HKCategoryTypeIdentifierSleepAnalysis",
                "",
                "HKCategoryValueSleepAnalysisAsleep".to_owned(),
            ),
            2..=4 => (
                "HKQuantityTypeIdentifierStepCount",
                "count",
                (rng.below(900) + 10).to_string(),
            ),
            5 => (
                "HKQuantityTypeIdentifierBodyMass",
                "kg",
                format!("{}.{}", 60 + rng.below(30), rng.below(10)),
            ),
            _ => (
                "HKQuantityTypeIdentifierHeartRate",
                if opts.messy && rng.below(5) == 0 {
                    "Count/Min"
                } else {
                    "count/min"
                },
                (50 + rng.below(80)).to_string(),
            ),
        };
        let start = date(t, offset);
        let end = date(
            t + if kind.contains("StepCount") {
                300_000
            } else {
                0
            },
            offset,
        );
        let unit_attr = if unit.is_empty() {
            String::new()
        } else {
            format!(" unit=\"{unit}\"")
        };
        writeln!(
            w,
            " <Record type=\"{kind}\" sourceName=\"{source}\" sourceVersion=\"9.1\"{unit_attr} creationDate=\"{end}\" startDate=\"{start}\" endDate=\"{end}\" value=\"{value}\">"
        )?;
        writeln!(
            w,
            "  <MetadataEntry key=\"HKMetadataKeyHeartRateMotionContext\" value=\"0\"/>"
        )?;
        writeln!(w, " </Record>")?;
        if kind.starts_with("HKCategory") {
            written.unknown_types += 1;
        } else {
            written.importable += 1;
        }
        n += 1;
    }
    writeln!(w, "</HealthData>")?;
    Ok(written)
}
