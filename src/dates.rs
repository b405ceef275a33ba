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
