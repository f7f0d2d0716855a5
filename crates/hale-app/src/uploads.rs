//! Exports uploaded through the web app, imported by a background job that survives a restart.
//!
//! An upload is written to the data folder's `imports/` sealed: 1 MiB chunks, each
//! XChaCha20-Poly1305 under a key derived from the master key and bound to the job, its place
//! and whether it is the last, so the file reveals nothing without the key and cannot be cut
//! short or reordered unnoticed. Fixed-size chunks make the sealed file seekable, which a zip
//! needs. Beside it, `JOB.json` holds the job's state and counts (never values). A job waiting
//! or running when the server stopped runs again at start-up; imports skip what is already
//! stored, so the result is the same as one uninterrupted run. The sealed upload is deleted
//! when the job ends.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hale_auth::secret::SealKey;
use hale_core::{Actor, Interaction, RecordId, RequestContext, Scopes};
use serde::{Deserialize, Serialize};

use crate::{App, AppError, ImportSummary};

/// Plain bytes per sealed chunk.
const CHUNK: usize = 1024 * 1024;
/// A chunk's flag byte, length, nonce and tag.
const OVERHEAD: usize = 1 + 4 + 24 + 16;
/// The largest upload (a ten-year Apple Health export zips to about 150 MB).
pub const MAX_UPLOAD: u64 = 4 * 1024 * 1024 * 1024;

/// Where uploads and their jobs live, and the key that seals them.
#[derive(Clone)]
pub struct Uploads {
    dir: PathBuf,
    key: SealKey,
}

impl Uploads {
    /// Uploads kept in `dir` (created when first needed), sealed with `key`.
    pub fn new(dir: PathBuf, key: SealKey) -> Self {
        Self { dir, key }
    }

    fn sealed_path(&self, job: &str) -> PathBuf {
        self.dir.join(format!("{job}.sealed"))
    }

    fn status_path(&self, job: &str) -> PathBuf {
        self.dir.join(format!("{job}.json"))
    }
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Uploaded, not started.
    Waiting,
    /// Importing.
    Running,
    /// Finished: the counts are final.
    Done,
    /// Stopped: `problem` says why (the file was not one Hale reads, or it broke).
    Failed,
}

/// A job's state and counts, as its page shows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStatus {
    /// The record it imports into.
    pub record: String,
    /// Where it is.
    pub state: JobState,
    /// What the file was found to be (`Apple Health`, `FIT`, …), once known.
    pub kind: Option<String>,
    /// The upload's size in bytes.
    pub size: u64,
    /// Bytes read so far.
    pub read: u64,
    /// Records read, measurements found and newly stored.
    pub records: u64,
    /// Measurements found.
    pub imported: u64,
    /// Measurements newly stored (the rest were there already).
    pub added: u64,
    /// Records not imported: the reason's key ([`hale_import::Rejection::key`]) and how many.
    pub rejected: Vec<(String, u64)>,
    /// Parts of the file that could not be read.
    pub damaged: Vec<String>,
    /// Clinical records from an Apple Health export: added, already there, not imported.
    #[serde(default)]
    pub clinical: (u64, u64, u64),
    /// Why the job failed: `not-recognised` (not a file Hale reads), `unreadable` (damaged
    /// beyond reading) or `stopped` (something on the server went wrong).
    pub problem: Option<String>,
}

impl JobStatus {
    /// Whether the job has ended, one way or the other.
    pub fn finished(&self) -> bool {
        matches!(self.state, JobState::Done | JobState::Failed)
    }

    fn absorb(&mut self, s: &ImportSummary) {
        self.read = s.report.bytes.min(self.size);
        self.records = s.report.records;
        self.imported = s.report.imported;
        self.added = s.added;
        self.rejected = s
            .report
            .rejected
            .iter()
            .map(|(why, n)| (why.key().to_owned(), *n))
            .collect();
        self.damaged = s.report.damaged.clone();
        self.clinical = (s.clinical.added, s.clinical.already, s.clinical.refused);
    }
}

/// A disk problem with an upload (the message names the operation, never the content).
fn disk(e: io::Error) -> AppError {
    AppError::Internal(format!("the upload could not be read or kept: {e}"))
}

fn write_status(path: &Path, status: &JobStatus) -> io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(status).map_err(io::Error::other)?)?;
    std::fs::rename(tmp, path)
}

fn read_status(path: &Path) -> Option<JobStatus> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn chunk_context(job: &str, index: u64, last: bool) -> String {
    format!(
        "import-upload:{job}:{index}:{}",
        if last { "last" } else { "more" }
    )
}

/// An upload being written; [`Upload::finish`] queues its job.
pub struct Upload {
    uploads: Uploads,
    job: String,
    record: RecordId,
    out: BufWriter<File>,
    buf: Vec<u8>,
    index: u64,
    size: u64,
}

impl Upload {
    /// Adds bytes of the file; refuses past [`MAX_UPLOAD`].
    pub fn write(&mut self, mut bytes: &[u8]) -> Result<(), AppError> {
        self.size += bytes.len() as u64;
        if self.size > MAX_UPLOAD {
            return Err(AppError::unprocessable(
                "",
                "the file is too large to import",
            ));
        }
        while !bytes.is_empty() {
            let take = (CHUNK - self.buf.len()).min(bytes.len());
            self.buf.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.buf.len() == CHUNK && !bytes.is_empty() {
                self.seal(false)?;
            }
        }
        Ok(())
    }

    fn seal(&mut self, last: bool) -> Result<(), AppError> {
        let context = chunk_context(&self.job, self.index, last);
        let sealed = self.uploads.key.seal(&self.buf, &context);
        let len = u32::try_from(sealed.len())
            .map_err(|_| AppError::Internal("a sealed chunk is too long".into()))?;
        self.out.write_all(&[u8::from(last)]).map_err(disk)?;
        self.out.write_all(&len.to_le_bytes()).map_err(disk)?;
        self.out.write_all(&sealed).map_err(disk)?;
        self.buf.clear();
        self.index += 1;
        Ok(())
    }

    /// Seals the last chunk, makes the file durable and queues the job; returns its id.
    pub fn finish(mut self) -> Result<String, AppError> {
        if self.size == 0 {
            self.abandon();
            return Err(AppError::unprocessable("", "the file is empty"));
        }
        self.seal(true)?;
        self.out.flush().map_err(disk)?;
        self.out.get_ref().sync_all().map_err(disk)?;
        let status = JobStatus {
            record: self.record.to_string(),
            state: JobState::Waiting,
            kind: None,
            size: self.size,
            read: 0,
            records: 0,
            imported: 0,
            added: 0,
            rejected: Vec::new(),
            damaged: Vec::new(),
            clinical: (0, 0, 0),
            problem: None,
        };
        let part = self.uploads.dir.join(format!("{}.part", self.job));
        std::fs::rename(&part, self.uploads.sealed_path(&self.job)).map_err(disk)?;
        write_status(&self.uploads.status_path(&self.job), &status).map_err(disk)?;
        Ok(self.job)
    }

    /// Drops a half-written upload (a bad form, a dropped connection).
    pub fn abandon(self) {
        let _ = std::fs::remove_file(self.uploads.dir.join(format!("{}.part", self.job)));
    }
}

/// Reads a sealed upload back as the plain file, seekably.
struct SealedReader {
    file: File,
    key: SealKey,
    job: String,
    chunks: u64,
    len: u64,
    pos: u64,
    /// The chunk in `plain`, if any.
    current: Option<u64>,
    plain: Vec<u8>,
}

impl SealedReader {
    fn open(path: &Path, key: SealKey, job: &str) -> io::Result<Self> {
        let file = File::open(path)?;
        let sealed_len = file.metadata()?.len();
        let full = (CHUNK + OVERHEAD) as u64;
        let chunks = sealed_len.div_ceil(full);
        let last_plain = sealed_len
            .checked_sub((chunks.max(1) - 1) * full + OVERHEAD as u64)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "the upload is damaged"))?;
        Ok(Self {
            file,
            key,
            job: job.to_owned(),
            chunks,
            len: (chunks.max(1) - 1) * CHUNK as u64 + last_plain,
            pos: 0,
            current: None,
            plain: Vec::new(),
        })
    }

    fn load(&mut self, index: u64) -> io::Result<()> {
        let damaged = || io::Error::new(io::ErrorKind::InvalidData, "the upload is damaged");
        self.file
            .seek(SeekFrom::Start(index * (CHUNK + OVERHEAD) as u64))?;
        let mut head = [0u8; 5];
        self.file.read_exact(&mut head)?;
        let last = head[0] == 1;
        if last != (index + 1 == self.chunks) {
            return Err(damaged());
        }
        let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
        if len > CHUNK + 40 {
            return Err(damaged());
        }
        let mut sealed = vec![0u8; len];
        self.file.read_exact(&mut sealed)?;
        self.plain = self
            .key
            .open(&sealed, &chunk_context(&self.job, index, last))
            .map_err(|_| damaged())?;
        self.current = Some(index);
        Ok(())
    }
}

impl Read for SealedReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len || out.is_empty() {
            return Ok(0);
        }
        let index = self.pos / CHUNK as u64;
        if self.current != Some(index) {
            self.load(index)?;
        }
        let at = (self.pos % CHUNK as u64) as usize;
        let n = (self.plain.len() - at.min(self.plain.len())).min(out.len());
        out[..n].copy_from_slice(&self.plain[at..at + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for SealedReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

/// Records progress in the job's status file as the import goes.
fn progress_writer<'a>(status: &JobStatus, path: &'a Path) -> impl FnMut(&ImportSummary) + use<'a> {
    let base = status.clone();
    move |s: &ImportSummary| {
        let mut now = base.clone();
        now.absorb(s);
        let _ = write_status(path, &now);
    }
}

impl App {
    fn uploads(&self) -> Result<&Uploads, AppError> {
        self.uploads
            .as_ref()
            .ok_or_else(|| AppError::NotSupported("uploads are not configured".into()))
    }

    /// Starts an upload into the actor's own record.
    pub fn begin_upload(&self, ctx: &RequestContext) -> Result<Upload, AppError> {
        let record = ctx
            .actor
            .record()
            .filter(|_| ctx.actor.allows("Observation", Interaction::Create))
            .filter(|_| ctx.actor.grant().is_none())
            .cloned()
            .ok_or_else(|| AppError::Forbidden("this actor may not add measurements".into()))?;
        let uploads = self.uploads()?.clone();
        std::fs::create_dir_all(&uploads.dir).map_err(disk)?;
        let job = hale_auth::secret::random_token()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(24)
            .collect::<String>();
        let out =
            BufWriter::new(File::create(uploads.dir.join(format!("{job}.part"))).map_err(disk)?);
        Ok(Upload {
            uploads,
            job,
            record,
            out,
            buf: Vec::with_capacity(CHUNK),
            index: 0,
            size: 0,
        })
    }

    /// A job's status, for the record it belongs to only (any other answers as missing).
    pub fn import_status(&self, ctx: &RequestContext, job: &str) -> Result<JobStatus, AppError> {
        let missing = || AppError::NotFound {
            resource_type: "import".into(),
            id: job.into(),
        };
        if job.is_empty() || !job.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(missing());
        }
        let status = read_status(&self.uploads()?.status_path(job)).ok_or_else(missing)?;
        match ctx.actor.record() {
            Some(r) if r.to_string() == status.record => Ok(status),
            _ => Err(missing()),
        }
    }

    /// Jobs that were waiting or running when the server last stopped.
    pub fn unfinished_imports(&self) -> Vec<String> {
        let Ok(uploads) = self.uploads() else {
            return Vec::new();
        };
        let Ok(entries) = std::fs::read_dir(&uploads.dir) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let job = name.strip_suffix(".json")?.to_owned();
                let status = read_status(&e.path())?;
                (!status.finished()).then_some(job)
            })
            .collect()
    }

    /// Runs a job in a background thread.
    pub fn spawn_import(self: &Arc<Self>, job: String) {
        let app = Arc::clone(self);
        std::thread::spawn(move || app.run_import(&job));
    }

    /// Runs a job to its end, recording progress as it goes. Never panics on bad input: a
    /// file Hale cannot read ends the job as failed with the reason.
    pub fn run_import(&self, job: &str) {
        let Ok(uploads) = self.uploads().cloned() else {
            return;
        };
        let status_path = uploads.status_path(job);
        let Some(mut status) = read_status(&status_path) else {
            return;
        };
        status.state = JobState::Running;
        let _ = write_status(&status_path, &status);
        let outcome = self.import_upload(&uploads, job, &mut status, &status_path);
        match outcome {
            Ok(()) => status.state = JobState::Done,
            Err(e) => {
                status.state = JobState::Failed;
                status.problem = Some(
                    match e {
                        AppError::BadRequest(_) => "not-recognised",
                        AppError::Unprocessable(_) => "unreadable",
                        _ => "stopped",
                    }
                    .into(),
                );
            }
        }
        if write_status(&status_path, &status).is_ok() {
            let _ = std::fs::remove_file(uploads.sealed_path(job));
        }
    }

    fn import_upload(
        &self,
        uploads: &Uploads,
        job: &str,
        status: &mut JobStatus,
        status_path: &Path,
    ) -> Result<(), AppError> {
        let record = RecordId::parse(&status.record)
            .map_err(|_| AppError::Internal("a job names no record".into()))?;
        let ctx = RequestContext::operator(
            Actor::Record {
                record: record.clone(),
                scopes: Scopes::parse("patient/Observation.c")
                    .map_err(|_| AppError::Internal("scopes".into()))?,
                subject: "web-import".into(),
            },
            &format!("import-{job}"),
        );
        let mut input = SealedReader::open(&uploads.sealed_path(job), uploads.key.clone(), job)
            .map_err(disk)?;
        let mut head = [0u8; 16];
        let n = input.read(&mut head).map_err(disk)?;
        input.rewind().map_err(disk)?;
        let head = &head[..n];
        let summary = if head.starts_with(b"PK\x03\x04") {
            status.kind = Some("Apple Health".into());
            let mut progress = progress_writer(status, status_path);
            self.import_apple_health_zip(&ctx, &record, input, &mut progress)?
        } else if head.get(8..12) == Some(b".FIT") {
            status.kind = Some("FIT".into());
            let mut reader = hale_import::fit::read(input, "the file").map_err(|e| match e {
                hale_import::ImportError::NotThisKind(_) => {
                    AppError::bad_request("", e.to_string())
                }
                other => AppError::unprocessable("", other.to_string()),
            })?;
            self.import_samples(&ctx, &record, &mut reader, &mut |_| {})?
        } else if head.trim_ascii_start().starts_with(b"<") {
            status.kind = Some("Apple Health".into());
            let mut progress = progress_writer(status, status_path);
            self.import_apple_health(&ctx, &record, input, &mut progress)?
        } else {
            let mut bytes = Vec::new();
            input
                .take(hale_import::MAX_WHOLE_FILE + 1)
                .read_to_end(&mut bytes)
                .map_err(disk)?;
            let (kind, mut reader) = json_reader(&bytes)?;
            status.kind = Some(kind.into());
            self.import_samples(&ctx, &record, reader.as_mut(), &mut |_| {})?
        };
        status.absorb(&summary);
        status.read = status.size;
        Ok(())
    }
}

/// A JSON export, whichever of Open mHealth, Fitbit or Google Fit it is.
fn json_reader(
    bytes: &[u8],
) -> Result<(&'static str, Box<dyn hale_import::SampleReader>), AppError> {
    use hale_import::{ImportError, SampleReader, UtcOffset};
    let not_one = || {
        AppError::bad_request(
            "",
            "this is not a file Hale can import: an Apple Health export, a FIT file, or JSON from Fitbit, Google Fit or Open mHealth",
        )
    };
    if bytes.len() as u64 > hale_import::MAX_WHOLE_FILE {
        return Err(AppError::unprocessable(
            "",
            "the file is larger than any export of its kind",
        ));
    }
    let first = bytes.trim_ascii_start().first().copied();
    if !matches!(first, Some(b'{' | b'[')) {
        return Err(not_one());
    }
    let found = |r: Result<hale_import::Collected, ImportError>| match r {
        Ok(c) => Ok(Some(c)),
        Err(ImportError::NotThisKind(_)) => Ok(None),
        Err(e) => Err(AppError::unprocessable("", e.to_string())),
    };
    if let Some(c) = found(hale_import::google_fit::read(bytes))? {
        return Ok(("Google Fit", Box::new(c)));
    }
    if let Some(c) = found(hale_import::fitbit::read(bytes, UtcOffset::UTC))? {
        return Ok(("Fitbit", Box::new(c)));
    }
    match hale_import::omh::read(bytes) {
        // Open mHealth if any data point measured something Hale knows, even if only summaries.
        Ok(c)
            if c.report().records
                > c.report()
                    .rejected
                    .get(&hale_import::Rejection::UnknownType)
                    .copied()
                    .unwrap_or(0) =>
        {
            Ok(("Open mHealth", Box::new(c)))
        }
        Ok(_) | Err(ImportError::NotThisKind(_)) => Err(not_one()),
        Err(e) => Err(AppError::unprocessable("", e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(dir: &Path, job: &str) -> Upload {
        let uploads = Uploads::new(dir.to_owned(), SealKey::new([5; 32]));
        let out = BufWriter::new(File::create(dir.join(format!("{job}.part"))).unwrap());
        Upload {
            uploads,
            job: job.into(),
            record: RecordId::parse("r1").unwrap(),
            out,
            buf: Vec::new(),
            index: 0,
            size: 0,
        }
    }

    /// Three and a half chunks of text that would be easy to spot on disk.
    fn content() -> Vec<u8> {
        b"HeartRate 61 "
            .iter()
            .copied()
            .cycle()
            .take(CHUNK * 3 + CHUNK / 2)
            .collect()
    }

    #[test]
    fn an_upload_is_sealed_on_disk_and_reads_back_exactly_with_seeks() {
        let dir = tempfile::tempdir().unwrap();
        let plain = content();
        let mut up = upload(dir.path(), "job1");
        for piece in plain.chunks(300_000) {
            up.write(piece).unwrap();
        }
        assert_eq!(up.finish().unwrap(), "job1");
        let sealed = std::fs::read(dir.path().join("job1.sealed")).unwrap();
        assert!(!sealed.windows(9).any(|w| w == b"HeartRate"));
        let path = dir.path().join("job1.sealed");
        let mut r = SealedReader::open(&path, SealKey::new([5; 32]), "job1").unwrap();
        let mut back = Vec::new();
        r.read_to_end(&mut back).unwrap();
        assert_eq!(back, plain);
        // Seeks across chunk boundaries, from the end and from here (a zip reads this way).
        let mut tail = [0u8; 20];
        r.seek(SeekFrom::End(-20)).unwrap();
        r.read_exact(&mut tail).unwrap();
        assert_eq!(&tail, &plain[plain.len() - 20..]);
        r.seek(SeekFrom::Start(CHUNK as u64 - 5)).unwrap();
        let mut across = [0u8; 10];
        r.read_exact(&mut across).unwrap();
        assert_eq!(&across, &plain[CHUNK - 5..CHUNK + 5]);
        let status = read_status(&dir.path().join("job1.json")).unwrap();
        assert_eq!(
            (status.state, status.size),
            (JobState::Waiting, plain.len() as u64)
        );
    }

    #[test]
    fn a_sealed_upload_cut_short_changed_or_opened_as_another_job_does_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut up = upload(dir.path(), "job2");
        up.write(&content()).unwrap();
        up.finish().unwrap();
        let path = dir.path().join("job2.sealed");
        let sealed = std::fs::read(&path).unwrap();
        let read_all = |bytes: &[u8], job: &str| {
            let p = dir.path().join("tampered");
            std::fs::write(&p, bytes).unwrap();
            let mut out = Vec::new();
            SealedReader::open(&p, SealKey::new([5; 32]), job)
                .and_then(|mut r| r.read_to_end(&mut out))
                .is_ok()
        };
        assert!(read_all(&sealed, "job2"));
        assert!(!read_all(&sealed, "job3"), "another job's key context");
        let full = CHUNK + OVERHEAD;
        assert!(
            !read_all(&sealed[..full * 3], "job2"),
            "cut after a whole chunk"
        );
        let mut flipped = sealed.clone();
        flipped[full + 100] ^= 1;
        assert!(!read_all(&flipped, "job2"), "one bit changed");
    }
}
