//! The response envelope `{"code", "message", "result", "data"}` (reference
//! §4). `code` is `0`/`"0"` on success and may be a number or a string
//! otherwise; which of `result` and `data` carries the payload depends on the
//! method (pitfall 9), so both are kept and the typed methods pick.

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_json::value::RawValue;
use std::fmt;

/// A response `code`: a number, or text when the server sends a non-numeric
/// string (the doc's examples literally show `"xxx"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiCode {
    Num(i64),
    Text(String),
}

impl ApiCode {
    pub const SUCCESS: ApiCode = ApiCode::Num(0);

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            ApiCode::Num(n) => Some(*n),
            ApiCode::Text(_) => None,
        }
    }

    pub fn is_success(&self) -> bool {
        self.as_i64() == Some(0)
    }

    fn from_value(v: &Value) -> Option<ApiCode> {
        match v {
            Value::Number(n) => Some(match n.as_i64() {
                Some(i) => ApiCode::Num(i),
                None => ApiCode::Text(n.to_string()),
            }),
            Value::String(s) => {
                let t = s.trim();
                Some(match t.parse::<i64>() {
                    Ok(i) => ApiCode::Num(i),
                    Err(_) => ApiCode::Text(t.to_owned()),
                })
            }
            _ => None,
        }
    }
}

impl fmt::Display for ApiCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiCode::Num(n) => write!(f, "{n}"),
            ApiCode::Text(s) => write!(f, "{s:?}"),
        }
    }
}

/// A decoded envelope. `code` is `None` when the body had none.
#[derive(Clone, Debug, Default)]
pub struct Envelope {
    pub code: Option<ApiCode>,
    pub message: String,
    pub result: Value,
    pub data: Value,
}

#[derive(Deserialize)]
struct RawEnvelope {
    #[serde(default)]
    code: Value,
    #[serde(default)]
    message: Option<Value>,
    /// Some clients read `msg` as well (NUMAN).
    #[serde(default)]
    msg: Option<Value>,
    #[serde(default)]
    result: Value,
    #[serde(default)]
    data: Value,
}

/// `message`, else `msg`, as text.
fn message_text(message: Option<Value>, msg: Option<Value>) -> String {
    let text = |v: Option<Value>| match v {
        Some(Value::String(s)) => Some(s.trim().to_owned()),
        Some(Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    };
    text(message).or_else(|| text(msg)).unwrap_or_default()
}

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawEnvelope::deserialize(d)?;
        Ok(Envelope {
            code: ApiCode::from_value(&raw.code),
            message: message_text(raw.message, raw.msg),
            result: raw.result,
            data: raw.data,
        })
    }
}

/// An envelope whose payloads are kept as their JSON text (checked, not
/// decoded), for the client's typed methods: a large list is then decoded
/// row by row from its text ([`super::rows`]) instead of being held as a
/// whole `Value` tree first. `None` is a missing or `null` payload.
#[derive(Clone, Debug, Default)]
pub struct TextEnvelope {
    pub code: Option<ApiCode>,
    pub message: String,
    pub result: Option<Box<RawValue>>,
    pub data: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct BorrowedEnvelope<'a> {
    #[serde(default)]
    code: Value,
    #[serde(default)]
    message: Option<Value>,
    #[serde(default)]
    msg: Option<Value>,
    #[serde(default, borrow)]
    result: Option<&'a RawValue>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
}

impl TextEnvelope {
    /// Reads an envelope from a body. Fails on what [`Envelope`] fails on:
    /// a body that is not a JSON object, or not JSON at all.
    pub fn from_slice(body: &[u8]) -> Result<TextEnvelope, serde_json::Error> {
        let b: BorrowedEnvelope<'_> = serde_json::from_slice(body)?;
        Ok(TextEnvelope {
            code: ApiCode::from_value(&b.code),
            message: message_text(b.message, b.msg),
            result: b.result.map(RawValue::to_owned),
            data: b.data.map(RawValue::to_owned),
        })
    }

    /// As [`Envelope::is_success`].
    pub fn is_success(&self) -> bool {
        match &self.code {
            Some(c) => c.is_success(),
            None => self.result.is_some() || self.data.is_some(),
        }
    }

    /// As [`Envelope::code_or_empty`].
    pub fn code_or_empty(&self) -> ApiCode {
        self.code.clone().unwrap_or(ApiCode::Text(String::new()))
    }

    /// `result` if it is not null, else `data`.
    pub fn result_or_data(&self) -> Option<&RawValue> {
        self.result.as_deref().or(self.data.as_deref())
    }

    /// `data` if it is not null, else `result`.
    pub fn data_or_result(&self) -> Option<&RawValue> {
        self.data.as_deref().or(self.result.as_deref())
    }

    /// The same answer with its payloads decoded.
    pub fn into_envelope(self) -> Result<Envelope, serde_json::Error> {
        let value = |r: Option<Box<RawValue>>| match r {
            Some(r) => serde_json::from_str::<Value>(r.get()),
            None => Ok(Value::Null),
        };
        Ok(Envelope {
            code: self.code,
            message: self.message,
            result: value(self.result)?,
            data: value(self.data)?,
        })
    }
}

/// The first character of a payload's text tells its kind.
pub fn raw_kind(r: &RawValue) -> &'static str {
    match r.get().trim_start().as_bytes().first() {
        Some(b'n') => "null",
        Some(b't' | b'f') => "a boolean",
        Some(b'"') => "a string",
        Some(b'[') => "a list",
        Some(b'{') => "an object",
        _ => "a number",
    }
}

impl Envelope {
    /// Success: `code` is 0. A body without `code` but with a payload counts
    /// as success too (what NUMAN does); one with neither does not.
    pub fn is_success(&self) -> bool {
        match &self.code {
            Some(c) => c.is_success(),
            None => !self.result.is_null() || !self.data.is_null(),
        }
    }

    /// The code to report for a failure (`Text("")` when the body had none).
    pub fn code_or_empty(&self) -> ApiCode {
        self.code.clone().unwrap_or(ApiCode::Text(String::new()))
    }

    /// `result` if it is not null, else `data`.
    pub fn result_or_data(&self) -> &Value {
        if self.result.is_null() {
            &self.data
        } else {
            &self.result
        }
    }

    /// `data` if it is not null, else `result`.
    pub fn data_or_result(&self) -> &Value {
        if self.data.is_null() {
            &self.result
        } else {
            &self.data
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(s: &str) -> Envelope {
        serde_json::from_str(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn codes_as_numbers_and_strings() {
        assert!(env(r#"{"code":0,"message":"success","result":[]}"#).is_success());
        assert!(env(r#"{"code":"0","message":"success","result":[]}"#).is_success());
        let e = env(r#"{"code":"1004","message":"token"}"#);
        assert_eq!(e.code, Some(ApiCode::Num(1004)));
        assert!(!e.is_success());
        let e = env(r#"{"code":"xxx","message":"Incorrect user name or password"}"#);
        assert_eq!(e.code, Some(ApiCode::Text("xxx".into())));
        assert_eq!(e.message, "Incorrect user name or password");
        assert!(!e.is_success());
    }

    #[test]
    fn payload_in_result_or_data() {
        let e = env(r#"{"code":0,"message":"success","result":null,"data":{"rows":[]}}"#);
        assert!(e.result_or_data().is_object());
        let e = env(r#"{"code":0,"result":[1],"data":{"mileage":0}}"#);
        assert!(e.result_or_data().is_array());
        assert!(e.data_or_result().is_object());
        assert_eq!(e.message, "");
    }

    #[test]
    fn msg_is_a_fallback_for_message() {
        assert_eq!(env(r#"{"code":1,"msg":"x"}"#).message, "x");
    }

    #[test]
    fn the_text_envelope_reads_what_the_envelope_reads() {
        for body in [
            r#"{"code":0,"message":"success","result":[{"imei":"1"}],"data":null}"#,
            r#"{"code":"1004","msg":"token"}"#,
            r#"{"result":null,"data":{"rows":[]}}"#,
            r#"{"message":"?"}"#,
            r#"{"code":"xxx","result":"x","data":5}"#,
        ] {
            let t = TextEnvelope::from_slice(body.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
            let e = env(body);
            assert_eq!(t.is_success(), e.is_success(), "{body}");
            assert_eq!(t.code_or_empty(), e.code_or_empty(), "{body}");
            assert_eq!(t.message, e.message, "{body}");
            assert_eq!(
                t.result_or_data().map(|r| r.get().to_owned()),
                (!e.result_or_data().is_null()).then(|| e.result_or_data().to_string())
            );
            let back = t.into_envelope().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!((back.result, back.data), (e.result, e.data), "{body}");
        }
        for bad in [&b"not json"[..], b"{\"result\":[1,}", b"\xff", b"5"] {
            assert!(TextEnvelope::from_slice(bad).is_err());
            assert!(serde_json::from_slice::<Envelope>(bad).is_err());
        }
        // serde reads a struct from a list too; both alike.
        let t = TextEnvelope::from_slice(b"[1]").map(|t| t.code);
        let e = serde_json::from_slice::<Envelope>(b"[1]").map(|e| e.code);
        assert_eq!(t.ok(), e.ok());
    }

    #[test]
    fn missing_code_needs_a_payload() {
        assert!(env(r#"{"result":[]}"#).is_success());
        assert!(!env(r#"{"message":"?"}"#).is_success());
    }
}
