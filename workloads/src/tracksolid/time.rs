//! Wire times. Everything we send is UTC `yyyy-MM-dd HH:mm:ss` (24-hour
//! clock, reference §2.1 and pitfalls 1–2). Everything we read is parsed as
//! UTC (reference pitfall 3). Accepted forms, tried in this order:
//!
//! | form | example | where it is seen |
//! |---|---|---|
//! | 9–11 digits: epoch seconds; 12–13 digits: epoch milliseconds | `1734593340` | `getTagMsg`, JSON numbers |
//! | `%Y-%m-%d %H:%M:%S` (no zone → UTC) | `2026-03-18 10:20:37` | `gpsTime`, `hbTime`, `alertTime`, `positioningTime`, trips |
//! | the same with fractional seconds, a `T` separator, or no seconds (no zone → UTC) | `2022-12-10T01:05:33.000`, `2026-03-18 10:20` | defensive |
//! | RFC 3339 with `Z` or an offset (converted to UTC) | `2022-12-10T01:05:33.000Z` | parking and fence-duration rows |
//!
//! Anything else yields `None` (the field is treated as absent), never a panic.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

/// The wire format of every request time parameter.
pub const WIRE_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// Formats an instant for the wire (`timestamp`, `begin_time`, …), in UTC.
pub fn format_wire(t: Timestamp) -> String {
    t.strftime(WIRE_FORMAT).to_string()
}

/// Parses a time as the API returns it (see the module doc for the forms).
pub fn parse_utc(raw: &str) -> Option<Timestamp> {
    let s = raw.trim();
    if s.is_empty() {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return from_epoch(s.parse().ok()?);
    }
    let has_zone =
        s.ends_with(['Z', 'z']) || s.get(10..).is_some_and(|rest| rest.contains(['+', '-']));
    if has_zone {
        return s.parse::<Timestamp>().ok();
    }
    // A civil (zone-less) date-time: UTC by the API's convention.
    let civil: DateTime = s.parse().ok()?;
    civil.to_zoned(TimeZone::UTC).ok().map(|z| z.timestamp())
}

/// Epoch seconds (up to 11 digits) or milliseconds (12–13 digits); `None`
/// for zero, negatives and out-of-range values.
pub fn from_epoch(n: i64) -> Option<Timestamp> {
    if n <= 0 {
        return None;
    }
    if n >= 100_000_000_000 {
        Timestamp::from_millisecond(n).ok()
    } else {
        Timestamp::from_second(n).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap_or_else(|e| panic!("bad fixture {s}: {e}"))
    }

    #[test]
    fn formats_24_hour_utc() {
        assert_eq!(
            format_wire(ts("2024-01-15T15:04:05Z")),
            "2024-01-15 15:04:05"
        );
        // An instant written with an offset is formatted in UTC.
        assert_eq!(
            format_wire(ts("2024-01-15T18:04:05+03:00")),
            "2024-01-15 15:04:05"
        );
        // Sub-second parts are dropped, not rounded into the next second.
        assert_eq!(
            format_wire(ts("2024-01-15T15:04:05.999Z")),
            "2024-01-15 15:04:05"
        );
    }

    #[test]
    fn parses_every_accepted_form_as_utc() {
        let want = ts("2022-12-10T01:05:33Z");
        for s in [
            "2022-12-10 01:05:33",
            " 2022-12-10 01:05:33 ",
            "2022-12-10 01:05:33.000",
            "2022-12-10T01:05:33.000",
            "2022-12-10T01:05:33.000Z",
            "2022-12-10T01:05:33Z",
            "2022-12-10T04:05:33+03:00",
            "2022-12-09T20:05:33-05:00",
            "1670634333",
            "1670634333000",
        ] {
            assert_eq!(parse_utc(s), Some(want), "{s}");
        }
        assert_eq!(
            parse_utc("2022-12-10 01:05"),
            Some(ts("2022-12-10T01:05:00Z"))
        );
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for s in [
            "",
            "  ",
            "0",
            "yesterday",
            "2022-13-40 99:99:99",
            "12:00",
            "-5",
            "2022-12-10 01:05:33 +0x",
        ] {
            assert_eq!(parse_utc(s), None, "{s}");
        }
    }
}
