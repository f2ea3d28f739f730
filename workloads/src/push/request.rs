//! Turning an HTTP push into a list of raw items, whatever shape it came in:
//!
//! - per-type pushes (`/pushgps`, …): form fields `token` + `data_list` (a JSON
//!   array encoded as a string), or a JSON body `{"token":…, "data_list":[…]}`;
//!   `data_list` may be a string, an array, a single object, or absent (then
//!   the body itself is the one item);
//! - the Open-API push (`/push`): `msgType` + `data` (a JSON string), as form
//!   fields or JSON.
//!
//! Every item must be a JSON object; anything else is a 400 with the reason.

use super::kind::PushKind;
use serde_json::{Map, Value};
use thiserror::Error;

/// The path of the Open-API form push.
pub const OPEN_API_PATH: &str = "/push";

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("unknown push path {0:?}")]
    UnknownPath(String),
    #[error("body is not UTF-8")]
    NotUtf8,
    #[error("body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("body is not valid form data: {0}")]
    InvalidForm(String),
    #[error("{field} is not valid JSON: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("{field} must be a JSON object or an array of objects")]
    WrongShape { field: &'static str },
    #[error("item {index} of {field} is not a JSON object")]
    ItemNotObject { field: &'static str, index: usize },
    #[error("Open-API push without msgType")]
    MissingMsgType,
}

/// A parsed push: what it is, the token it carried (if in the body), and
/// its raw items.
#[derive(Debug, Clone, PartialEq)]
pub struct PushRequest {
    pub kind: PushKind,
    pub token: Option<String>,
    pub items: Vec<Value>,
}

enum Body {
    Json(Value),
    Form(Vec<(String, String)>),
}

fn read_body(content_type: Option<&str>, body: &[u8]) -> Result<Body, RequestError> {
    let text = std::str::from_utf8(body).map_err(|_| RequestError::NotUtf8)?;
    let ct = content_type.unwrap_or("").to_ascii_lowercase();
    let looks_json = matches!(text.trim_start().chars().next(), Some('{') | Some('['));
    if ct.contains("json") || (!ct.contains("form") && looks_json) {
        serde_json::from_str(text)
            .map(Body::Json)
            .map_err(|e| RequestError::InvalidJson(e.to_string()))
    } else {
        serde_urlencoded::from_str(text)
            .map(Body::Form)
            .map_err(|e| RequestError::InvalidForm(e.to_string()))
    }
}

/// Items from a value that is an array of objects, one object, or a string
/// holding either.
fn items_from(field: &'static str, value: Value) -> Result<Vec<Value>, RequestError> {
    let value = match value {
        Value::String(s) => serde_json::from_str(&s).map_err(|e| RequestError::InvalidField {
            field,
            reason: e.to_string(),
        })?,
        other => other,
    };
    match value {
        Value::Array(items) => {
            if let Some(index) = items.iter().position(|i| !i.is_object()) {
                return Err(RequestError::ItemNotObject { field, index });
            }
            Ok(items)
        }
        obj @ Value::Object(_) => Ok(vec![obj]),
        _ => Err(RequestError::WrongShape { field }),
    }
}

fn take_string(map: &mut Map<String, Value>, key: &str) -> Option<String> {
    match map.remove(key)? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A push whose top level is a set of named fields (a JSON object or a
/// form): `token`, then either the Open-API `msgType` + `data` (when
/// `path_kind` is None) or `data_list`; without `data_list` the remaining
/// fields are the single item.
fn from_fields(
    mut map: Map<String, Value>,
    path_kind: Option<PushKind>,
    empty_is_no_item: bool,
) -> Result<PushRequest, RequestError> {
    let token = take_string(&mut map, "token");
    let Some(kind) = path_kind else {
        let msg_type = take_string(&mut map, "msgType").ok_or(RequestError::MissingMsgType)?;
        let data = map
            .remove("data")
            .ok_or(RequestError::WrongShape { field: "data" })?;
        return Ok(PushRequest {
            kind: PushKind::from_msg_type(&msg_type),
            token,
            items: items_from("data", data)?,
        });
    };
    let items = match map.remove("data_list") {
        Some(list) => items_from("data_list", list)?,
        None if empty_is_no_item && map.is_empty() => Vec::new(),
        None => vec![Value::Object(map)],
    };
    Ok(PushRequest { kind, token, items })
}

/// Parse one push request.
pub fn parse_request(
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<PushRequest, RequestError> {
    let open_api = path
        .trim_end_matches('/')
        .eq_ignore_ascii_case(OPEN_API_PATH);
    let path_kind = if open_api {
        None
    } else {
        Some(PushKind::from_path(path).ok_or_else(|| RequestError::UnknownPath(path.to_owned()))?)
    };
    match read_body(content_type, body)? {
        Body::Json(Value::Array(items)) => {
            let kind = path_kind.ok_or(RequestError::MissingMsgType)?;
            Ok(PushRequest {
                kind,
                token: None,
                items: items_from("body", Value::Array(items))?,
            })
        }
        Body::Json(Value::Object(map)) => from_fields(map, path_kind, false),
        Body::Json(_) => Err(RequestError::WrongShape { field: "body" }),
        Body::Form(pairs) => {
            let map = pairs
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            // An empty form is an empty push, not one empty item.
            from_fields(map, path_kind, true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");
    const JSON: Option<&str> = Some("application/json");

    fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
        serde_urlencoded::to_string(pairs).unwrap().into_bytes()
    }

    #[test]
    fn form_with_data_list_string_from_the_reference() {
        let data_list = r#"[{"deviceImei":"868120246598152","gpsTime":"2023-01-13 02:24:37","gateTime":"2023-01-13 02:24:38","satelliteNum":7,"lng":113.942885,"lat":22.576539,"gpsMode":0,"gpsSpeed":0,"direction":155,"acc":1,"postType":1,"altitude":0,"distance":698,"status":262147}]"#;
        let req = parse_request(
            "/pushgps",
            FORM,
            &form(&[("token", "t"), ("data_list", data_list)]),
        )
        .unwrap();
        assert_eq!(req.kind, PushKind::Gps);
        assert_eq!(req.token.as_deref(), Some("t"));
        assert_eq!(req.items.len(), 1);
        assert_eq!(req.items[0]["deviceImei"], "868120246598152");
    }

    #[test]
    fn json_body_with_array_or_string_or_single_object() {
        let body = json!({"token": "t", "data_list": [{"imei": "1"}, {"imei": "2"}]});
        let req = parse_request("/pushAlarm", JSON, body.to_string().as_bytes()).unwrap();
        assert_eq!((req.kind.clone(), req.items.len()), (PushKind::Alarm, 2));

        let body = json!({"token": "t", "data_list": "[{\"imei\":\"1\"}]"});
        let req = parse_request("/pushalarm", JSON, body.to_string().as_bytes()).unwrap();
        assert_eq!(req.items.len(), 1);

        // No envelope: the offline-command callback arrives as one object.
        let body = json!({"code": 0, "msg": "ok", "data": {"_imei": "9"}, "token": "t"});
        let req =
            parse_request("/pushInstructResponse", None, body.to_string().as_bytes()).unwrap();
        assert_eq!(req.token.as_deref(), Some("t"));
        assert_eq!(
            req.items,
            vec![json!({"code": 0, "msg": "ok", "data": {"_imei": "9"}})]
        );
    }

    #[test]
    fn open_api_form_push() {
        let data = r#"{"imei":"869247060081665","alarmType":"overSpeed","alarmName":"Overspeed","lat":22.5,"lng":113.9,"alarmTime":"2025-01-07 11:06:01"}"#;
        let req = parse_request(
            "/push",
            FORM,
            &form(&[
                ("msgType", "jimi.push.device.alarm"),
                ("data", data),
                ("token", "t"),
            ]),
        )
        .unwrap();
        assert_eq!(req.kind, PushKind::OpenApiAlarm);
        assert_eq!(req.items[0]["alarmType"], "overSpeed");
        assert_eq!(
            parse_request("/push", FORM, &form(&[("data", data)])),
            Err(RequestError::MissingMsgType)
        );
    }

    #[test]
    fn bad_bodies_say_why() {
        assert_eq!(
            parse_request("/nope", FORM, b"token=t"),
            Err(RequestError::UnknownPath("/nope".into()))
        );
        assert!(matches!(
            parse_request(
                "/pushgps",
                FORM,
                &form(&[("token", "t"), ("data_list", "[{")])
            ),
            Err(RequestError::InvalidField {
                field: "data_list",
                ..
            })
        ));
        assert_eq!(
            parse_request("/pushgps", FORM, &form(&[("data_list", "[1,2]")])),
            Err(RequestError::ItemNotObject {
                field: "data_list",
                index: 0
            })
        );
        assert_eq!(
            parse_request("/pushgps", FORM, &form(&[("data_list", "42")])),
            Err(RequestError::WrongShape { field: "data_list" })
        );
        assert!(matches!(
            parse_request("/pushgps", JSON, b"{not json"),
            Err(RequestError::InvalidJson(_))
        ));
        assert_eq!(
            parse_request("/pushgps", FORM, &[0xff, 0xfe]),
            Err(RequestError::NotUtf8)
        );
    }

    #[test]
    fn empty_data_list_is_fine() {
        let req = parse_request(
            "/pushhb",
            FORM,
            &form(&[("token", "t"), ("data_list", "[]")]),
        )
        .unwrap();
        assert!(req.items.is_empty());
    }
}
