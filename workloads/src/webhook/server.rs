//! The axum push receiver: every push path, `/healthz`, `/readyz`,
//! `/health/ingest`, `/metrics`. Body size, request time and concurrency are
//! bounded; a batch is acknowledged only after it is committed.

use super::metrics::WebhookMetrics;
use super::store::{Batch, BatchItem, PushStore};
use crate::push::event::{classify, event_time};
use crate::push::{Event, Guard, PushRequest, TokenCheck, parse_request};
use axum::Router;
use axum::body::Bytes;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceBuilder;

/// Header for senders that cannot put the token in the body.
pub const TOKEN_HEADER: &str = "x-push-token";

#[derive(Clone, Debug)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub max_concurrent: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(10),
            max_concurrent: 256,
        }
    }
}

pub struct AppState {
    pub token: TokenCheck,
    pub guard: Guard,
    pub store: Arc<dyn PushStore>,
    pub metrics: WebhookMetrics,
    pub registry: Registry,
}

fn answer(status: StatusCode, code: i64, msg: &str) -> Response {
    (status, axum::Json(json!({"code": code, "msg": msg}))).into_response()
}

/// The token the sender presented: body `token`, then `?token=`, then the
/// `X-Push-Token` header.
fn presented_token<'a>(
    req: &'a PushRequest,
    uri: &'a Uri,
    headers: &'a HeaderMap,
) -> Option<String> {
    req.token.clone().or_else(|| {
        uri.query()
            .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
            .and_then(|pairs| {
                pairs
                    .into_iter()
                    .find(|(k, _)| k == "token")
                    .map(|(_, v)| v)
            })
            .or_else(|| {
                headers
                    .get(TOKEN_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            })
    })
}

/// Type, guard and count every item of a request.
pub fn build_batch(req: PushRequest, guard: &Guard, now: jiff::Timestamp) -> Batch {
    let items = req
        .items
        .into_iter()
        .map(|raw| {
            let imei = crate::push::lenient::imei(&raw);
            let (event, mut rejected) = match classify(&req.kind, &raw) {
                Ok(event) => (Some(event), None),
                Err(untyped) => (None, Some(untyped.0)),
            };
            if let Some(ev) = &event {
                if let Some(Err(r)) = event_time(ev, &raw).map(|at| guard.check_time(at, now)) {
                    rejected = Some(r.label());
                }
                if let Event::Gps(g) = ev
                    && let Err(r) = guard.check_fix(g.lat, g.lng)
                {
                    rejected = rejected.or(Some(r.label()));
                }
            }
            BatchItem {
                raw,
                imei,
                event,
                rejected,
            }
        })
        .collect();
    Batch {
        kind: req.kind,
        received_at: now,
        items,
    }
}

async fn push(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        return answer(StatusCode::METHOD_NOT_ALLOWED, 1, "use POST");
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let req = match parse_request(uri.path(), content_type, &body) {
        Ok(req) => req,
        Err(crate::push::RequestError::UnknownPath(_)) => {
            state.metrics.request("unknown", "not_found");
            return answer(StatusCode::NOT_FOUND, 1, "unknown push path");
        }
        Err(e) => {
            state.metrics.request("unknown", "bad_request");
            tracing::warn!(path = %uri.path(), bytes = body.len(), reason = %e, "malformed push");
            return answer(StatusCode::BAD_REQUEST, 1, &e.to_string());
        }
    };
    let kind = req.kind.name().to_owned();
    if !state
        .token
        .accepts(presented_token(&req, &uri, &headers).as_deref())
    {
        state.metrics.request(&kind, "bad_token");
        // Never log the token presented.
        tracing::warn!(path = %uri.path(), %kind, "push with a missing or wrong token");
        return answer(StatusCode::UNAUTHORIZED, 1, "invalid token");
    }
    let batch = build_batch(req, &state.guard, jiff::Timestamp::now());
    for item in &batch.items {
        if let Some(reason) = item.rejected {
            state.metrics.rejected(reason);
        }
    }
    let started = Instant::now();
    let result = state.store.store(&batch).await;
    state
        .metrics
        .db_seconds
        .observe(started.elapsed().as_secs_f64());
    match result {
        Ok(stored) => {
            state.metrics.request(&kind, "ok");
            state.metrics.stored("push_events", stored.raw);
            state.metrics.stored("positions", stored.positions);
            state.metrics.stored("alarms", stored.alarms);
            state.metrics.stored("heartbeats", stored.heartbeats);
            answer(StatusCode::OK, 0, "success")
        }
        Err(e) => {
            state.metrics.request(&kind, "store_failed");
            tracing::error!(%kind, items = batch.items.len(), error = %e, "push not stored; answering 503 so the sender retries");
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                1,
                "storage unavailable, retry later",
            )
        }
    }
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ok").into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

async fn ingest_health(State(state): State<Arc<AppState>>) -> Response {
    match state.store.ingest_health().await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &state.registry) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn timed_out(err: tower::BoxError) -> Response {
    if err.is::<tower::timeout::error::Elapsed>() {
        answer(StatusCode::SERVICE_UNAVAILABLE, 1, "timed out, retry later")
    } else {
        answer(StatusCode::INTERNAL_SERVER_ERROR, 1, "internal error")
    }
}

pub fn router(state: Arc<AppState>, limits: &Limits) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/health/ingest", get(ingest_health))
        .route("/metrics", get(metrics))
        .fallback(push)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(timed_out))
                .timeout(limits.request_timeout)
                .concurrency_limit(limits.max_concurrent),
        )
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::memory::MemoryStore;
    use axum::body::Body;
    use axum::http::Request;
    use jiff::SignedDuration;
    use std::sync::atomic::Ordering;
    use tower::ServiceExt;

    const GPS: &str = r#"[{"deviceImei":"868120246598152","gpsTime":"2026-06-13 02:24:37","gateTime":"2026-06-13 02:24:38","satelliteNum":7,"lng":113.942885,"lat":22.576539,"gpsMode":0,"gpsSpeed":0,"direction":155,"acc":1,"postType":1,"altitude":0,"distance":698,"status":262147}]"#;

    fn app(store: Arc<MemoryStore>, token: TokenCheck) -> Router {
        let mut registry = Registry::default();
        let metrics = WebhookMetrics::register(&mut registry);
        let state = Arc::new(AppState {
            token,
            guard: Guard {
                not_before: "2026-01-01T00:00:00Z".parse().unwrap(),
                max_future: SignedDuration::from_hours(48),
            },
            store,
            metrics,
            registry,
        });
        router(state, &Limits::default())
    }

    fn form(path: &str, pairs: &[(&str, &str)]) -> Request<Body> {
        Request::post(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(serde_urlencoded::to_string(pairs).unwrap()))
            .unwrap()
    }

    async fn send(app: &Router, req: Request<Body>) -> (StatusCode, serde_json::Value) {
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    #[tokio::test]
    async fn stores_once_and_answers_code_zero() {
        let store = Arc::new(MemoryStore::default());
        let app = app(store.clone(), TokenCheck::Required("tok".into()));
        let (status, body) = send(
            &app,
            form("/pushgps", &[("token", "tok"), ("data_list", GPS)]),
        )
        .await;
        assert_eq!((status, body["code"].as_i64()), (StatusCode::OK, Some(0)));
        // The same push again (a retry): acknowledged, nothing new stored.
        let (status, _) = send(
            &app,
            form("/pushGPS", &[("token", "tok"), ("data_list", GPS)]),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let rows = store.rows();
        assert_eq!((rows.positions.len(), rows.raw.len()), (1, 1));
    }

    #[tokio::test]
    async fn wrong_or_missing_token_is_refused_and_token_elsewhere_works() {
        let store = Arc::new(MemoryStore::default());
        let app = app(store.clone(), TokenCheck::Required("tok".into()));
        let (status, body) = send(
            &app,
            form("/pushgps", &[("token", "nope"), ("data_list", GPS)]),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_i64()),
            (StatusCode::UNAUTHORIZED, Some(1))
        );
        let (status, _) = send(&app, form("/pushgps", &[("data_list", GPS)])).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(store.rows().raw.is_empty());
        let (status, _) = send(&app, form("/pushgps?token=tok", &[("data_list", GPS)])).await;
        assert_eq!(status, StatusCode::OK);
        let mut req = form("/pushgps", &[("data_list", GPS)]);
        req.headers_mut()
            .insert(TOKEN_HEADER, "tok".parse().unwrap());
        assert_eq!(send(&app, req).await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn database_down_is_503_and_nothing_is_acknowledged() {
        let store = Arc::new(MemoryStore::default());
        let app = app(store.clone(), TokenCheck::Disabled);
        store.down.store(true, Ordering::SeqCst);
        let (status, body) = send(&app, form("/pushgps", &[("data_list", GPS)])).await;
        assert_eq!(
            (status, body["code"].as_i64()),
            (StatusCode::SERVICE_UNAVAILABLE, Some(1))
        );
        let ready = app
            .clone()
            .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
        store.down.store(false, Ordering::SeqCst);
        assert_eq!(
            send(&app, form("/pushgps", &[("data_list", GPS)])).await.0,
            StatusCode::OK
        );
        assert_eq!(store.rows().positions.len(), 1);
    }

    #[tokio::test]
    async fn malformed_bodies_are_400_with_the_reason() {
        let app = app(Arc::new(MemoryStore::default()), TokenCheck::Disabled);
        let (status, body) = send(&app, form("/pushgps", &[("data_list", "[{")])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body["msg"].as_str().unwrap().contains("data_list"));
        let (status, _) = send(&app, form("/wp-login.php", &[("x", "y")])).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let big = "x".repeat(2 * 1024 * 1024);
        let resp = app
            .clone()
            .oneshot(Request::post("/pushgps").body(Body::from(big)).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn clock_garbage_and_zero_fixes_are_kept_raw_but_not_as_data() {
        let store = Arc::new(MemoryStore::default());
        let app = app(store.clone(), TokenCheck::Disabled);
        let items = r#"[{"deviceImei":"1","gpsTime":"2019-03-01 00:00:00","lat":1.5,"lng":2.5},
                        {"deviceImei":"2","gpsTime":"2099-01-01 00:00:00","lat":1.5,"lng":2.5},
                        {"deviceImei":"3","gpsTime":"2026-06-01 00:00:00","lat":0,"lng":0},
                        {"deviceImei":"4","gpsTime":"2026-06-01 00:00:00","lat":1.5,"lng":2.5}]"#;
        assert_eq!(
            send(&app, form("/pushgps", &[("data_list", items)]))
                .await
                .0,
            StatusCode::OK
        );
        let rows = store.rows();
        assert_eq!(rows.raw.len(), 4, "every raw item is kept");
        assert_eq!(rows.positions.len(), 1, "only the good fix is data");
        let metrics = app
            .clone()
            .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let text = String::from_utf8(
            axum::body::to_bytes(metrics.into_body(), 1 << 20)
                .await
                .unwrap()
                .to_vec(),
        )
        .unwrap();
        for reason in ["time_before_window", "time_in_future", "zero_fix"] {
            assert!(
                text.contains(&format!(
                    "fleet_webhook_events_rejected_total{{reason=\"{reason}\"}} 1"
                )),
                "{reason}\n{text}"
            );
        }
    }

    #[tokio::test]
    async fn unknown_types_are_stored_raw_and_acknowledged() {
        let store = Arc::new(MemoryStore::default());
        let app = app(store.clone(), TokenCheck::Disabled);
        let (status, _) = send(&app, form("/pushIothubEvent", &[("data_list", r#"[{"deviceImei":"1","gateTime":1767225600,"eventType":"UploadAlarmFileList"}]"#)])).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = send(
            &app,
            form(
                "/push",
                &[
                    ("msgType", "jimi.open.instruction.raw.receive"),
                    ("data", r#"{"imei":"1","content":"x"}"#),
                ],
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(store.rows().raw.len(), 2);
    }
}
