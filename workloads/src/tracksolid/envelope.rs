//! The response envelope `{"code", "message", "result", "data"}` (reference
//! §4). `code` is `0`/`"0"` on success and may be a number or a string
//! otherwise; which of `result` and `data` carries the payload depends on the
//! method (pitfall 9), so both are kept and the typed methods pick.

use serde::{Deserialize, Deserializer};
use serde_json::Value;
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

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawEnvelope::deserialize(d)?;
        let text = |v: Option<Value>| match v {
            Some(Value::String(s)) => Some(s.trim().to_owned()),
            Some(Value::Null) | None => None,
            Some(other) => Some(other.to_string()),
        };
        Ok(Envelope {
            code: ApiCode::from_value(&raw.code),
            message: text(raw.message)
                .or_else(|| text(raw.msg))
                .unwrap_or_default(),
            result: raw.result,
            data: raw.data,
        })
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
    fn missing_code_needs_a_payload() {
        assert!(env(r#"{"result":[]}"#).is_success());
        assert!(!env(r#"{"message":"?"}"#).is_success());
    }
}
