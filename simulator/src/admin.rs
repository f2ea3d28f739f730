//! The control endpoints under `/_sim/` (loopback only, like the API):
//!
//! | route | does |
//! |---|---|
//! | `GET /_sim/health` | `ok` |
//! | `GET /_sim/faults` | the current fault knobs |
//! | `POST /_sim/faults` | a JSON [`FaultsPatch`]: changes only the named knobs (`{"reset":true}` clears all first; `{"invalidate_tokens":true}` forgets every token) |
//! | `POST /_sim/tokens/invalidate` | forgets every issued token (clients get 1004 next) |
//! | `GET /_sim/stats`, `POST /_sim/stats/reset` | request counters per method and outcome |
//! | `GET /_sim/accounts` | accounts (no secrets) with their IMEIs and which are faulty |

use crate::faults::{DeviceQuirk, FaultsPatch};
use crate::state::SimState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

pub fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/_sim/health", get(|| async { "ok" }))
        .route("/_sim/faults", get(get_faults).post(patch_faults))
        .route("/_sim/tokens/invalidate", post(invalidate))
        .route("/_sim/stats", get(stats))
        .route("/_sim/stats/reset", post(reset_stats))
        .route("/_sim/accounts", get(accounts))
}

async fn get_faults(State(st): State<Arc<SimState>>) -> Response {
    Json(st.faults()).into_response()
}

async fn patch_faults(State(st): State<Arc<SimState>>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<FaultsPatch>(&body) {
        Ok(patch) => Json(st.patch_faults(&patch)).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, format!("bad fault patch: {e}")).into_response(),
    }
}

async fn invalidate(State(st): State<Arc<SimState>>) -> Response {
    Json(json!({"invalidated": st.invalidate_tokens()})).into_response()
}

async fn stats(State(st): State<Arc<SimState>>) -> Response {
    Json(st.stats()).into_response()
}

async fn reset_stats(State(st): State<Arc<SimState>>) -> Response {
    st.reset_stats();
    StatusCode::NO_CONTENT.into_response()
}

async fn accounts(State(st): State<Arc<SimState>>) -> Response {
    let list: Vec<_> = st
        .accounts()
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let devices = st
                .account_fleet(i)
                .map(|f| f.devices.as_slice())
                .unwrap_or(&[]);
            let with = |q: DeviceQuirk| -> Vec<&str> {
                devices
                    .iter()
                    .filter(|d| st.quirk(d.index) == q)
                    .map(|d| d.imei.as_str())
                    .collect()
            };
            json!({
                "app_key": a.app_key,
                "user_id": a.user_id,
                "down": st.is_down(i),
                "imeis": devices.iter().map(|d| d.imei.as_str()).collect::<Vec<_>>(),
                "zero_fix": with(DeviceQuirk::ZeroFix),
                "clock_2019": with(DeviceQuirk::Clock2019),
                "future_clock": with(DeviceQuirk::FutureClock),
                "hidden": devices.iter().filter(|d| st.is_hidden(&d.imei)).map(|d| d.imei.as_str()).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(list).into_response()
}
