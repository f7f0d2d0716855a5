//! Apple Health dates: `2019-07-19 10:36:11 -0700`.

use time::{Date, Month, PrimitiveDateTime, Time, UtcOffset};

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
    let t = PrimitiveDateTime::new(date, time).assume_offset(offset);
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::parse_apple;

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
