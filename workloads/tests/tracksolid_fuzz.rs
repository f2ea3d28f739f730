//! Bounded fuzzing of the Tracksolid response decoding (proptest; runs in CI
//! in a few seconds). Arbitrary bytes and mutated envelopes — codes as
//! numbers, strings or garbage, payloads in `result` or `data`, rows whose
//! fields are strings instead of numbers, huge numbers, bad timestamps,
//! nested garbage, missing fields — go through the decoding entry points:
//!
//! - the envelope (`Envelope` from bytes) and the typed rows the client's
//!   methods decode from its payload (`Vec<Location>`, `Vec<Device>`, …);
//! - the wire-time parser;
//! - the real client over loopback, against a stub server answering the
//!   fuzzed body, through `location_list`, `device_list`, `track_window`,
//!   `alarm_page`, `parking_page` and `mileage_page`.
//!
//! Properties: nothing panics; failures are typed (`TracksolidError` with a
//! class); a list of objects always decodes, whatever its fields hold —
//! one odd field must not lose a batch; and through the client, a list
//! always decodes, whatever its elements — one bad row must not lose it.

use fleet_workloads::tracksolid::time::{format_wire, from_epoch, parse_utc};
use fleet_workloads::tracksolid::{
    AccType, Alarm, CachedToken, ClientConfig, Credentials, Device, Envelope, ErrorClass, Location,
    MemoryTokenStore, MileageTotal, ParkingPage, RetryPolicy, TokenGrant, TokenStore, TrackPoint,
    TracksolidClient, TracksolidError, Trip, UserPassword,
};
use jiff::Timestamp;
use proptest::prelude::*;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Field names of the rows we decode (plus a few unknown ones).
const FIELDS: &[&str] = &[
    "imei",
    "deviceName",
    "mcType",
    "status",
    "posType",
    "lat",
    "lng",
    "gpsTime",
    "hbTime",
    "speed",
    "gpsSpeed",
    "accStatus",
    "direction",
    "gpsNum",
    "gpsSignal",
    "electQuantity",
    "trackerOil",
    "currentMileage",
    "expireFlag",
    "confidence",
    "expiration",
    "activationTime",
    "enabledFlag",
    "reMark",
    "alertTypeId",
    "alarmTypeName",
    "alertTypeName",
    "alertTime",
    "positioningTime",
    "startTime",
    "endTime",
    "durSecond",
    "stopSecond",
    "startLat",
    "endLng",
    "runTimeSecond",
    "elapsed",
    "distance",
    "avgSpeed",
    "totalMileage",
    "satellite",
    "ignition",
    "gpsMode",
    "accessToken",
    "expiresIn",
    "totalTime",
    "dataTotalRows",
    "rows",
    "mileage",
    "zzUnknown",
];

/// Scalars the API sends, and the ones it should not.
fn nasty_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        Just(json!(1.7976931348623157e308)),
        Just(json!(-0.0)),
        Just(json!("")),
        Just(json!("  ")),
        Just(json!("0")),
        Just(json!("-1")),
        Just(json!("1e400")),
        Just(json!("NaN")),
        Just(json!("inf")),
        Just(json!("0.00L")),
        Just(json!("99999999999999999999999999")),
        Just(json!("2026-03-18 10:20:37")),
        Just(json!("2022-12-10T01:05:33.000Z")),
        Just(json!("2026-02-30 25:61:61")),
        Just(json!("9999-12-31 23:59:59")),
        Just(json!("0000-00-00 00:00:00")),
        Just(json!("2026-03-18T10:20:37+99:99")),
        Just(json!("1734593340")),
        Just(json!("99999999999999")),
        Just(json!(-1734593340)),
        Just(json!("ON")),
        Just(json!("off")),
        Just(json!("粤 B3604")),
        "[ -~]{0,24}".prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
        // Digits, separators and zone marks in any order: near-timestamps.
        "[0-9 :TZ+.-]{0,26}".prop_map(Value::from),
    ]
}

/// Nested garbage with the fields of our rows as keys.
fn nasty_value() -> impl Strategy<Value = Value> {
    nasty_scalar().prop_recursive(3, 40, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            row_of(inner),
        ]
    })
}

/// An object with some of [`FIELDS`] set to values from `values`.
fn row_of(values: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
    prop::collection::vec((prop::sample::select(FIELDS), values), 0..10).prop_map(|kv| {
        Value::Object(
            kv.into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect::<Map<_, _>>(),
        )
    })
}

/// A list of row objects (what every list method returns on success).
fn rows() -> impl Strategy<Value = Value> {
    prop::collection::vec(row_of(nasty_value()), 0..6).prop_map(Value::Array)
}

fn code() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        Just(Some(json!(0))),
        Just(Some(json!("0"))),
        Just(Some(json!(1004))),
        Just(Some(json!("1001"))),
        Just(Some(json!(-1))),
        Just(Some(json!("xxx"))),
        nasty_value().prop_map(Some),
    ]
}

/// An envelope, mostly well-formed on the outside, garbage on the inside.
fn envelope() -> impl Strategy<Value = Value> {
    (
        code(),
        prop::option::of(nasty_value()),
        prop_oneof![rows(), nasty_value(), row_of(nasty_value())],
        prop_oneof![
            Just(Value::Null),
            rows(),
            nasty_value(),
            row_of(nasty_value())
        ],
        any::<bool>(),
    )
        .prop_map(|(code, message, result, data, swap)| {
            let mut m = Map::new();
            if let Some(c) = code {
                m.insert("code".into(), c);
            }
            if let Some(msg) = message {
                m.insert(if swap { "msg" } else { "message" }.into(), msg);
            }
            let (r, d) = if swap { (data, result) } else { (result, data) };
            m.insert("result".into(), r);
            m.insert("data".into(), d);
            Value::Object(m)
        })
}

/// What the client does with a payload it expects to be a list: `null` is
/// empty, a list is decoded, anything else is an error (a typed one).
fn decode_list<T: DeserializeOwned>(v: &Value) -> Result<Vec<T>, serde_json::Error> {
    match v {
        Value::Null => Ok(Vec::new()),
        _ => Vec::<T>::deserialize(v),
    }
}

fn all_objects(v: &Value) -> bool {
    matches!(v, Value::Array(items) if items.iter().all(Value::is_object))
}

/// Every typed row decoder on `payload`; a list of objects must decode.
fn decode_every_type(payload: &Value) -> Result<(), TestCaseError> {
    let objects = all_objects(payload);
    macro_rules! each {
        ($($t:ty),*) => { $(
            let r = decode_list::<$t>(payload);
            prop_assert!(!objects || r.is_ok(), "{} refused a list of objects: {:?}", stringify!($t), r.err());
        )* };
    }
    each!(Location, Device, Alarm, TrackPoint, Trip, MileageTotal);
    if payload.is_object() {
        // Objects: the parking page and the token grant.
        let page = ParkingPage::deserialize(payload);
        let rows_ok = payload
            .get("rows")
            .is_none_or(|r| r.is_null() || all_objects(r));
        prop_assert!(!rows_ok || page.is_ok(), "parking page: {:?}", page.err());
        prop_assert!(TokenGrant::deserialize(payload).is_ok());
    }
    Ok(())
}

fn check_envelope_bytes(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(env) = serde_json::from_slice::<Envelope>(bytes) {
        let _ = env.is_success();
        let _ = env.code_or_empty().to_string();
        decode_every_type(env.result_or_data())?;
        decode_every_type(env.data_or_result())?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..256)) {
        check_envelope_bytes(&body)?;
    }

}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn mutated_envelopes_decode_or_fail_typed(env in envelope()) {
        let text = env.to_string();
        // An object body is always an envelope: every part is optional.
        let decoded = serde_json::from_str::<Envelope>(&text);
        prop_assert!(decoded.is_ok(), "{text}: {:?}", decoded.err());
        check_envelope_bytes(text.as_bytes())?;
        // Truncated bodies (a cut connection) fail as JSON errors, not panics.
        for cut in [text.len() / 3, text.len() / 2, text.len().saturating_sub(1)] {
            check_envelope_bytes(&text.as_bytes()[..cut])?;
        }
    }

    #[test]
    fn lenient_numbers_read_strings_and_numbers_alike(lat in -90.0f64..90.0, n in any::<i32>()) {
        let as_numbers: Location = serde_json::from_value(json!({"imei": 1, "lat": lat, "gpsNum": n}))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let as_strings: Location =
            serde_json::from_value(json!({"imei": "1", "lat": lat.to_string(), "gpsNum": n.to_string()}))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(as_numbers.lat, Some(lat));
        prop_assert_eq!(as_strings.lat, Some(lat));
        prop_assert_eq!(as_numbers.gps_num, Some(i64::from(n)));
        prop_assert_eq!(as_strings.gps_num, Some(i64::from(n)));
        prop_assert_eq!(as_numbers.imei, as_strings.imei);
    }

    #[test]
    fn wire_times_parse_or_are_absent(s in "\\PC{0,40}", near in "[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}(:[0-9]{2})?(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})?", n in any::<i64>()) {
        let _ = parse_utc(&s);
        let _ = parse_utc(&near);
        if let Some(t) = from_epoch(n) {
            prop_assert!(n > 0);
            prop_assert!(t > Timestamp::UNIX_EPOCH);
        }
    }

    #[test]
    fn wire_times_round_trip(secs in 0i64..253_402_300_799) {
        let t = Timestamp::from_second(secs).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(parse_utc(&format_wire(t)), Some(t));
    }
}

/// Found by this fuzzer: a row that carries both documented spellings of a
/// field (`runTimeSecond` and `elapsed`, `alarmTypeName` and `alertTypeName`,
/// `gpsSpeed` and `speed`) used to fail serde's duplicate-field check, and
/// with it the whole list of that call. It decodes, and the spelling the
/// reference documents wins (`tracksolid/types.rs`).
#[test]
fn a_row_with_both_spellings_of_a_field_keeps_its_list() {
    let trips = decode_list::<Trip>(&json!([{"imei": "1", "runTimeSecond": 12, "elapsed": 99}]));
    assert!(trips.is_ok(), "{trips:?}");
    assert_eq!(trips.ok().map(|t| t[0].run_time_second), Some(Some(12)));
    let alarms = decode_list::<Alarm>(
        &json!([{"imei": "1", "alarmTypeName": "SOS", "alertTypeName": "Other"}]),
    );
    assert!(alarms.is_ok(), "{alarms:?}");
    assert_eq!(
        alarms
            .ok()
            .and_then(|a| a[0].alarm_type_name.clone())
            .as_deref(),
        Some("SOS")
    );
    let points = decode_list::<TrackPoint>(&json!([{"lat": 1.0, "gpsSpeed": 3, "speed": 7}]));
    assert!(points.is_ok(), "{points:?}");
    assert_eq!(points.ok().map(|p| p[0].gps_speed), Some(Some(3.0)));
}

// ---- through the real client -----------------------------------------------

/// A loopback HTTP server that answers every request with the current
/// (status, body).
struct Stub {
    endpoint: String,
    answer: Arc<Mutex<(u16, Vec<u8>)>>,
}

async fn stub() -> std::io::Result<Stub> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}/route/rest", listener.local_addr()?);
    let answer = Arc::new(Mutex::new((200u16, b"{}".to_vec())));
    let shared = answer.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let shared = shared.clone();
            tokio::spawn(async move {
                // Read the head, then as many body bytes as it announces.
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let body_start = loop {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..body_start]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while buf.len() < body_start + len {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let (status, body) = shared.lock().map(|a| a.clone()).unwrap_or_default();
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&body).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    Ok(Stub { endpoint, answer })
}

const TARGET: &str = "fuzz";

async fn fuzz_client(endpoint: &str) -> TracksolidClient<Arc<MemoryTokenStore>> {
    let mut cfg = ClientConfig::new(
        TARGET,
        endpoint,
        Credentials {
            app_key: "k".into(),
            app_secret: "s".into(),
            user_id: "u".into(),
            password: UserPassword::Plain("p".into()),
        },
    );
    // One attempt: a fuzzed "busy" or 5xx must not sleep through back-offs.
    cfg.retry = RetryPolicy::immediate(1);
    cfg.request_timeout = Duration::from_secs(10);
    let store = Arc::new(MemoryTokenStore::new());
    let now = Timestamp::now();
    let token = CachedToken {
        access_token: "cached".into(),
        refresh_token: None,
        obtained_at: now,
        expires_at: now + jiff::SignedDuration::from_hours(2),
    };
    if let Err(e) = store.put(TARGET, &token).await {
        panic!("memory store: {e}");
    }
    match TracksolidClient::new(cfg, store) {
        Ok(c) => c,
        Err(e) => panic!("client builds: {e}"),
    }
}

/// Every error carries a class, and a Display without panicking.
fn typed(r: Result<(), TracksolidError>) -> Result<Option<ErrorClass>, TestCaseError> {
    match r {
        Ok(()) => Ok(None),
        Err(e) => {
            prop_assert!(!e.to_string().is_empty());
            Ok(Some(e.class()))
        }
    }
}

fn answer() -> impl Strategy<Value = (u16, Vec<u8>)> {
    prop_oneof![
        8 => envelope().prop_map(|e| (200, e.to_string().into_bytes())),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| (200, b)),
        1 => (prop::sample::select(vec![200u16, 204, 301, 400, 401, 404, 429, 500, 503]), envelope())
            .prop_map(|(s, e)| (s, e.to_string().into_bytes())),
    ]
}

#[test]
fn the_client_survives_fuzzed_answers() {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("runtime: {e}"),
    };
    let stub = rt.block_on(async {
        match stub().await {
            Ok(s) => s,
            Err(e) => panic!("stub server: {e}"),
        }
    });
    let imeis = ["860000000000001", "860000000000002"];
    let end = Timestamp::now() - jiff::SignedDuration::from_hours(1);
    let begin = end - jiff::SignedDuration::from_hours(6);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    });
    let result = runner.run(&answer(), |(status, body)| {
        if let Ok(mut a) = stub.answer.lock() {
            *a = (status, body.clone());
        }
        let classes = rt.block_on(async {
            // A fresh client with a valid cached token: a fuzzed 1004 makes
            // the client drop its token, which must not leak into the next case.
            let client = fuzz_client(&stub.endpoint).await;
            let mut classes = Vec::new();
            classes.push(typed(client.location_list().await.map(drop))?);
            classes.push(typed(client.device_list().await.map(drop))?);
            classes.push(typed(
                client.track_window(imeis[0], begin, end).await.map(drop),
            )?);
            classes.push(typed(
                client
                    .alarm_page(&imeis, begin, end, 1, 100)
                    .await
                    .map(drop),
            )?);
            classes.push(typed(
                client
                    .parking_page(&imeis, begin, end, AccType::Parking, 0, 100)
                    .await
                    .map(drop),
            )?);
            classes.push(typed(
                client
                    .mileage_page(&imeis, begin, end, 0, 100)
                    .await
                    .map(drop),
            )?);
            Ok::<_, TestCaseError>(classes)
        })?;
        // A body that is not JSON at all, with a 200, is a decode error.
        if status == 200 && serde_json::from_slice::<Value>(&body).is_err() {
            prop_assert!(
                classes.iter().all(|c| *c == Some(ErrorClass::Permanent)),
                "{classes:?}"
            );
        }
        // A successful list envelope whose payload is a list decodes, whatever
        // its elements: those that are not rows are skipped, not fatal.
        if status == 200
            && let Ok(env) = serde_json::from_slice::<Envelope>(&body)
            && env.is_success()
            && env.result_or_data().is_array()
        {
            prop_assert_eq!(
                classes[0],
                None,
                "location_list refused {}",
                String::from_utf8_lossy(&body)
            );
            prop_assert_eq!(
                classes[1],
                None,
                "device_list refused {}",
                String::from_utf8_lossy(&body)
            );
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// One element of the wrong type in a list (today's `null`, a number, a
/// nested list) is skipped and counted; the rest of the list is kept.
#[test]
fn a_bad_row_is_skipped_and_the_rest_of_its_list_kept() {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("runtime: {e}"),
    };
    rt.block_on(async {
        let stub = match stub().await {
            Ok(s) => s,
            Err(e) => panic!("stub server: {e}"),
        };
        let body = json!({"code": 0, "result": [
            {"imei": "860000000000001", "lat": 22.5, "lng": 113.9},
            5,
            null,
            [{"imei": "860000000000009"}],
            {"imei": "860000000000002", "lat": "22.6", "lng": "113.8"},
        ]});
        if let Ok(mut a) = stub.answer.lock() {
            *a = (200, body.to_string().into_bytes());
        }
        let client = fuzz_client(&stub.endpoint).await;
        let got = match client.location_list().await {
            Ok(l) => l,
            Err(e) => panic!("location_list: {e}"),
        };
        let imeis: Vec<&str> = got.iter().map(|l| l.imei.as_str()).collect();
        assert_eq!(imeis, ["860000000000001", "860000000000002"]);
        assert_eq!(client.stats().skipped_rows, 3);
        // Not a list at all is still an error, and a typed one.
        if let Ok(mut a) = stub.answer.lock() {
            *a = (200, br#"{"code":0,"result":"rows"}"#.to_vec());
        }
        match client.location_list().await {
            Err(TracksolidError::Decode { detail, .. }) => {
                assert_eq!(detail, "expected a list, got a string");
            }
            other => panic!("{other:?}"),
        }
    });
}
