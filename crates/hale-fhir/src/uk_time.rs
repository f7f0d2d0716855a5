//! Dates and times as people in the UK read them: Europe/London time (GMT in winter, BST in
//! summer), never the server's own zone. The time zone database is compiled into the binary
//! (`jiff`'s bundled copy), so nothing needs installing and every machine answers alike.
//!
//! Instants are stored in UTC everywhere; this module is only for what a person sees and
//! types: the date and time shown, "today" in a form, where a chart's days begin.

use std::sync::OnceLock;

use jiff::tz::TimeZone;

fn london() -> &'static TimeZone {
    static LONDON: OnceLock<TimeZone> = OnceLock::new();
    // The bundled database always holds Europe/London; UTC is only a guard.
    LONDON.get_or_init(|| jiff::tz::db().get("Europe/London").unwrap_or(TimeZone::UTC))
}

/// The date and time on a London clock at `ms` (since the epoch).
pub fn at(ms: i64) -> Option<time::OffsetDateTime> {
    let stamp = jiff::Timestamp::from_millisecond(ms).ok()?;
    let offset = time::UtcOffset::from_whole_seconds(london().to_offset(stamp).seconds()).ok()?;
    let utc = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    Some(utc.to_offset(offset))
}

/// Today's date in London.
pub fn today() -> time::Date {
    at(crate::date::now_millis())
        .map_or_else(|| time::OffsetDateTime::now_utc().date(), |t| t.date())
}

/// The instant (ms) a London calendar day begins: midnight, or the first moment after it
/// should a clock change ever skip midnight.
pub fn start_of(day: time::Date) -> Option<i64> {
    let date = jiff::civil::Date::new(
        i16::try_from(day.year()).ok()?,
        i8::try_from(u8::from(day.month())).ok()?,
        i8::try_from(day.day()).ok()?,
    )
    .ok()?;
    Some(
        date.to_zoned(london().clone())
            .ok()?
            .timestamp()
            .as_millisecond(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(rfc3339: &str) -> i64 {
        crate::date::parse_range(rfc3339).unwrap().lo
    }

    #[test]
    fn summer_is_an_hour_ahead_of_utc_and_winter_is_not() {
        // Half past midnight in London on 1 June is still 31 May in UTC.
        let june = at(ms("2026-05-31T23:30:00Z")).unwrap();
        assert_eq!(
            (june.month(), june.day(), june.hour(), june.minute()),
            (time::Month::June, 1, 0, 30)
        );
        let december = at(ms("2026-12-01T23:30:00Z")).unwrap();
        assert_eq!((december.day(), december.hour()), (1, 23));
    }

    #[test]
    fn the_clocks_change_at_one_in_the_morning_utc_on_the_last_sundays_of_march_and_october() {
        // 2026: BST from 29 March 01:00 UTC to 25 October 01:00 UTC.
        assert_eq!(at(ms("2026-03-29T00:59:59Z")).unwrap().hour(), 0);
        assert_eq!(at(ms("2026-03-29T01:00:00Z")).unwrap().hour(), 2);
        assert_eq!(at(ms("2026-10-25T00:59:59Z")).unwrap().hour(), 1);
        assert_eq!(at(ms("2026-10-25T01:00:00Z")).unwrap().hour(), 1);
        // In 1995 summer time ended on 22 October (the rules before 1996 differ).
        assert_eq!(at(ms("1995-10-21T12:00:00Z")).unwrap().hour(), 13);
        assert_eq!(at(ms("1995-10-23T12:00:00Z")).unwrap().hour(), 12);
    }

    #[test]
    fn a_day_begins_at_london_midnight() {
        let day = |y, m, d| {
            time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d).unwrap()
        };
        assert_eq!(start_of(day(2026, 7, 1)), Some(ms("2026-06-30T23:00:00Z")));
        assert_eq!(start_of(day(2026, 1, 1)), Some(ms("2026-01-01T00:00:00Z")));
        // The day the clocks go forward is 23 hours long.
        let short = start_of(day(2026, 3, 30)).unwrap() - start_of(day(2026, 3, 29)).unwrap();
        assert_eq!(short, 23 * 3_600_000);
    }
}
