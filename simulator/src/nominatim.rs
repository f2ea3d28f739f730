//! A fake Nominatim reverse geocoder for tests: `GET /reverse?format=jsonv2
//! &lat=&lon=` answers a deterministic address for the point, after a
//! configurable latency, and records every request (when it arrived, the
//! point, the `User-Agent`) and how many were in flight at once.
//!
//! Points with |lat| > 85 have no address (`{"error":"Unable to geocode"}`,
//! as Nominatim answers over the sea); `fail_next` makes the next requests
//! answer HTTP 503. Knobs change at run time through [`NominatimState`].
//!
//! ```ignore
//! let geo = FakeNominatim::start(FakeNominatimConfig { latency_ms: 200, ..Default::default() }).await?;
//! let url = geo.base_url(); // http://127.0.0.1:PORT
//! assert_eq!(geo.state().requests().len(), 0);
//! ```

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeNominatimConfig {
    pub listen: SocketAddr,
    /// Added to every answer.
    pub latency_ms: u64,
}

impl Default for FakeNominatimConfig {
    fn default() -> Self {
        FakeNominatimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            latency_ms: 0,
        }
    }
}

/// One request as it arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeocodeRequest {
    pub at: Instant,
    pub lat: String,
    pub lon: String,
    pub user_agent: Option<String>,
}

pub struct NominatimState {
    latency_ms: AtomicU64,
    fail_next: AtomicU32,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    requests: Mutex<Vec<GeocodeRequest>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl NominatimState {
    fn new(cfg: &FakeNominatimConfig) -> Self {
        NominatimState {
            latency_ms: AtomicU64::new(cfg.latency_ms),
            fail_next: AtomicU32::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
        }
    }

    pub fn set_latency_ms(&self, ms: u64) {
        self.latency_ms.store(ms, Ordering::SeqCst);
    }

    /// The next `n` requests answer HTTP 503.
    pub fn fail_next(&self, n: u32) {
        self.fail_next.store(n, Ordering::SeqCst);
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<GeocodeRequest> {
        lock(&self.requests).clone()
    }

    pub fn request_count(&self) -> usize {
        lock(&self.requests).len()
    }

    /// Requests being answered right now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// The most requests ever in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    pub fn reset(&self) {
        lock(&self.requests).clear();
        self.max_in_flight.store(0, Ordering::SeqCst);
        self.fail_next.store(0, Ordering::SeqCst);
    }

    fn take_failure(&self) -> bool {
        self.fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// The address the fake gives a point: the same for the same text.
pub fn address_for(lat: &str, lon: &str) -> String {
    format!("Fake Road {lat},{lon}, Nairobi, Kenya")
}

struct InFlight<'a>(&'a NominatimState);

impl<'a> InFlight<'a> {
    fn enter(st: &'a NominatimState) -> Self {
        let now = st.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        st.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(st)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"code": status.as_u16(), "message": message}})),
    )
        .into_response()
}

async fn reverse(
    State(st): State<Arc<NominatimState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params: BTreeMap<String, String> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or_default()).unwrap_or_default();
    let lat = params.get("lat").cloned().unwrap_or_default();
    let lon = params.get("lon").cloned().unwrap_or_default();
    lock(&st.requests).push(GeocodeRequest {
        at: Instant::now(),
        lat: lat.clone(),
        lon: lon.clone(),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    });
    let _guard = InFlight::enter(&st);
    let latency = st.latency_ms.load(Ordering::SeqCst);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    if st.take_failure() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "injected failure");
    }
    if params.get("format").map(String::as_str) != Some("jsonv2") {
        return error(StatusCode::BAD_REQUEST, "format must be jsonv2");
    }
    let (Ok(lat_f), Ok(lon_f)) = (lat.parse::<f64>(), lon.parse::<f64>()) else {
        return error(StatusCode::BAD_REQUEST, "Parameter 'lat' or 'lon' missing.");
    };
    if !(-90.0..=90.0).contains(&lat_f) || !(-180.0..=180.0).contains(&lon_f) {
        return error(StatusCode::BAD_REQUEST, "Invalid coordinates");
    }
    if lat_f.abs() > 85.0 {
        return axum::Json(json!({"error": "Unable to geocode"})).into_response();
    }
    axum::Json(json!({
        "place_id": 1,
        "licence": "fake data for tests",
        "osm_type": "way",
        "lat": lat,
        "lon": lon,
        "category": "highway",
        "type": "residential",
        "display_name": address_for(&lat, &lon),
        "address": {"road": "Fake Road", "city": "Nairobi", "country": "Kenya", "country_code": "ke"},
    }))
    .into_response()
}

pub fn router(state: Arc<NominatimState>) -> Router {
    Router::new()
        .route("/reverse", get(reverse))
        .with_state(state)
}

/// A running fake. Dropping it stops the server.
pub struct FakeNominatim {
    addr: SocketAddr,
    state: Arc<NominatimState>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl FakeNominatim {
    pub async fn start(config: FakeNominatimConfig) -> std::io::Result<FakeNominatim> {
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(NominatimState::new(&config));
        let app = router(state.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
        });
        Ok(FakeNominatim {
            addr,
            state,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL to configure as `geocoding.url`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn state(&self) -> &Arc<NominatimState> {
        &self.state
    }

    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(task) => task.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }
}

impl Drop for FakeNominatim {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_counted_down() {
        let st = NominatimState::new(&FakeNominatimConfig::default());
        st.fail_next(2);
        assert!(st.take_failure());
        assert!(st.take_failure());
        assert!(!st.take_failure());
    }

    #[test]
    fn in_flight_is_tracked() {
        let st = NominatimState::new(&FakeNominatimConfig::default());
        {
            let _a = InFlight::enter(&st);
            let _b = InFlight::enter(&st);
            assert_eq!(st.in_flight(), 2);
        }
        assert_eq!(st.in_flight(), 0);
        assert_eq!(st.max_in_flight(), 2);
    }
}
