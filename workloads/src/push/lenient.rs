//! Tolerant field access for push items: numbers arrive as numbers or
//! strings, times as `yyyy-MM-dd HH:mm:ss` (UTC), RFC 3339, or Unix seconds
//! or milliseconds, the IMEI under several keys.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use serde_json::Value;

/// A string field, or a number rendered as a string.
pub fn string(item: &Value, key: &str) -> Option<String> {
    match item.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A number field, or a numeric string.
pub fn float(item: &Value, key: &str) -> Option<f64> {
    match item.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|f: &f64| f.is_finite())
}

/// An integer field (a float with no fraction, or a numeric string).
pub fn int(item: &Value, key: &str) -> Option<i64> {
    match item.get(key)? {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The device IMEI: `imei`, then `deviceImei`, then `msg.deviceImei`, then
/// `data._imei` (command responses).
pub fn imei(item: &Value) -> Option<String> {
    string(item, "imei")
        .or_else(|| string(item, "deviceImei"))
        .or_else(|| item.get("msg").and_then(|m| string(m, "deviceImei")))
        .or_else(|| item.get("data").and_then(|d| string(d, "_imei")))
}

/// A time field. Accepted: `yyyy-MM-dd HH:mm:ss` (UTC, as JIMI sends),
/// RFC 3339 with an offset, and Unix seconds or milliseconds as a number or
/// numeric string (`/pushIothubEvent.gateTime`).
pub fn time(item: &Value, key: &str) -> Option<Timestamp> {
    match item.get(key)? {
        Value::String(s) => parse_time(s.trim()),
        Value::Number(n) => n.as_i64().and_then(unix),
        _ => None,
    }
}

pub fn parse_time(s: &str) -> Option<Timestamp> {
    if let Ok(dt) = DateTime::strptime("%Y-%m-%d %H:%M:%S", s) {
        return dt.to_zoned(TimeZone::UTC).ok().map(|z| z.timestamp());
    }
    if let Ok(ts) = s.parse::<Timestamp>() {
        return Some(ts);
    }
    s.parse::<i64>().ok().and_then(unix)
}

/// Seconds or milliseconds since the epoch (values past 10^11 are millis).
fn unix(n: i64) -> Option<Timestamp> {
    if n.abs() >= 100_000_000_000 {
        Timestamp::from_millisecond(n).ok()
    } else {
        Timestamp::from_second(n).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_as_numbers_or_strings() {
        let item = json!({"a": 7, "b": "7", "c": "7.5", "d": 7.0, "e": "x", "f": null});
        assert_eq!(int(&item, "a"), Some(7));
        assert_eq!(int(&item, "b"), Some(7));
        assert_eq!(int(&item, "d"), Some(7));
        assert_eq!(int(&item, "c"), None);
        assert_eq!(float(&item, "c"), Some(7.5));
        assert_eq!(float(&item, "e"), None);
        assert_eq!(float(&item, "f"), None);
        assert_eq!(string(&item, "a").as_deref(), Some("7"));
    }

    #[test]
    fn imei_from_every_place_it_turns_up() {
        assert_eq!(imei(&json!({"imei": "1"})).as_deref(), Some("1"));
        assert_eq!(
            imei(&json!({"deviceImei": 868120246598152u64})).as_deref(),
            Some("868120246598152")
        );
        assert_eq!(
            imei(&json!({"msg": {"deviceImei": "3"}})).as_deref(),
            Some("3")
        );
        assert_eq!(imei(&json!({"data": {"_imei": "4"}})).as_deref(), Some("4"));
        assert_eq!(
            imei(&json!({"imei": "", "deviceImei": "5"})).as_deref(),
            Some("5")
        );
        assert_eq!(imei(&json!({})), None);
    }

    #[test]
    fn times_in_every_format_are_utc() {
        let want: Timestamp = "2023-01-13T02:24:37Z".parse().unwrap();
        assert_eq!(parse_time("2023-01-13 02:24:37"), Some(want));
        assert_eq!(parse_time("2023-01-13T05:24:37+03:00"), Some(want));
        assert_eq!(parse_time("1673576677"), Some(want));
        assert_eq!(time(&json!({"t": 1673576677000i64}), "t"), Some(want));
        assert_eq!(parse_time("13/01/2023"), None);
        assert_eq!(parse_time(""), None);
    }
}
