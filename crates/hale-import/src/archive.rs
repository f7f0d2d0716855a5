//! The `export.zip` an iPhone makes: found, checked and streamed, never unpacked to disk.
//!
//! Zip safety: no path from inside the archive is ever used on disk (nothing is written),
//! and archives that would inflate beyond [`Limits`] are refused from their central
//! directory before any byte is inflated, then held to those sizes while streaming (a
//! central directory can lie), so a zip bomb is refused within a second.

use std::io::{Read, Seek};

use crate::ImportError;

/// Bounds on what an archive may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most entries.
    pub entries: usize,
    /// Largest uncompressed size of the export, in bytes.
    pub uncompressed: u64,
    /// Largest ratio of uncompressed to compressed size (real exports compress about 20:1).
    pub ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        // A ten-year export is about 3 GB of XML; 64 GB leaves room without inviting abuse.
        Self {
            entries: 200_000,
            uncompressed: 64 * 1024 * 1024 * 1024,
            ratio: 200,
        }
    }
}

/// Why an archive was refused.
fn refuse(message: &str) -> ImportError {
    ImportError::Archive(message.to_owned())
}

/// Streams the `export.xml` inside an Apple Health `export.zip` to `f`.
pub fn with_apple_health_export<R: Read + Seek, T>(
    archive: R,
    limits: Limits,
    f: impl FnOnce(&mut dyn Read) -> T,
) -> Result<T, ImportError> {
    let mut zip =
        zip::ZipArchive::new(archive).map_err(|_| refuse("not a readable zip archive"))?;
    if zip.len() > limits.entries {
        return Err(refuse("the archive holds too many entries"));
    }
    // The export is `apple_health_export/export.xml` (the folder's name is localised); never
    // `export_cda.xml`, which is a different document.
    let index = (0..zip.len())
        .find(|&i| {
            zip.name_for_index(i)
                .is_some_and(|n| n.rsplit('/').next() == Some("export.xml"))
        })
        .ok_or_else(|| refuse("the archive has no export.xml"))?;
    let entry = zip
        .by_index(index)
        .map_err(|_| refuse("the export entry cannot be read"))?;
    let declared = entry.size();
    let compressed = entry.compressed_size().max(1);
    if declared > limits.uncompressed {
        return Err(refuse("the export is larger than Hale accepts"));
    }
    if declared / compressed > limits.ratio {
        return Err(refuse(
            "the export inflates far more than a real export would",
        ));
    }
    let mut bounded = Bounded {
        inner: entry,
        left: declared,
    };
    Ok(f(&mut bounded))
}

/// The declared size of the `export.xml` inside an export's zip (for progress: what the
/// reader counts is bytes of XML, not of the zip).
pub fn export_size<R: Read + Seek>(archive: R) -> Option<u64> {
    let mut zip = zip::ZipArchive::new(archive).ok()?;
    let index = (0..zip.len()).find(|&i| {
        zip.name_for_index(i)
            .is_some_and(|n| n.rsplit('/').next() == Some("export.xml"))
    })?;
    zip.by_index(index).ok().map(|e| e.size())
}

/// The largest clinical record file read (real ones are a few kilobytes).
const MAX_CLINICAL_RECORD: u64 = 8 * 1024 * 1024;

/// Hands each FHIR resource under `clinical-records/` in the export to `f`, with a name for
/// it (its path inside the archive, used only as a key, never on disk). A file that is too
/// big, inflates too far or is not JSON is handed over as the error.
pub fn for_each_clinical_record<R: Read + Seek>(
    archive: R,
    limits: Limits,
    mut f: impl FnMut(&str, Result<serde_json::Value, ImportError>),
) -> Result<(), ImportError> {
    let mut zip =
        zip::ZipArchive::new(archive).map_err(|_| refuse("not a readable zip archive"))?;
    if zip.len() > limits.entries {
        return Err(refuse("the archive holds too many entries"));
    }
    for index in 0..zip.len() {
        let Some(name) = zip.name_for_index(index).map(str::to_owned) else {
            continue;
        };
        let lower = name.to_ascii_lowercase();
        if !lower.contains("clinical-records/") || !lower.ends_with(".json") {
            continue;
        }
        let read = zip
            .by_index(index)
            .map_err(|_| refuse("a clinical record cannot be read"))
            .and_then(|entry| {
                let (declared, compressed) = (entry.size(), entry.compressed_size().max(1));
                if declared > MAX_CLINICAL_RECORD || declared / compressed > limits.ratio {
                    return Err(refuse("a clinical record is larger than any real one"));
                }
                let mut bytes = Vec::new();
                Bounded {
                    inner: entry,
                    left: declared,
                }
                .read_to_end(&mut bytes)?;
                serde_json::from_slice(&bytes).map_err(|e| ImportError::Json {
                    line: e.line(),
                    column: e.column(),
                })
            });
        f(&name, read);
    }
    Ok(())
}

/// Holds an entry to its declared size: a central directory can lie.
struct Bounded<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(out)?;
        self.left = self
            .left
            .checked_sub(n as u64)
            .ok_or_else(|| std::io::Error::other("the export inflates beyond its declared size"))?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};

    fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        let mut z = zip::ZipWriter::new(&mut out);
        for (name, body) in files {
            z.start_file(
                *name,
                zip::write::SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Deflated),
            )
            .unwrap();
            z.write_all(body).unwrap();
        }
        z.finish().unwrap();
        out.into_inner()
    }

    #[test]
    fn the_export_is_found_beside_the_cda_and_routes() {
        // The sample export whose workout points to a GPX route file beside it.
        let xml = include_bytes!("../tests/data/apple-health-zip/apple_health_export/export.xml");
        let gpx = include_bytes!(
            "../tests/data/apple-health-zip/apple_health_export/workout-routes/route_2019-06-11_3.00pm.gpx"
        );
        let archive = zip_of(&[
            (
                "apple_health_export/export_cda.xml",
                b"<ClinicalDocument/><ClinicalDocument/>",
            ),
            (
                "apple_health_export/workout-routes/route_2019-06-11_3.00pm.gpx",
                gpx,
            ),
            ("apple_health_export/export.xml", xml),
        ]);
        let n = with_apple_health_export(Cursor::new(archive), Limits::default(), |r| {
            crate::apple_health::Reader::new(r)
                .filter(Result::is_ok)
                .count()
        })
        .unwrap();
        assert_eq!(n, 2);
    }

    #[test]
    fn clinical_records_are_read_as_json_and_nothing_else_is() {
        let archive = zip_of(&[
            ("apple_health_export/export.xml", b"<HealthData/>"),
            (
                "apple_health_export/clinical-records/Observation-1.json",
                br#"{"resourceType": "Observation"}"#,
            ),
            (
                "apple_health_export/clinical-records/broken.json",
                b"{\"resourceType\"",
            ),
            ("apple_health_export/workout-routes/route.gpx", b"<gpx/>"),
        ]);
        let mut seen = Vec::new();
        for_each_clinical_record(Cursor::new(archive), Limits::default(), |name, read| {
            seen.push((
                name.to_owned(),
                read.map(|v| v["resourceType"].clone()).ok(),
            ));
        })
        .unwrap();
        assert_eq!(
            seen,
            [
                (
                    "apple_health_export/clinical-records/Observation-1.json".to_owned(),
                    Some(serde_json::json!("Observation"))
                ),
                (
                    "apple_health_export/clinical-records/broken.json".to_owned(),
                    None
                ),
            ]
        );
    }

    #[test]
    fn a_zip_bomb_is_refused_before_inflating() {
        let zeros = vec![b' '; 50 * 1024 * 1024];
        let archive = zip_of(&[("apple_health_export/export.xml", &zeros)]);
        assert!(archive.len() < 1024 * 1024, "the bomb compresses well");
        let started = std::time::Instant::now();
        let err = with_apple_health_export(Cursor::new(archive), Limits::default(), |_| ())
            .err()
            .unwrap();
        assert!(err.to_string().contains("inflates far more"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn archives_without_an_export_or_not_zips_are_refused() {
        let archive = zip_of(&[("notes.txt", b"hello")]);
        assert!(with_apple_health_export(Cursor::new(archive), Limits::default(), |_| ()).is_err());
        assert!(
            with_apple_health_export(
                Cursor::new(b"not a zip".to_vec()),
                Limits::default(),
                |_| ()
            )
            .is_err()
        );
        let many: Vec<(String, Vec<u8>)> = (0..20).map(|i| (format!("f{i}"), vec![])).collect();
        let refs: Vec<(&str, &[u8])> = many
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        let limits = Limits {
            entries: 10,
            ..Limits::default()
        };
        assert!(with_apple_health_export(Cursor::new(zip_of(&refs)), limits, |_| ()).is_err());
    }
}
