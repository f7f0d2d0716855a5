//! Apple Health's "Export All Health Data": `export.xml`, streamed.
//!
//! Real exports are messy, and each mess is handled here:
//! - iOS 16 wrote a broken internal DTD (an `ATTLIST` missing its `>`): the DOCTYPE before the
//!   `<HealthData>` root is skipped unread, so its syntax cannot matter;
//! - entities are never expanded and nothing a file names is fetched: quick-xml knows no DTD
//!   entities, and a record using one is rejected as malformed;
//! - control characters such as `\x0b` are dropped from text (source names);
//! - units vary in case; dates carry offsets;
//! - `Correlation` (blood pressure) holds `Record`s, which are read like any other.

use std::io::{BufReader, Read};

use quick_xml::events::{BytesStart, Event};

use crate::dates::parse_apple;
use crate::{ImportError, Rejection, Report, Sample, metrics};

/// How far into the file the `<HealthData>` root may start (the DTD is about 10 KB).
const PROLOGUE_LIMIT: usize = 4 * 1024 * 1024;

/// Streams the samples of an export; rejected records are counted in [`Reader::report`].
pub struct Reader<R: Read> {
    xml: quick_xml::Reader<BufReader<WithoutDoctype<R>>>,
    buf: Vec<u8>,
    report: Report,
    seen_root: bool,
    finished: bool,
}

impl<R: Read> Reader<R> {
    /// A reader over an `export.xml` byte stream.
    pub fn new(input: R) -> Self {
        let mut xml = quick_xml::Reader::from_reader(BufReader::with_capacity(
            256 * 1024,
            WithoutDoctype::new(input),
        ));
        xml.config_mut().trim_text(true);
        Self {
            xml,
            buf: Vec::with_capacity(4096),
            report: Report::default(),
            seen_root: false,
            finished: false,
        }
    }

    /// Counts so far (complete once the iterator has ended).
    pub fn report(&self) -> &Report {
        &self.report
    }

    fn reject(&mut self, why: Rejection) {
        *self.report.rejected.entry(why).or_insert(0) += 1;
    }
}

impl<R: Read> crate::SampleReader for Reader<R> {
    fn report(&self) -> &Report {
        &self.report
    }
}

impl<R: Read> Iterator for Reader<R> {
    type Item = Result<Sample, ImportError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.finished {
            self.buf.clear();
            let event = self.xml.read_event_into(&mut self.buf);
            self.report.bytes = self.xml.buffer_position();
            let outcome = match event {
                Err(e) => {
                    self.finished = true;
                    return Some(Err(ImportError::Xml {
                        position: self.xml.error_position(),
                        message: xml_error(&e),
                    }));
                }
                Ok(Event::Eof) => {
                    self.finished = true;
                    if !self.seen_root {
                        return Some(Err(ImportError::NotAnExport));
                    }
                    return None;
                }
                Ok(Event::Start(e)) | Ok(Event::Empty(e)) => match e.name().as_ref() {
                    b"HealthData" => {
                        self.seen_root = true;
                        continue;
                    }
                    b"Record" => {
                        let decoder = self.xml.decoder();
                        record(&e, decoder)
                    }
                    _ => continue,
                },
                Ok(_) => continue,
            };
            self.report.records += 1;
            match outcome {
                Ok(sample) => {
                    self.report.imported += 1;
                    return Some(Ok(sample));
                }
                Err(why) => self.reject(why),
            }
        }
        None
    }
}

/// quick-xml's message, which names positions and syntax, never content.
fn xml_error(e: &quick_xml::Error) -> String {
    match e {
        quick_xml::Error::Io(_) => "input error".into(),
        quick_xml::Error::Syntax(s) => s.to_string(),
        quick_xml::Error::IllFormed(s) => s.to_string(),
        _ => "malformed XML".into(),
    }
}

fn without_controls(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

/// One `<Record>` as a sample, or why not.
fn record(e: &BytesStart<'_>, decoder: quick_xml::encoding::Decoder) -> Result<Sample, Rejection> {
    let (mut rtype, mut unit, mut value, mut start, mut end, mut source) =
        (None, None, None, None, None, None);
    for attr in e.attributes().with_checks(false) {
        let attr = attr.map_err(|_| Rejection::Malformed)?;
        let text = attr
            .decode_and_unescape_value(decoder)
            .map_err(|_| Rejection::Malformed)?;
        match attr.key.as_ref() {
            b"type" => rtype = Some(text.into_owned()),
            b"unit" => unit = Some(text.into_owned()),
            b"value" => value = Some(text.into_owned()),
            b"startDate" => start = Some(text.into_owned()),
            b"endDate" => end = Some(text.into_owned()),
            b"sourceName" => source = Some(without_controls(&text)),
            _ => {}
        }
    }
    let metric = rtype
        .as_deref()
        .and_then(metrics::by_apple_type)
        .ok_or(Rejection::UnknownType)?;
    let raw: f64 = value
        .as_deref()
        .map(|v| without_controls(v).trim().parse::<f64>())
        .and_then(Result::ok)
        .filter(|v| v.is_finite())
        .ok_or(Rejection::BadValue)?;
    let start = start
        .as_deref()
        .and_then(parse_apple)
        .ok_or(Rejection::BadDate)?;
    let end = end
        .as_deref()
        .and_then(parse_apple)
        .ok_or(Rejection::BadDate)?;
    if end < start {
        return Err(Rejection::BadDate);
    }
    // Apple writes fractions (oxygen saturation, body fat) with the unit "%": 0.97 is 97 %.
    let unit = match unit.as_deref().unwrap_or("") {
        "%" => "1",
        other => other,
    };
    let value = metric.convert(raw, unit).ok_or(Rejection::UnknownUnit)?;
    Ok(Sample {
        metric,
        start,
        end,
        value,
        unit: metric.unit,
        source: source.unwrap_or_default(),
    })
}

/// A `Read` that drops everything between `<!DOCTYPE` and the `<HealthData` root, so a broken
/// DTD (iOS 16's unterminated `ATTLIST`) can never confuse the parser.
struct WithoutDoctype<R> {
    inner: R,
    prologue: Option<Vec<u8>>,
    at: usize,
}

impl<R: Read> WithoutDoctype<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            prologue: None,
            at: 0,
        }
    }

    fn fill_prologue(&mut self) -> std::io::Result<()> {
        let mut head = Vec::with_capacity(64 * 1024);
        let mut chunk = [0u8; 16 * 1024];
        while head.len() < PROLOGUE_LIMIT && find(&head, b"<HealthData").is_none() {
            let n = self.inner.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&chunk[..n]);
        }
        if let (Some(doctype), Some(root)) =
            (find(&head, b"<!DOCTYPE"), find(&head, b"<HealthData"))
            && doctype < root
        {
            head.drain(doctype..root);
        }
        self.prologue = Some(head);
        Ok(())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl<R: Read> Read for WithoutDoctype<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.prologue.is_none() {
            self.fill_prologue()?;
        }
        if let Some(head) = &self.prologue
            && self.at < head.len()
        {
            let n = out.len().min(head.len() - self.at);
            out[..n].copy_from_slice(&head[self.at..self.at + n]);
            self.at += n;
            return Ok(n);
        }
        self.inner.read(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{Options, write_export};

    fn import(bytes: &[u8]) -> (Vec<Sample>, Report, Option<String>) {
        let mut reader = Reader::new(bytes);
        let mut samples = Vec::new();
        let mut error = None;
        for item in reader.by_ref() {
            match item {
                Ok(s) => samples.push(s),
                Err(e) => error = Some(e.to_string()),
            }
        }
        (samples, reader.report().clone(), error)
    }

    fn synthetic(opts: Options) -> (Vec<u8>, crate::synthetic::Written) {
        let mut out = Vec::new();
        let written = write_export(&mut out, opts).unwrap();
        (out, written)
    }

    #[test]
    fn the_sample_export_gives_its_two_measurements() {
        let bytes = include_bytes!("../tests/data/apple-health-export.xml");
        let (samples, report, error) = import(bytes);
        assert_eq!(error, None);
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].metric.id, "bmi");
        assert!((samples[0].value - 22.5312).abs() < 1e-9);
        assert_eq!(samples[0].unit, "kg/m2");
        assert_eq!(samples[0].source, "Health Mate");
        assert_eq!(samples[1].metric.id, "heart_rate");
        assert_eq!(samples[1].value, 72.0);
        // 2018-09-10 02:28:55 -0700 is 09:28:55 UTC.
        assert_eq!(samples[1].start, 1_536_571_735_000);
        assert_eq!(report.records, 2);
        assert!(report.rejected.is_empty());
    }

    #[test]
    fn the_ios16_broken_dtd_does_not_stop_an_import() {
        let (bytes, written) = synthetic(Options {
            records: 2_000,
            seed: 7,
            ios16_dtd: true,
            messy: false,
        });
        let (samples, report, error) = import(&bytes);
        assert_eq!(error, None);
        assert_eq!(samples.len() as u64, written.importable);
        assert_eq!(report.imported, written.importable);
    }

    #[test]
    fn messy_exports_lose_nothing_silently() {
        let (bytes, written) = synthetic(Options {
            records: 5_000,
            seed: 11,
            ios16_dtd: true,
            messy: true,
        });
        let (samples, report, error) = import(&bytes);
        assert_eq!(error, None);
        assert!(written.unknown_types > 0);
        assert_eq!(report.imported, written.importable);
        assert_eq!(
            report
                .rejected
                .get(&Rejection::UnknownType)
                .copied()
                .unwrap_or(0),
            written.unknown_types
        );
        assert_eq!(
            report.records,
            report.imported + report.rejected.values().sum::<u64>()
        );
        assert!(
            samples
                .iter()
                .all(|s| !s.source.chars().any(char::is_control))
        );
        assert!(samples.iter().any(|s| s.metric.id == "systolic_bp"));
    }

    #[test]
    fn entities_are_never_expanded_and_nothing_is_fetched() {
        let xml = br#"<?xml version="1.0"?>
<!DOCTYPE HealthData [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> <!ENTITY lol "lollollol"> ]>
<HealthData>
 <Record type="HKQuantityTypeIdentifierHeartRate" sourceName="&xxe;" unit="count/min" startDate="2024-03-01 08:00:00 +0000" endDate="2024-03-01 08:00:00 +0000" value="61"/>
 <Record type="HKQuantityTypeIdentifierHeartRate" sourceName="&lol;" unit="count/min" startDate="2024-03-01 08:00:00 +0000" endDate="2024-03-01 08:00:00 +0000" value="62"/>
 <Record type="HKQuantityTypeIdentifierHeartRate" sourceName="Watch" unit="count/min" startDate="2024-03-01 08:01:00 +0000" endDate="2024-03-01 08:01:00 +0000" value="63"/>
</HealthData>"#;
        let (samples, report, error) = import(xml);
        assert_eq!(error, None);
        assert_eq!(samples.len(), 1);
        assert_eq!(samples[0].value, 63.0);
        assert_eq!(report.rejected.get(&Rejection::Malformed), Some(&2));
    }

    #[test]
    fn bad_values_dates_and_units_are_counted_with_their_reason() {
        let xml = br#"<HealthData>
 <Record type="HKQuantityTypeIdentifierHeartRate" unit="count/min" startDate="2024-03-01 08:00:00 +0000" endDate="2024-03-01 08:00:00 +0000" value="sixty"/>
 <Record type="HKQuantityTypeIdentifierHeartRate" unit="count/min" startDate="yesterday" endDate="2024-03-01 08:00:00 +0000" value="60"/>
 <Record type="HKQuantityTypeIdentifierHeartRate" unit="furlongs" startDate="2024-03-01 08:00:00 +0000" endDate="2024-03-01 08:00:00 +0000" value="60"/>
 <Record type="HKQuantityTypeIdentifierBodyMass" unit="lb" startDate="2024-03-01 08:00:00 +0000" endDate="2024-03-01 08:00:00 +0000" value="154"/>
</HealthData>"#;
        let (samples, report, _) = import(xml);
        assert_eq!(samples.len(), 1);
        assert!(
            (samples[0].value - 69.853).abs() < 0.001,
            "pounds become kilograms"
        );
        for why in [
            Rejection::BadValue,
            Rejection::BadDate,
            Rejection::UnknownUnit,
        ] {
            assert_eq!(report.rejected.get(&why), Some(&1), "{why:?}");
        }
    }

    #[test]
    fn something_that_is_not_an_export_is_refused() {
        let (_, _, error) = import(b"<html><body>hello</body></html>");
        assert!(error.unwrap().contains("not an Apple Health export"));
    }

    #[test]
    fn mangled_input_never_panics_or_hangs() {
        let (base, _) = synthetic(Options {
            records: 300,
            seed: 3,
            ios16_dtd: true,
            messy: true,
        });
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for _ in 0..300 {
            let mut bytes = base.clone();
            for _ in 0..(next() % 20) {
                let at = (next() as usize) % bytes.len();
                bytes[at] = (next() % 256) as u8;
            }
            let cut = (next() as usize) % bytes.len();
            if next() % 3 == 0 {
                bytes.truncate(cut);
            }
            let (samples, report, _) = import(&bytes);
            assert!(samples.len() as u64 <= report.records);
        }
    }
}
