//! Dates and times: ISO 8601 in, UTC on disk, local time on screen.

use jiff::civil::Date;
use jiff::{Timestamp, tz::TimeZone};

use crate::error::Error;

/// Parses a calendar date `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Result<Date, Error> {
    s.trim().parse::<Date>().map_err(|_| {
        Error::input(
            format!("invalid date {s:?}"),
            "write dates as YYYY-MM-DD, e.g. 2026-03-14",
        )
    })
}

/// The local calendar date of a file-system time.
pub fn local_date(t: std::time::SystemTime) -> Option<Date> {
    let ts = Timestamp::try_from(t).ok()?;
    Some(ts.to_zoned_datetime(TimeZone::system()).date())
}

/// A point in time given as a duration from `now` (`90m`, `72h`, `7d`, `2w`) or a date/time:
/// RFC 3339 with an offset, or local `YYYY-MM-DD[THH:MM[:SS]]`. A date alone means the start of
/// that day, or with `end_of_day` the end of it (so `--expires 2026-12-31` includes that day).
pub fn parse_when(s: &str, now: Timestamp, end_of_day: bool) -> Result<Timestamp, Error> {
    let t = s.trim();
    let bad = || {
        Error::input(
            format!("cannot read {s:?} as a duration or a date"),
            "use a duration like 90m, 72h, 7d, 2w, or a date like 2026-12-31 or 2026-12-31T18:00",
        )
    };
    if t.starts_with(|c: char| c.is_ascii_digit())
        && t.ends_with(|c: char| c.is_ascii_alphabetic())
        && !t.contains('-')
    {
        // jiff's friendly format reads `90m`, `72h`, `7d`, `2w` (and `1h30m`); a day counts
        // 24 hours here, as a user means by `7d`. Months and years have no fixed length, and
        // `1h ago` would put the end of consent in the past: both are refused.
        let span: jiff::Span = t.parse().map_err(|_| bad())?;
        if span.is_negative() {
            return Err(bad());
        }
        let d = span
            .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
            .map_err(|_| bad())?;
        return now.checked_add(d).map_err(|_| bad());
    }
    if let Ok(ts) = t.parse::<Timestamp>() {
        return Ok(ts);
    }
    let tz = TimeZone::system();
    if let Ok(dt) = t.replace(' ', "T").parse::<jiff::civil::DateTime>()
        && t.contains(['T', ' '])
    {
        return dt
            .to_zoned_datetime(tz)
            .map(|z| z.timestamp())
            .map_err(|_| bad());
    }
    if let Ok(d) = t.parse::<Date>() {
        if end_of_day {
            // The last second of that day, so it shows as the day the user typed.
            let next = d.tomorrow().map_err(|_| bad())?;
            let ts = next
                .to_zoned_datetime(tz)
                .map(|z| z.timestamp())
                .map_err(|_| bad())?;
            return ts
                .checked_sub(jiff::SignedDuration::from_secs(1))
                .map_err(|_| bad());
        }
        return d
            .to_zoned_datetime(tz)
            .map(|z| z.timestamp())
            .map_err(|_| bad());
    }
    Err(bad())
}

pub fn now() -> Timestamp {
    Timestamp::now()
}

/// A stored UTC time shown in the user's time zone, to the minute.
pub fn show_local(ts: Timestamp) -> String {
    ts.to_zoned_datetime(TimeZone::system())
        .strftime("%Y-%m-%d %H:%M")
        .to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_and_dates() {
        let now: jiff::Timestamp = "2026-11-25T12:00:00Z".parse().unwrap();
        let w = |s| super::parse_when(s, now, true).unwrap().to_string();
        assert_eq!(w("90m"), "2026-11-25T13:30:00Z");
        assert_eq!(w("72h"), "2026-11-28T12:00:00Z");
        assert_eq!(w("7d"), "2026-12-02T12:00:00Z");
        assert_eq!(w("2w"), "2026-12-09T12:00:00Z");
        assert_eq!(w("2026-12-01T10:00:00Z"), "2026-12-01T10:00:00Z");
        assert!(super::parse_when("soon", now, true).is_err());
        assert!(super::parse_when("7x", now, true).is_err());
        assert_eq!(w("1h30m"), "2026-11-25T13:30:00Z");
        assert_eq!(w(" 7d "), "2026-12-02T12:00:00Z");
        assert!(super::parse_when("1h ago", now, true).is_err());
        assert!(super::parse_when("1y", now, true).is_err());
        assert!(super::parse_when("99999999999w", now, true).is_err());
        assert!(super::parse_when("2026-13-01", now, true).is_err());
    }

    #[test]
    fn dates_parse_or_explain() {
        assert_eq!(
            super::parse_date("2026-03-14").unwrap().to_string(),
            "2026-03-14"
        );
        let e = super::parse_date("14/03/2026").unwrap_err();
        assert!(e.to_string().contains("invalid date"));
        assert!(super::parse_date("2026-02-30").is_err());
    }
}
