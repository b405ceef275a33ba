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

/// The first date written in a file name: `2025-03-14 compte rendu.pdf`, `20250314_scan.pdf`,
/// `scan 2025_03_14.pdf`. Only a valid calendar date in 1900..=`max_year` counts (later years
/// are scan counters or phone numbers, not dates), and only when its digits stand alone:
/// `IMG_120250314.jpg` or `2025-03-145` hold no date.
pub fn from_file_name(name: &str, max_year: i16) -> Option<Date> {
    let b = name.as_bytes();
    let digits = |from: usize, n: usize| {
        b.get(from..from + n)
            .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
    };
    // Only ASCII digits are read, so slicing at these offsets is on character boundaries.
    let num = |from: usize, n: usize| name.get(from..from + n)?.parse::<i16>().ok();
    let ends = |at: usize| !b.get(at).is_some_and(u8::is_ascii_digit);
    let date = |y: Option<i16>, m: Option<i16>, d: Option<i16>| {
        let (y, m, d) = (y?, i8::try_from(m?).ok()?, i8::try_from(d?).ok()?);
        (1900..=max_year)
            .contains(&y)
            .then(|| Date::new(y, m, d).ok())?
    };
    for i in 0..b.len() {
        if !b[i].is_ascii_digit() || (i > 0 && b[i - 1].is_ascii_digit()) {
            continue;
        }
        // YYYYMMDD: exactly eight digits.
        if digits(i, 8) && ends(i + 8) {
            if let Some(d) = date(num(i, 4), num(i + 4, 2), num(i + 6, 2)) {
                return Some(d);
            }
            continue;
        }
        // YYYY-MM-DD or YYYY_MM_DD, the same separator twice.
        let sep = b.get(i + 4).copied();
        if digits(i, 4)
            && matches!(sep, Some(b'-' | b'_'))
            && digits(i + 5, 2)
            && b.get(i + 7).copied() == sep
            && digits(i + 8, 2)
            && ends(i + 10)
            && let Some(d) = date(num(i, 4), num(i + 5, 2), num(i + 8, 2))
        {
            return Some(d);
        }
    }
    None
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
    if looks_like_duration(t) {
        let d = duration(t).ok_or_else(bad)?;
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

/// A duration alone (`90s`, `15m`, `72h`, `7d`, `2w`), as `carnet unlock --for` takes it.
pub fn parse_duration(s: &str) -> Result<jiff::SignedDuration, Error> {
    let t = s.trim();
    looks_like_duration(t)
        .then(|| duration(t))
        .flatten()
        .ok_or_else(|| {
            Error::input(
                format!("cannot read {s:?} as a duration"),
                "use a duration like 90s, 15m, 8h",
            )
        })
}

/// Starts with a digit, ends with a unit, and is no date (`2026-12-31` has dashes).
fn looks_like_duration(t: &str) -> bool {
    t.starts_with(|c: char| c.is_ascii_digit())
        && t.ends_with(|c: char| c.is_ascii_alphabetic())
        && !t.contains('-')
}

/// jiff's friendly format reads `90m`, `72h`, `7d`, `2w` (and `1h30m`); a day counts 24 hours
/// here, as a user means by `7d`. Months and years have no fixed length, and `1h ago` would put
/// the end of consent in the past: both are refused (`None`).
fn duration(t: &str) -> Option<jiff::SignedDuration> {
    let span: jiff::Span = t.parse().ok()?;
    if span.is_negative() {
        return None;
    }
    span.to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .ok()
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

/// The local calendar day of a stored time, `YYYY-MM-DD`.
pub fn local_day(ts: Timestamp) -> String {
    ts.to_zoned_datetime(TimeZone::system()).date().to_string()
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
    fn durations_alone() {
        let d = |s| super::parse_duration(s).map(|d| d.as_secs());
        assert_eq!(d("15m").unwrap(), 900);
        assert_eq!(d("90s").unwrap(), 90);
        assert_eq!(d("1h30m").unwrap(), 5400);
        assert_eq!(d("2w").unwrap(), 14 * 86400);
        for bad in ["", "15", "2026-12-31", "1y", "1h ago", "soon", "-5m"] {
            assert!(d(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates_in_file_names() {
        let d = |s: &str| super::from_file_name(s, 2027).map(|d| d.to_string());
        let some = |s: &str| Some(s.to_string());
        assert_eq!(d("2025-03-14 compte rendu.pdf"), some("2025-03-14"));
        assert_eq!(d("20250314_scan.pdf"), some("2025-03-14"));
        assert_eq!(d("scan 2025_03_14.pdf"), some("2025-03-14"));
        assert_eq!(d("CR-2024-12-01-v2.pdf"), some("2024-12-01"));
        // The first valid date wins; invalid ones are passed over.
        assert_eq!(d("2025-02-30 puis 2025-03-01.pdf"), some("2025-03-01"));
        for none in [
            "compte rendu.pdf",
            "IMG_120250314.jpg",
            "2025031412.pdf",
            "2025-03-145.pdf",
            "12025-03-14.pdf",
            "2025-03_14.pdf",
            "2025-13-01.pdf",
            "1899-12-31.pdf",
            "2028-01-01.pdf",
            "20250230.pdf",
            "2025-3-14.pdf",
            "été 2025.pdf",
        ] {
            assert_eq!(d(none), None, "{none}");
        }
        assert_eq!(d("1900-01-01.pdf"), some("1900-01-01"));
        assert_eq!(d("2027-12-31.pdf"), some("2027-12-31"));
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
