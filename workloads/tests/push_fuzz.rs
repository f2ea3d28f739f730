//! Bounded fuzzing of the push parser (proptest; runs in CI): any path,
//! content type and body yields a request or a typed error — never a panic —
//! and every item that parses is typed or kept raw without panicking either.

use fleet_workloads::push::event::{classify, event_time};
use fleet_workloads::push::parse_request;
use proptest::prelude::*;

fn paths() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/pushgps".to_owned()),
        Just("/pushalarm".to_owned()),
        Just("/pushhb".to_owned()),
        Just("/push".to_owned()),
        Just("/pushIothubEvent".to_owned()),
        "/[a-zA-Z]{0,16}",
    ]
}

fn content_types() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("application/json".to_owned())),
        Just(Some("application/x-www-form-urlencoded".to_owned())),
        "[ -~]{0,40}".prop_map(Some),
    ]
}

/// JSON-ish values, to reach deeper than random bytes do.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number)),
        "[ -~]{0,24}".prop_map(serde_json::Value::from),
        Just(serde_json::Value::from("2026-01-13 02:24:37")),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("token".to_owned()),
                    Just("data_list".to_owned()),
                    Just("msgType".to_owned()),
                    Just("data".to_owned()),
                    Just("imei".to_owned()),
                    Just("deviceImei".to_owned()),
                    Just("gpsTime".to_owned()),
                    Just("alarmTime".to_owned()),
                    Just("lat".to_owned()),
                    Just("lng".to_owned()),
                    Just("msg".to_owned()),
                    "[a-zA-Z]{1,8}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn check(path: &str, ct: Option<&str>, body: &[u8]) {
    if let Ok(req) = parse_request(path, ct, body) {
        for item in &req.items {
            if let Ok(event) = classify(&req.kind, item) {
                let _ = event_time(&event, item);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(path in paths(), ct in content_types(), body in prop::collection::vec(any::<u8>(), 0..512)) {
        check(&path, ct.as_deref(), &body);
    }

    #[test]
    fn json_bodies_never_panic(path in paths(), value in json_value()) {
        check(&path, Some("application/json"), value.to_string().as_bytes());
    }

    #[test]
    fn form_bodies_never_panic(path in paths(), token in "[ -~]{0,12}", list in json_value(), raw in any::<bool>()) {
        let data_list = if raw { list.to_string() } else { format!("[{list}]") };
        let body = format!("token={}&data_list={}&msgType=jimi.push.device.alarm&data={}",
            urlencode(&token), urlencode(&data_list), urlencode(&list.to_string()));
        check(&path, Some("application/x-www-form-urlencoded"), body.as_bytes());
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
