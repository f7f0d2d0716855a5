//! Dates as exports write them: Apple Health's `2019-07-19 10:36:11 -0700`, RFC 3339
//! (`2020-02-05T06:00:00+01:00`), and local times without an offset (Fitbit, most CSV files),
//! which are read at an offset the person gives.

use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

pub use time::UtcOffset;

fn millis(t: OffsetDateTime) -> Option<i64> {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// An offset as a person writes it: `Z`, `UTC`, `+01:00`, `-0530`, `+1`.
pub fn parse_offset(s: &str) -> Option<UtcOffset> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("z") || s.eq_ignore_ascii_case("utc") {
        return Some(UtcOffset::UTC);
    }
    let sign: i8 = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = s[1..].chars().filter(|c| *c != ':').collect();
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m) = match digits.len() {
        1 | 2 => (digits.parse::<i8>().ok()?, 0),
        3 => (digits[..1].parse().ok()?, digits[1..].parse::<i8>().ok()?),
        _ => (digits[..2].parse().ok()?, digits[2..].parse::<i8>().ok()?),
    };
    // Real offsets run from -12:00 to +14:00.
    if h > 14 || m > 59 {
        return None;
    }
    UtcOffset::from_hms(sign * h, sign * m, 0).ok()
}

/// An RFC 3339 date-time with its offset, in milliseconds since the epoch.
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    OffsetDateTime::parse(s.trim(), &Rfc3339)
        .ok()
        .and_then(millis)
}

/// Any date-time Hale reads: RFC 3339, Apple's format, or a local `YYYY-MM-DD`,
/// `YYYY-MM-DD HH:MM[:SS[.fff]]` (`T` or space) read at `offset`.
pub(crate) fn parse_any(s: &str, offset: UtcOffset) -> Option<i64> {
    let s = s.trim();
    if let Some(t) = parse_rfc3339(s).or_else(|| parse_apple(s)) {
        return Some(t);
    }
    let date = Date::from_calendar_date(
        num(s, 0..4)?,
        Month::try_from(num::<u8>(s, 5..7)?).ok()?,
        num(s, 8..10)?,
    )
    .ok()?;
    if s.get(4..5) != Some("-") || s.get(7..8) != Some("-") {
        return None;
    }
    let time = match s.get(10..) {
        Some("") => Time::MIDNIGHT,
        Some(rest) if rest.starts_with(['T', ' ']) => local_time(&rest[1..])?,
        _ => return None,
    };
    millis(PrimitiveDateTime::new(date, time).assume_offset(offset))
}

/// `HH:MM`, `HH:MM:SS` or `HH:MM:SS.fff`.
fn local_time(s: &str) -> Option<Time> {
    let (hms, fraction) = s.split_once('.').unwrap_or((s, ""));
    let (h, m, sec) = match hms.len() {
        5 => (num(hms, 0..2)?, num(hms, 3..5)?, 0),
        8 => (num(hms, 0..2)?, num(hms, 3..5)?, num(hms, 6..8)?),
        _ => return None,
    };
    if hms.get(2..3) != Some(":") || (hms.len() == 8 && hms.get(5..6) != Some(":")) {
        return None;
    }
    let milli: u16 = if fraction.is_empty() {
        0
    } else {
        let digits = fraction.get(..fraction.len().min(3))?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        format!("{digits:0<3}").parse().ok()?
    };
    Time::from_hms_milli(h, m, sec, milli).ok()
}

fn num<T: std::str::FromStr>(s: &str, r: std::ops::Range<usize>) -> Option<T> {
    let part = s.get(r)?;
    part.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| part.parse().ok())
        .flatten()
}

/// Milliseconds since the epoch, or `None` if malformed.
pub(crate) fn parse_apple(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.len() != 25 || s.as_bytes().get(10) != Some(&b' ') || s.as_bytes().get(19) != Some(&b' ') {
        return None;
    }
    let date = Date::from_calendar_date(
        num(s, 0..4)?,
        Month::try_from(num::<u8>(s, 5..7)?).ok()?,
        num(s, 8..10)?,
    )
    .ok()?;
    let time = Time::from_hms(num(s, 11..13)?, num(s, 14..16)?, num(s, 17..19)?).ok()?;
    let sign: i8 = match s.as_bytes()[20] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let offset = UtcOffset::from_hms(
        sign * num::<i8>(s, 21..23)?,
        sign * num::<i8>(s, 23..25)?,
        0,
    )
    .ok()?;
    millis(PrimitiveDateTime::new(date, time).assume_offset(offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_read_as_people_write_them() {
        let hm = |h, m| UtcOffset::from_hms(h, m, 0).ok();
        assert_eq!(parse_offset("Z"), Some(UtcOffset::UTC));
        assert_eq!(parse_offset("utc"), Some(UtcOffset::UTC));
        assert_eq!(parse_offset("+01:00"), hm(1, 0));
        assert_eq!(parse_offset("-0530"), hm(-5, -30));
        assert_eq!(parse_offset("+1"), hm(1, 0));
        for bad in ["", "1", "+", "+25:00", "BST", "+01:00:00"] {
            assert_eq!(parse_offset(bad), None, "{bad}");
        }
    }

    #[test]
    fn local_times_are_read_at_the_given_offset() {
        let bst = UtcOffset::from_hms(1, 0, 0).unwrap();
        let utc = parse_rfc3339("2024-06-01T08:30:00Z").unwrap();
        assert_eq!(parse_any("2024-06-01 09:30", bst), Some(utc));
        assert_eq!(parse_any("2024-06-01T09:30:00.000", bst), Some(utc));
        assert_eq!(parse_any("2024-06-01T10:30:00+02:00", bst), Some(utc));
        assert_eq!(
            parse_any("2024-06-01", UtcOffset::UTC),
            parse_rfc3339("2024-06-01T00:00:00Z")
        );
        assert_eq!(parse_any("2024-06-01T09:30:00.5", bst), Some(utc + 500));
        for bad in [
            "",
            "2024-13-01",
            "2024-06-01X",
            "01/06/2024",
            "2024-06-01 9:30",
        ] {
            assert_eq!(parse_any(bad, bst), None, "{bad}");
        }
    }

    #[test]
    fn apple_dates_carry_their_offset() {
        let a = parse_apple("2019-07-19 10:36:11 -0700").unwrap();
        let b = parse_apple("2019-07-19 17:36:11 +0000").unwrap();
        assert_eq!(a, b);
        assert!(parse_apple("2019-07-19T10:36:11-0700").is_none());
        assert!(parse_apple("2019-02-30 10:36:11 -0700").is_none());
        assert!(parse_apple("").is_none());
    }
}
