//! Lenient field decoding (reference pitfall 8): the API mixes numbers and
//! strings (`speed "0"`, `direction 0` or `"0"`, `expiresIn 60` or `"7200"`,
//! `code 0` or `"xxx"`), sends `""` for absent values and units inside
//! numbers (`trackerOil "0.00L"`).
//!
//! Use with `#[serde(default, deserialize_with = "lenient::…")]`. Every helper
//! turns `null`, `""` and values it cannot read into `None` rather than
//! failing the whole response: one odd field must not lose a batch.

use jiff::Timestamp;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::time;

fn value_to_string(v: Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => {
            let t = s.trim();
            if t.is_empty() {
                None
            } else {
                Some(t.to_owned())
            }
        }
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(_) | Value::Object(_) => Some(v.to_string()),
    }
}

/// The longest leading decimal number in `s` (`"0.00L"` → `0.00`).
fn leading_number(s: &str) -> Option<f64> {
    let s = s.trim();
    if let Ok(n) = s.parse::<f64>() {
        return n.is_finite().then_some(n);
    }
    let end = s
        .char_indices()
        .take_while(|(i, c)| {
            c.is_ascii_digit() || *c == '.' || (*i == 0 && (*c == '-' || *c == '+'))
        })
        .map(|(i, c)| i + c.len_utf8())
        .last()?;
    s[..end].parse::<f64>().ok().filter(|n| n.is_finite())
}

/// A string from a string, number or bool.
pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(value_to_string(Value::deserialize(d)?))
}

/// A string that must be there: missing or null becomes `""`.
pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(value_to_string(Value::deserialize(d)?).unwrap_or_default())
}

/// A float from a number or a string; a trailing unit is dropped (`"0.00L"`).
pub fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_f64().filter(|f| f.is_finite()),
        Value::String(s) => leading_number(&s),
        _ => None,
    })
}

/// An integer from a number or a string (`"15"`, `15`, `15.0`, `"15.0"`).
/// Fractions are truncated toward zero.
pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().and_then(f64_to_i64)),
        Value::String(s) => {
            let t = s.trim();
            t.parse::<i64>()
                .ok()
                .or_else(|| leading_number(t).and_then(f64_to_i64))
        }
        _ => None,
    })
}

fn f64_to_i64(f: f64) -> Option<i64> {
    // `as` saturates; reject values outside the range instead.
    (f.is_finite() && f.abs() < 9.0e15).then_some(f.trunc() as i64)
}

/// A UTC time from any of the forms in [`super::time`], or an epoch number.
pub fn opt_utc<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => time::parse_utc(&s),
        Value::Number(n) => n.as_i64().and_then(time::from_epoch),
        _ => None,
    })
}

/// An on/off flag: `"1"`/`1`/`"ON"`/`"on"`/`true` → true,
/// `"0"`/`0`/`"OFF"`/`"off"`/`false` → false, anything else → None.
/// (`accStatus` is "0"/"1" in the location methods and "ON"/"OFF" in track.)
pub fn opt_flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Bool(b) => Some(b),
        Value::Number(n) => match n.as_i64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "on" | "true" => Some(true),
            "0" | "off" | "false" => Some(false),
            _ => None,
        },
        _ => None,
    })
}

/// A list of rows that may come as `null` (→ empty). An element that does
/// not decode is skipped and logged with its reason ([`super::rows`]); the
/// others are kept.
pub fn rows_or_null<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let rows = super::rows::Rows::<T>::deserialize(d)?;
    for e in &rows.skipped {
        tracing::warn!(reason = %e, "skipped a row that does not decode");
    }
    Ok(rows.rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug, Default)]
    struct Row {
        #[serde(default, deserialize_with = "opt_f64")]
        f: Option<f64>,
        #[serde(default, deserialize_with = "opt_i64")]
        i: Option<i64>,
        #[serde(default, deserialize_with = "opt_string")]
        s: Option<String>,
        #[serde(default, deserialize_with = "opt_utc")]
        t: Option<Timestamp>,
        #[serde(default, deserialize_with = "opt_flag")]
        b: Option<bool>,
    }

    fn row(json: &str) -> Row {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    #[test]
    fn numbers_from_strings_and_numbers() {
        assert_eq!(row(r#"{"f":"0.06"}"#).f, Some(0.06));
        assert_eq!(row(r#"{"f":22.576562}"#).f, Some(22.576562));
        assert_eq!(row(r#"{"f":"0.00L"}"#).f, Some(0.0));
        assert_eq!(row(r#"{"f":"-1"}"#).f, Some(-1.0));
        assert_eq!(row(r#"{"f":""}"#).f, None);
        assert_eq!(row(r#"{"f":null}"#).f, None);
        assert_eq!(row(r#"{"f":"abc"}"#).f, None);
        assert_eq!(row(r#"{}"#).f, None);
        assert_eq!(row(r#"{"i":"7200"}"#).i, Some(7200));
        assert_eq!(row(r#"{"i":60}"#).i, Some(60));
        assert_eq!(row(r#"{"i":"15.0"}"#).i, Some(15));
        assert_eq!(row(r#"{"i":2130.7}"#).i, Some(2130));
        assert_eq!(row(r#"{"i":"1e400"}"#).i, None);
        assert_eq!(row(r#"{"i":true}"#).i, None);
    }

    #[test]
    fn strings_from_anything_scalar() {
        assert_eq!(row(r#"{"s":1}"#).s.as_deref(), Some("1"));
        assert_eq!(row(r#"{"s":"GPS"}"#).s.as_deref(), Some("GPS"));
        assert_eq!(row(r#"{"s":"  "}"#).s, None);
        assert_eq!(row(r#"{"s":null}"#).s, None);
    }

    #[test]
    fn times_and_flags() {
        let r = row(r#"{"t":"2026-03-18 10:20:37","b":"ON"}"#);
        assert_eq!(
            r.t.map(|t| t.to_string()).as_deref(),
            Some("2026-03-18T10:20:37Z")
        );
        assert_eq!(r.b, Some(true));
        assert_eq!(
            row(r#"{"t":1734593340}"#).t.map(|t| t.as_second()),
            Some(1734593340)
        );
        assert_eq!(row(r#"{"t":"not a time"}"#).t, None);
        assert_eq!(row(r#"{"b":"0"}"#).b, Some(false));
        assert_eq!(row(r#"{"b":"OFF"}"#).b, Some(false));
        assert_eq!(row(r#"{"b":1}"#).b, Some(true));
        assert_eq!(row(r#"{"b":"maybe"}"#).b, None);
    }
}
