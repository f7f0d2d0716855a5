//! `hale import …`: wearable and app exports into a record, with progress and a closing report.
//! Works whether or not a server runs on the same data (the store allows several processes).

use std::io::{BufReader, Read, Seek};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Subcommand;
use hale_app::{App, ImportSummary};
use hale_core::{RecordId, RequestContext};
use hale_import::{SampleReader, UtcOffset};

use crate::cli::DataArgs;

#[derive(Subcommand)]
pub(crate) enum ImportCommand {
    /// An Apple Health export: the export.zip from "Export All Health Data", or the
    /// export.xml inside it. Safe to run again: what is already stored is skipped.
    AppleHealth {
        #[command(flatten)]
        data: DataArgs,
        /// The export.zip or export.xml file.
        file: PathBuf,
        /// The record to import into.
        #[arg(long)]
        record: String,
    },
    /// FIT files from Garmin and other devices (activities, all-day monitoring, scales); a
    /// damaged file is reported and the rest are read.
    Fit {
        #[command(flatten)]
        target: Files,
    },
    /// Fitbit Web API responses saved as JSON (heart rate, steps, weight, sleep).
    Fitbit {
        #[command(flatten)]
        target: Files,
        /// The offset of the Fitbit account's time zone (Fitbit writes local times),
        /// for example +01:00.
        #[arg(long, default_value = "Z", value_parser = offset)]
        utc_offset: UtcOffset,
    },
    /// Google Fit datasets or aggregate responses saved as JSON.
    GoogleFit {
        #[command(flatten)]
        target: Files,
    },
    /// Open mHealth (IEEE 1752) data points saved as JSON, each file one or a list.
    Omh {
        #[command(flatten)]
        target: Files,
    },
    /// A CSV file from any app, with the columns to read named.
    Csv {
        #[command(flatten)]
        data: DataArgs,
        /// The .csv file (with a header row).
        file: PathBuf,
        /// The record to import into.
        #[arg(long)]
        record: String,
        /// What the values are: heart_rate, steps, body_weight, … (see `hale_import::metrics`).
        #[arg(long)]
        metric: String,
        /// The column with the time (or the start of a span).
        #[arg(long)]
        time_column: String,
        /// The column with the end of a span, for counts such as steps.
        #[arg(long)]
        end_column: Option<String>,
        /// The column with the value.
        #[arg(long)]
        value_column: String,
        /// The unit of the values, for example kg, lb, bpm, mmol/L.
        #[arg(long)]
        unit: String,
        /// The offset of times written without one, for example +01:00.
        #[arg(long, default_value = "Z", value_parser = offset)]
        utc_offset: UtcOffset,
        /// The app or device the file came from.
        #[arg(long, default_value = "CSV file")]
        source: String,
    },
}

/// Files to import into a record.
#[derive(clap::Args)]
pub(crate) struct Files {
    #[command(flatten)]
    data: DataArgs,
    /// One or more files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The record to import into.
    #[arg(long)]
    record: String,
}

fn offset(s: &str) -> Result<UtcOffset, String> {
    hale_import::parse_offset(s).ok_or_else(|| format!("{s:?} is not an offset such as +01:00"))
}

/// Runs an import command.
pub(crate) fn run(command: ImportCommand) -> anyhow::Result<()> {
    match command {
        ImportCommand::AppleHealth { data, file, record } => {
            let mut import = Import::open(&data, &record, std::slice::from_ref(&file))?;
            import.apple_health(&file)?;
            import.finish()
        }
        ImportCommand::Fit { target } => each_file(&target, hale_import::fit::read),
        ImportCommand::Fitbit { target, utc_offset } => each_file(&target, |input, _| {
            hale_import::fitbit::read(input, utc_offset)
        }),
        ImportCommand::GoogleFit { target } => {
            each_file(&target, |input, _| hale_import::google_fit::read(input))
        }
        ImportCommand::Omh { target } => {
            each_file(&target, |input, _| hale_import::omh::read(input))
        }
        ImportCommand::Csv {
            data,
            file,
            record,
            metric,
            time_column,
            end_column,
            value_column,
            unit,
            utc_offset,
            source,
        } => {
            let metric = hale_import::metrics::by_id(&metric).with_context(|| {
                let known: Vec<&str> = hale_import::metrics::METRICS.iter().map(|m| m.id).collect();
                format!("unknown metric {metric:?}; one of: {}", known.join(", "))
            })?;
            let mapping = hale_import::csv::Mapping {
                metric,
                time: time_column,
                end: end_column,
                value: value_column,
                unit,
                offset: utc_offset,
                source,
            };
            let target = Files {
                data,
                files: vec![file],
                record,
            };
            each_file(&target, |input, _| {
                hale_import::csv::Reader::new(input, mapping.clone())
            })
        }
    }
}

/// Imports each file with `read`; a file that cannot be read is reported and the rest go on.
fn each_file<R: SampleReader>(
    target: &Files,
    read: impl Fn(BufReader<std::fs::File>, &str) -> Result<R, hale_import::ImportError>,
) -> anyhow::Result<()> {
    let mut import = Import::open(&target.data, &target.record, &target.files)?;
    for file in &target.files {
        let name = file_name(file);
        let input = std::fs::File::open(file).with_context(|| format!("cannot open {name}"))?;
        match read(BufReader::new(input), &name) {
            Ok(mut reader) => import.samples(&mut reader, &name)?,
            Err(e) => import.unreadable(&name, &e.to_string()),
        }
    }
    import.finish()
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// One run of `hale import`: the app, the running totals and the progress line.
struct Import {
    app: std::sync::Arc<App>,
    ctx: RequestContext,
    record: RecordId,
    total_bytes: u64,
    done: ImportSummary,
    unreadable: Vec<String>,
    started: Instant,
    shown: Instant,
}

impl Import {
    fn open(data: &DataArgs, record: &str, files: &[PathBuf]) -> anyhow::Result<Self> {
        let record = RecordId::parse(record).context("not a record id")?;
        let mut total_bytes = 0;
        for file in files {
            total_bytes += std::fs::metadata(file)
                .with_context(|| format!("cannot read {}", file.display()))?
                .len();
        }
        let app = crate::open_app(&data.config())?;
        let ctx = RequestContext::operator(
            hale_core::Actor::System {
                scopes: hale_core::Scopes::parse("system/*.cruds").context("scopes")?,
                subject: "operator-cli".into(),
            },
            "cli-import",
        );
        Ok(Self {
            app,
            ctx,
            record,
            total_bytes,
            done: ImportSummary::default(),
            unreadable: Vec::new(),
            started: Instant::now(),
            shown: Instant::now(),
        })
    }

    fn apple_health(&mut self, file: &Path) -> anyhow::Result<()> {
        let name = file_name(file);
        let mut input = std::fs::File::open(file).with_context(|| format!("cannot open {name}"))?;
        let mut magic = [0u8; 4];
        let is_zip = input
            .read(&mut magic)
            .map(|n| n == 4 && magic == *b"PK\x03\x04")
            .unwrap_or(false);
        input.rewind()?;
        if is_zip {
            // Progress counts the XML inside, so the whole is the XML's size, not the zip's.
            let zip_size = input.metadata().map(|m| m.len()).unwrap_or(0);
            if let Some(xml) = hale_import::archive::export_size(&mut input) {
                self.total_bytes = self.total_bytes - zip_size.min(self.total_bytes) + xml;
            }
            input.rewind()?;
        }
        let (app, ctx, record) = (&self.app, &self.ctx, &self.record);
        let mut progress = Progress::new(self.total_bytes, &self.done, self.started);
        let summary = if is_zip {
            app.import_apple_health_zip(ctx, record, BufReader::new(input), &mut |s| {
                progress.show(s)
            })?
        } else {
            app.import_apple_health(ctx, record, BufReader::new(input), &mut |s| {
                progress.show(s)
            })?
        };
        self.done.absorb(summary);
        Ok(())
    }

    fn samples(&mut self, reader: &mut dyn SampleReader, name: &str) -> anyhow::Result<()> {
        let mut progress = Progress::new(self.total_bytes, &self.done, self.started);
        let summary = self
            .app
            .import_samples(&self.ctx, &self.record, reader, &mut |s| progress.show(s))
            .with_context(|| format!("{name} could not be imported"))?;
        self.done.absorb(summary);
        if self.shown.elapsed() >= Duration::from_secs(1) {
            self.shown = Instant::now();
            Progress::new(self.total_bytes, &self.done, self.started)
                .show(&ImportSummary::default());
        }
        Ok(())
    }

    fn unreadable(&mut self, name: &str, why: &str) {
        self.unreadable.push(format!("{name}: {why}"));
    }

    /// The closing report: imported, already there, and everything not imported with why.
    fn finish(self) -> anyhow::Result<()> {
        eprintln!();
        let s = &self.done;
        println!(
            "imported {} measurements ({} new, {} already there) from {} records in {:.1} s",
            s.report.imported,
            s.added,
            s.duplicates(),
            s.report.records,
            self.started.elapsed().as_secs_f64()
        );
        let c = s.clinical;
        if c.added + c.already + c.refused > 0 {
            println!(
                "clinical records: {} added, {} already there, {} not imported (not FHIR R4, or not about this person)",
                c.added, c.already, c.refused
            );
        }
        for (why, n) in &s.report.rejected {
            println!("not imported: {n} ({})", why.describe());
        }
        for damaged in &s.report.damaged {
            println!("damaged: {damaged}");
        }
        for file in &self.unreadable {
            println!("not read: {file}");
        }
        Ok(())
    }
}

/// The progress line: records, megabytes, speed and time left, at most once a second.
struct Progress {
    total_bytes: u64,
    before: (u64, u64),
    started: Instant,
    last: Option<Instant>,
}

impl Progress {
    fn new(total_bytes: u64, done: &ImportSummary, started: Instant) -> Self {
        Self {
            total_bytes,
            before: (done.report.records, done.report.bytes),
            started,
            last: None,
        }
    }

    fn show(&mut self, now: &ImportSummary) {
        if self
            .last
            .is_some_and(|l| l.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        self.last = Some(Instant::now());
        let records = self.before.0 + now.report.records;
        let bytes = self.before.1 + now.report.bytes;
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = bytes as f64 / secs;
        let left = if rate > 0.0 {
            self.total_bytes.saturating_sub(bytes) as f64 / rate
        } else {
            0.0
        };
        eprint!(
            "\r{records} records, {:.0} of {:.0} MB, {:.1} MB/s, about {left:.0} s left   ",
            bytes as f64 / 1e6,
            self.total_bytes as f64 / 1e6,
            rate / 1e6,
        );
    }
}
