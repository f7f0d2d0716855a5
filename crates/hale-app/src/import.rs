//! Imports of wearable and app exports into a record's time series.

use std::io::Read;

use hale_core::{Interaction, RecordId, RequestContext};
use hale_import::{ImportError, Report, SampleReader};
use hale_store::{SampleRow, WriteBatch, WriteOp};

use crate::{App, AppError};

/// How many samples go to the store in one transaction: large enough that commits are a
/// small share of the time, small enough that progress shows every second or so.
const BATCH: usize = 20_000;

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportSummary {
    /// The reader's counts: records seen, samples produced, rejections by reason.
    pub report: Report,
    /// Samples newly stored (the rest were already there: the same export imported again).
    pub added: u64,
    /// The clinical records (FHIR resources from health services) an Apple Health export held.
    pub clinical: ClinicalSummary,
}

/// What became of the clinical records in an Apple Health export.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClinicalSummary {
    /// Stored as FHIR resources in the record.
    pub added: u64,
    /// Stored by an earlier import of the same export.
    pub already: u64,
    /// Not stored: not valid FHIR R4 (Apple also exports DSTU2), not about the person (a
    /// practitioner, an organisation), the hospital's copy of the person, or unreadable.
    pub refused: u64,
}

impl ImportSummary {
    /// Samples that were already stored.
    pub fn duplicates(&self) -> u64 {
        self.report.imported.saturating_sub(self.added)
    }

    /// Adds another file's summary to this one (an import of several files).
    pub fn absorb(&mut self, other: ImportSummary) {
        let (mine, theirs) = (&mut self.report, other.report);
        mine.records += theirs.records;
        mine.imported += theirs.imported;
        mine.bytes += theirs.bytes;
        for (why, n) in theirs.rejected {
            *mine.rejected.entry(why).or_insert(0) += n;
        }
        mine.damaged.extend(theirs.damaged);
        self.added += other.added;
        self.clinical.added += other.clinical.added;
        self.clinical.already += other.clinical.already;
        self.clinical.refused += other.clinical.refused;
    }
}

impl App {
    /// Imports an Apple Health `export.xml` into `record`. Safe to repeat or to resume after
    /// an interruption: samples already stored are skipped, so the result is the same.
    pub fn import_apple_health(
        &self,
        ctx: &RequestContext,
        record: &RecordId,
        input: impl Read,
        progress: &mut dyn FnMut(&ImportSummary),
    ) -> Result<ImportSummary, AppError> {
        let mut reader = hale_import::apple_health::Reader::new(input);
        self.import_samples(ctx, record, &mut reader, progress)
    }

    /// Imports what any importer reads (FIT, Open mHealth, Fitbit, Google Fit, CSV) into
    /// `record`, in batches. Safe to repeat or to resume: samples already stored are skipped.
    pub fn import_samples(
        &self,
        ctx: &RequestContext,
        record: &RecordId,
        reader: &mut dyn SampleReader,
        progress: &mut dyn FnMut(&ImportSummary),
    ) -> Result<ImportSummary, AppError> {
        if ctx.actor.record().is_some_and(|r| r != record)
            || ctx.actor.grant().is_some()
            || !ctx.actor.allows("Observation", Interaction::Create)
        {
            return Err(AppError::Forbidden(
                "this actor may not add measurements to that record".into(),
            ));
        }
        if !self.store.record_exists(record)? {
            return Err(AppError::NotFound {
                resource_type: "Patient".into(),
                id: record.to_string(),
            });
        }
        // Two threads, as the machine has two cores: this one reads and parses while a writer
        // stores the batch before, so an import takes about as long as the slower of the two
        // rather than both. At most one batch waits between them, so memory stays flat.
        let added = std::sync::atomic::AtomicU64::new(0);
        let (outcome, written) = std::thread::scope(|scope| {
            let (batches, inbox) = std::sync::mpsc::sync_channel::<Vec<SampleRow>>(1);
            let writer = scope.spawn(|| -> Result<(), AppError> {
                for rows in inbox {
                    let what = format!("samples ({})", rows.len());
                    let out = self.store.write(WriteBatch {
                        ops: vec![
                            WriteOp::Samples {
                                record: record.clone(),
                                rows,
                            },
                            WriteOp::Audit(self.audit_entry(ctx, record, "import", what)),
                        ],
                    })?;
                    added.fetch_add(out.samples_added, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(())
            });
            let outcome = self.read_batches(reader, &batches, &added, progress);
            drop(batches);
            let written = writer
                .join()
                .unwrap_or_else(|_| Err(AppError::Internal("the sample writer stopped".into())));
            (outcome, written)
        });
        // A store failure comes first: it is why the reading stopped, if it did.
        written?;
        let report = outcome?;
        let summary = ImportSummary {
            report,
            added: added.into_inner(),
            ..ImportSummary::default()
        };
        progress(&summary);
        Ok(summary)
    }

    /// Reads samples into batches for the writer; what was read before a break in the file is
    /// still sent, and the error says where it broke.
    fn read_batches(
        &self,
        reader: &mut dyn SampleReader,
        batches: &std::sync::mpsc::SyncSender<Vec<SampleRow>>,
        added: &std::sync::atomic::AtomicU64,
        progress: &mut dyn FnMut(&ImportSummary),
    ) -> Result<Report, AppError> {
        let mut rows: Vec<SampleRow> = Vec::with_capacity(BATCH);
        let send = |rows: &mut Vec<SampleRow>| {
            let batch = std::mem::replace(rows, Vec::with_capacity(BATCH));
            // A closed channel means the writer failed; its error is returned instead.
            batches.send(batch).is_ok()
        };
        loop {
            match reader.next() {
                Some(Ok(s)) => rows.push(SampleRow {
                    metric: s.metric.id.to_owned(),
                    source: s.source,
                    start: s.start,
                    end: s.end,
                    value: s.value,
                }),
                Some(Err(e)) => {
                    send(&mut rows);
                    return Err(match e {
                        ImportError::NotAnExport => AppError::bad_request("", e.to_string()),
                        other => AppError::unprocessable("", other.to_string()),
                    });
                }
                None => break,
            }
            if rows.len() >= BATCH {
                if !send(&mut rows) {
                    return Ok(reader.report().clone());
                }
                progress(&ImportSummary {
                    report: reader.report().clone(),
                    added: added.load(std::sync::atomic::Ordering::Relaxed),
                    ..ImportSummary::default()
                });
            }
        }
        if !rows.is_empty() {
            send(&mut rows);
        }
        Ok(reader.report().clone())
    }

    /// `POST Observation/$add-samples`: a Bundle of Observations from a phone app or device
    /// hub lands in the time-series store (not as resources), like an import. Needs a record
    /// context: the token's record is the only one written to.
    pub fn add_samples(
        &self,
        ctx: &RequestContext,
        body: &serde_json::Value,
    ) -> Result<ImportSummary, AppError> {
        let Some(record) = ctx.actor.record() else {
            return Err(AppError::bad_request(
                "",
                "$add-samples needs a token for one record",
            ));
        };
        let app = ctx.actor.subject().to_owned();
        let patient = format!("Patient/{}", record.patient_id().as_str());
        let mut reader = hale_import::fhir::read(body, &patient, &app)
            .map_err(|e| AppError::bad_request("", e.to_string()))?;
        self.import_samples(ctx, record, &mut reader, &mut |_| {})
    }

    /// Imports the `export.xml` inside an Apple Health `export.zip` (checked against zip
    /// bombs, never unpacked to disk), then its clinical records as FHIR resources.
    pub fn import_apple_health_zip<R: std::io::Read + std::io::Seek>(
        &self,
        ctx: &RequestContext,
        record: &RecordId,
        mut archive: R,
        progress: &mut dyn FnMut(&ImportSummary),
    ) -> Result<ImportSummary, AppError> {
        let mut summary = hale_import::archive::with_apple_health_export(
            &mut archive,
            hale_import::archive::Limits::default(),
            |xml| self.import_apple_health(ctx, record, xml, progress),
        )
        .map_err(|e| AppError::unprocessable("", e.to_string()))??;
        summary.clinical = self.import_clinical_records(ctx, record, &mut archive)?;
        Ok(summary)
    }

    /// The export's `clinical-records/*.json`: what hospitals and GP practices shared with
    /// the person's iPhone, stored as FHIR resources written by those services (not entered
    /// by the person), in the person's record. Each gets an id from the record and its file,
    /// so importing the export again adds nothing.
    fn import_clinical_records<R: std::io::Read + std::io::Seek>(
        &self,
        ctx: &RequestContext,
        record: &RecordId,
        archive: R,
    ) -> Result<ClinicalSummary, AppError> {
        if ctx.actor.record().is_some_and(|r| r != record) || ctx.actor.grant().is_some() {
            return Err(AppError::Forbidden("not this actor's record".into()));
        }
        let source = RequestContext::operator(
            hale_core::Actor::System {
                scopes: hale_core::Scopes::parse("system/*.cru")
                    .map_err(|_| AppError::Internal("scopes".into()))?,
                subject: "apple-health-clinical-records".into(),
            },
            &ctx.request_id,
        );
        let patient = format!("Patient/{}", record.patient_id().as_str());
        let mut out = ClinicalSummary::default();
        let mut failure = None;
        hale_import::archive::for_each_clinical_record(
            archive,
            hale_import::archive::Limits::default(),
            |name, read| {
                if failure.is_some() {
                    return;
                }
                let Ok(mut resource) = read else {
                    out.refused += 1;
                    return;
                };
                let rtype = match resource
                    .get("resourceType")
                    .and_then(serde_json::Value::as_str)
                {
                    Some(t) if t != "Patient" => t.to_owned(),
                    _ => {
                        out.refused += 1;
                        return;
                    }
                };
                let id = format!(
                    "ah-{}",
                    &hale_auth::secret::digest(&format!("{record}/{name}"))[..32]
                );
                resource["id"] = id.clone().into();
                resource["meta"] =
                    serde_json::json!({"source": "urn:hale:apple-health-clinical-record"});
                point_at(&mut resource, &patient);
                match self.read(&source, &rtype, &id) {
                    Ok(_) | Err(AppError::Gone { .. }) => {
                        out.already += 1;
                        return;
                    }
                    Err(AppError::NotFound { .. }) => {}
                    Err(e) => {
                        failure = Some(e);
                        return;
                    }
                }
                match self.update(&source, &rtype, &id, resource, None) {
                    Ok(_) => out.added += 1,
                    Err(AppError::Internal(e)) => failure = Some(AppError::Internal(e)),
                    Err(_) => out.refused += 1,
                }
            },
        )
        .map_err(|e| AppError::unprocessable("", e.to_string()))?;
        match failure {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// The metrics a record holds samples of, in the metric table's order.
    pub fn sample_metrics(
        &self,
        ctx: &RequestContext,
        record: &RecordId,
    ) -> Result<Vec<&'static hale_import::Metric>, AppError> {
        if ctx.actor.record().is_some_and(|r| r != record)
            || !ctx.actor.allows("Observation", Interaction::Read)
            || !self.access(ctx)?.sees_samples()
        {
            return Err(AppError::NotFound {
                resource_type: "Patient".into(),
                id: record.to_string(),
            });
        }
        let held = self.store.sample_metrics(record)?;
        Ok(hale_import::metrics::METRICS
            .iter()
            .filter(|m| held.iter().any(|h| h == m.id))
            .collect())
    }

    /// A metric's daily (or other) summaries for a record, for charts and the FHIR view.
    pub fn sample_buckets(
        &self,
        ctx: &RequestContext,
        record: &RecordId,
        metric: &str,
        from: i64,
        to: i64,
        bucket_ms: i64,
    ) -> Result<Vec<hale_store::SampleBucket>, AppError> {
        if ctx.actor.record().is_some_and(|r| r != record)
            || !ctx.actor.allows("Observation", Interaction::Read)
            || !self.access(ctx)?.sees_samples()
        {
            return Err(AppError::NotFound {
                resource_type: "Patient".into(),
                id: record.to_string(),
            });
        }
        let buckets = self
            .store
            .sample_buckets(record, metric, from, to, bucket_ms)?;
        self.audit_reads(ctx, "read", &format!("samples:{metric}"), [record])?;
        Ok(buckets)
    }
}

/// Points every reference to a patient (`Patient/x`, or a hospital's absolute URL for one) at
/// the record's own Patient: the hospital's patient is this person.
fn point_at(v: &mut serde_json::Value, patient: &str) {
    match v {
        serde_json::Value::Object(obj) => {
            if let Some(serde_json::Value::String(r)) = obj.get_mut("reference")
                && (r.starts_with("Patient/") || r.contains("/Patient/"))
            {
                *r = patient.to_owned();
            }
            for (k, child) in obj.iter_mut() {
                if k != "contained" {
                    point_at(child, patient);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|i| point_at(i, patient)),
        _ => {}
    }
}
