//! FHIR dates as ranges: `2024` is the whole of 2024, `2024-03-01T10:00:00Z` one second.
//!
//! A date's precision is part of its meaning (FHIR R4 §3.1.1.4.6): searching `date=2024-03`
//! matches anything inside March. Each value becomes an inclusive range in milliseconds since
//! the Unix epoch, UTC. Dates without a time zone are taken as UTC, the server's zone.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// An inclusive range of instants, in milliseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    /// The first millisecond.
    pub lo: i64,
    /// The last millisecond.
    pub hi: i64,
}

impl DateRange {
    /// Everything: an open end of a Period.
    pub const ALL: DateRange = DateRange {
        lo: i64::MIN / 2,
        hi: i64::MAX / 2,
    };
}

fn millis(dt: OffsetDateTime) -> i64 {
    i64::try_from(dt.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

fn num<T: std::str::FromStr>(s: &str, range: std::ops::Range<usize>) -> Option<T> {
    let part = s.get(range)?;
    part.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| part.parse().ok())
        .flatten()
}

/// Parses a FHIR `date`, `dateTime` or `instant` (or a search value at any of those
/// precisions, including minutes) into the range it denotes.
pub fn parse_range(s: &str) -> Option<DateRange> {
    let year: i32 = num(s, 0..4)?;
    if s.len() == 4 {
        let start = Date::from_calendar_date(year, Month::January, 1).ok()?;
        let end = Date::from_calendar_date(year + 1, Month::January, 1).ok()?;
        return Some(day_span(start, end));
    }
    if s.as_bytes().get(4) != Some(&b'-') {
        return None;
    }
    let month = Month::try_from(num::<u8>(s, 5..7)?).ok()?;
    if s.len() == 7 {
        let start = Date::from_calendar_date(year, month, 1).ok()?;
        let end = if month == Month::December {
            Date::from_calendar_date(year + 1, Month::January, 1).ok()?
        } else {
            Date::from_calendar_date(year, month.next(), 1).ok()?
        };
        return Some(day_span(start, end));
    }
    if s.as_bytes().get(7) != Some(&b'-') {
        return None;
    }
    let date = Date::from_calendar_date(year, month, num(s, 8..10)?).ok()?;
    if s.len() == 10 {
        return Some(day_span(date, date.next_day()?));
    }
    if s.as_bytes().get(10) != Some(&b'T') {
        return None;
    }
    let rest = &s[11..];
    let tz_at = rest.find(['Z', '+', '-']).unwrap_or(rest.len());
    let (clock, zone) = rest.split_at(tz_at);
    let offset = match zone {
        "" | "Z" => UtcOffset::UTC,
        z => {
            let sign: i8 = if z.starts_with('-') { -1 } else { 1 };
            let h: i8 = num(z, 1..3)?;
            let m: i8 = num(z, 4..6)?;
            if z.len() != 6 || z.as_bytes().get(3) != Some(&b':') {
                return None;
            }
            UtcOffset::from_hms(sign * h, sign * m, 0).ok()?
        }
    };
    let hour: u8 = num(clock, 0..2)?;
    let minute: u8 = num(clock, 3..5)?;
    let (second, millis_part, span_ms): (u8, u16, i64) = match clock.len() {
        5 => (0, 0, 60_000),
        8 => (num(clock, 6..8)?, 0, 1_000),
        n if n > 9 && clock.as_bytes().get(8) == Some(&b'.') => {
            let frac = &clock[9..];
            if !frac.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let ms: u16 = format!("{frac:0<3}")[..3].parse().ok()?;
            (num(clock, 6..8)?, ms, 1)
        }
        _ => return None,
    };
    // A leap second (":60") is folded into the last second of the minute.
    let time = Time::from_hms_milli(hour, minute, second.min(59), millis_part).ok()?;
    let start = millis(PrimitiveDateTime::new(date, time).assume_offset(offset));
    Some(DateRange {
        lo: start,
        hi: start + span_ms - 1,
    })
}

fn day_span(start: Date, end: Date) -> DateRange {
    let lo = millis(start.midnight().assume_utc());
    let hi = millis(end.midnight().assume_utc()) - 1;
    DateRange { lo, hi }
}

/// Formats an instant (milliseconds since the epoch) as a FHIR `instant` in UTC.
pub fn format_instant(ms: i64) -> String {
    let dt = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.millisecond()
    )
}

/// Formats an instant as an HTTP date (RFC 9110 §5.6.7), for `Last-Modified`.
pub fn format_http_date(ms: i64) -> String {
    let dt = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[usize::from(dt.weekday().number_days_from_monday())],
        dt.day(),
        MONTHS[usize::from(u8::from(dt.month()) - 1)],
        dt.year(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// The current time in milliseconds since the epoch.
pub fn now_millis() -> i64 {
    millis(OffsetDateTime::now_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_dates_cover_their_whole_period() {
        let y = parse_range("2024").unwrap();
        let m = parse_range("2024-02").unwrap();
        let d = parse_range("2024-02-29").unwrap();
        assert_eq!(y.lo, m.lo - (31 * 86_400_000));
        assert_eq!(m.hi - m.lo + 1, 29 * 86_400_000);
        assert_eq!(d.hi - d.lo + 1, 86_400_000);
        assert!(parse_range("2023-02-29").is_none());
    }

    #[test]
    fn offsets_move_the_instant_to_utc() {
        let a = parse_range("2024-03-01T10:00:00+01:00").unwrap();
        let b = parse_range("2024-03-01T09:00:00Z").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.hi - a.lo, 999);
        let ms = parse_range("2024-03-01T09:00:00.25Z").unwrap();
        assert_eq!(ms.lo, b.lo + 250);
        assert_eq!(format_instant(ms.lo), "2024-03-01T09:00:00.250Z");
    }

    #[test]
    fn malformed_dates_are_refused() {
        for s in [
            "24",
            "2024-3",
            "2024-03-01T25:00:00Z",
            "2024-03-01X",
            "2024-03-01T10:00:00+1",
        ] {
            assert!(parse_range(s).is_none(), "{s}");
        }
    }

    #[test]
    fn http_dates_follow_rfc_9110() {
        assert_eq!(
            format_http_date(784_111_777_000),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
    }
}
