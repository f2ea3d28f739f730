//! The client: signed calls with retries, the token life cycle, and the
//! typed methods with their batching, window splitting and paging.

use super::envelope::{ApiCode, Envelope, TextEnvelope, raw_kind};
use super::error::{ErrorClass, RejectKind, TracksolidError, TransientCause};
use super::methods;
use super::options::ClientConfig;
use super::params::Params;
use super::request::{Caller, signed_form};
use super::rows::Rows;
use super::token::{CachedToken, MemoryTokenStore, TokenStore, expiry_from};
use super::types::{
    AccType, Alarm, Device, Location, MileagePage, MileageTotal, ParkingPage, ParkingRow,
    TokenGrant, Track, TrackData, TrackPoint, Trip,
};
use super::window::{batches, midpoint, split_window, window_len};
use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tracing::{Instrument, debug, info_span, warn};

type Result<T> = std::result::Result<T, TracksolidError>;

/// Skipped rows logged one by one per list (the count covers them all).
const MAX_LOGGED_SKIPS: usize = 5;

/// Counters of what the client did, for tests and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// HTTP requests sent (every attempt counts).
    pub requests: u64,
    /// Successful `jimi.oauth.token.get` calls.
    pub logins: u64,
    /// Tokens refused by the server (each led to one re-login).
    pub token_rejections: u64,
    /// Attempts that were retried after a back-off.
    pub retries: u64,
    /// Answers that said "rate limited".
    pub rate_limited: u64,
    /// Elements of answered lists that did not decode and were skipped (the
    /// rest of their list was kept; each is logged with its reason).
    pub skipped_rows: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    logins: AtomicU64,
    token_rejections: AtomicU64,
    retries: AtomicU64,
    rate_limited: AtomicU64,
    skipped_rows: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Why one attempt failed.
enum Failure {
    Token { code: ApiCode, message: String },
    RateLimited { code: ApiCode, message: String },
    Transient(TransientCause),
    Permanent(TracksolidError),
}

impl Failure {
    fn class(&self) -> ErrorClass {
        match self {
            Failure::Token { .. } => ErrorClass::Token,
            Failure::RateLimited { .. } => ErrorClass::RateLimited,
            Failure::Transient(_) => ErrorClass::Transient,
            Failure::Permanent(e) => e.class(),
        }
    }

    fn into_error(self, method: &str, attempts: u32) -> TracksolidError {
        let method = method.to_owned();
        match self {
            Failure::Token { code, message } => TracksolidError::TokenRejected {
                method,
                code,
                message,
            },
            Failure::RateLimited { code, message } => TracksolidError::RateLimited {
                method,
                code,
                message,
                attempts,
            },
            Failure::Transient(cause) => TracksolidError::Transient {
                method,
                cause,
                attempts,
            },
            Failure::Permanent(e) => e,
        }
    }
}

/// What the alarm scan returns.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlarmScan {
    /// Every alarm found, without duplicates (by IMEI, type and time).
    pub alarms: Vec<Alarm>,
    /// Windows (with their IMEI batch) that still hit the 1000-row cap at
    /// the smallest split: their alarms may be incomplete.
    pub truncated: Vec<(Timestamp, Timestamp)>,
}

/// A Tracksolid Open API client for one account (one target).
///
/// Cheap to share behind an `Arc`; concurrent calls share one token, and
/// only one login runs at a time.
pub struct TracksolidClient<S: TokenStore = MemoryTokenStore> {
    cfg: ClientConfig,
    url: reqwest::Url,
    http: reqwest::Client,
    store: S,
    token: tokio::sync::Mutex<Option<CachedToken>>,
    counters: Counters,
}

impl<S: TokenStore> TracksolidClient<S> {
    pub fn new(cfg: ClientConfig, store: S) -> Result<Self> {
        let (url, http) = super::http::build(&cfg)?;
        Ok(TracksolidClient {
            cfg,
            url,
            http,
            store,
            token: tokio::sync::Mutex::new(None),
            counters: Counters::default(),
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.cfg
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn stats(&self) -> ClientStats {
        let c = &self.counters;
        ClientStats {
            requests: c.requests.load(Ordering::Relaxed),
            logins: c.logins.load(Ordering::Relaxed),
            token_rejections: c.token_rejections.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            rate_limited: c.rate_limited.load(Ordering::Relaxed),
            skipped_rows: c.skipped_rows.load(Ordering::Relaxed),
        }
    }

    fn caller(&self) -> Caller<'_> {
        Caller {
            app_key: &self.cfg.credentials.app_key,
            app_secret: &self.cfg.credentials.app_secret,
            version: &self.cfg.protocol.api_version,
        }
    }

    // ---- one attempt -------------------------------------------------------

    async fn send_once(
        &self,
        method: &str,
        form: &[(String, String)],
    ) -> std::result::Result<TextEnvelope, Failure> {
        bump(&self.counters.requests);
        let started = Instant::now();
        let response = self
            .http
            .post(self.url.clone())
            .form(form)
            .send()
            .await
            .map_err(|e| Failure::Transient(transport_cause(&e)))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| Failure::Transient(transport_cause(&e)))?;
        debug!(
            status,
            bytes = body.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "response"
        );
        match status {
            200..=299 => {}
            401 => {
                return Err(Failure::Token {
                    code: ApiCode::Text("HTTP 401".into()),
                    message: "HTTP 401 Unauthorized".into(),
                });
            }
            429 => {
                return Err(Failure::RateLimited {
                    code: ApiCode::Text("HTTP 429".into()),
                    message: "HTTP 429 Too Many Requests".into(),
                });
            }
            408 | 500..=599 => return Err(Failure::Transient(TransientCause::HttpStatus(status))),
            _ => {
                return Err(Failure::Permanent(TracksolidError::HttpStatus {
                    method: method.to_owned(),
                    status,
                }));
            }
        }
        // The payloads are kept as text; the body goes when this returns.
        let envelope = TextEnvelope::from_slice(&body).map_err(|e| {
            Failure::Permanent(TracksolidError::Decode {
                method: method.to_owned(),
                detail: format!("not a JSON envelope ({e}), {} bytes", body.len()),
            })
        })?;
        if envelope.is_success() {
            return Ok(envelope);
        }
        Err(self.classify(method, &envelope))
    }

    fn classify(&self, method: &str, env: &TextEnvelope) -> Failure {
        let p = &self.cfg.protocol;
        let code = env.code_or_empty();
        let message = env.message.clone();
        let num = code.as_i64();
        let is_token_method = method == methods::TOKEN_GET || method == methods::TOKEN_REFRESH;
        let has = |list: &[i64]| num.is_some_and(|n| list.contains(&n));
        if !is_token_method {
            let lower = message.to_lowercase();
            let marked = p
                .token_error_markers
                .iter()
                .any(|m| !m.is_empty() && lower.contains(&m.to_lowercase()));
            if has(&p.token_error_codes) || marked {
                return Failure::Token { code, message };
            }
        }
        if has(&p.rate_limit_codes) {
            return Failure::RateLimited { code, message };
        }
        if has(&p.transient_codes) {
            return Failure::Transient(TransientCause::Busy { code, message });
        }
        let kind = RejectKind::classify(method, &code, &message);
        Failure::Permanent(TracksolidError::Rejected {
            method: method.to_owned(),
            code,
            kind,
            message,
        })
    }

    /// Sends `method` until it succeeds, fails for good, or the retry policy
    /// gives up. Each attempt is signed afresh (new timestamp).
    async fn send_with_retry(
        &self,
        method: &str,
        params: &Params,
        access_token: Option<&str>,
    ) -> std::result::Result<TextEnvelope, (Failure, u32)> {
        let policy = &self.cfg.retry;
        let mut attempt: u32 = 1;
        loop {
            let form = signed_form(
                self.caller(),
                method,
                params,
                access_token,
                Timestamp::now(),
            );
            let failure = match self.send_once(method, &form).await {
                Ok(env) => return Ok(env),
                Err(f) => f,
            };
            let class = failure.class();
            if class == ErrorClass::RateLimited {
                bump(&self.counters.rate_limited);
            }
            if !policy.may_retry(attempt, class) {
                return Err((failure, attempt));
            }
            let delay = policy.backoff(attempt, class);
            warn!(
                attempt,
                ?class,
                delay_ms = delay.as_millis() as u64,
                "retrying after back-off"
            );
            bump(&self.counters.retries);
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    // ---- tokens ------------------------------------------------------------

    /// Logs in (`jimi.oauth.token.get`) and returns the new token, without
    /// storing it.
    pub async fn request_token(&self) -> Result<CachedToken> {
        let span = info_span!("tracksolid", target = %self.cfg.target, method = methods::TOKEN_GET);
        async {
            let c = &self.cfg.credentials;
            let expires_in = self.cfg.token.expires_in_secs.clamp(60, 7200);
            let params = Params::new()
                .set("user_id", c.user_id.as_str())
                .set("user_pwd_md5", c.password.md5_lower_hex())
                .set_num("expires_in", i64::from(expires_in));
            let sent_at = Timestamp::now();
            let env = self
                .send_with_retry(methods::TOKEN_GET, &params, None)
                .await
                .map_err(|(f, n)| f.into_error(methods::TOKEN_GET, n))?;
            let grant: TokenGrant = decode(methods::TOKEN_GET, env.result_or_data())?;
            let token =
                self.token_from_grant(methods::TOKEN_GET, grant, sent_at, i64::from(expires_in))?;
            bump(&self.counters.logins);
            Ok(token)
        }
        .instrument(span)
        .await
    }

    /// `jimi.oauth.token.refresh` with the current token: stores and returns
    /// the new one. (The client itself logs in again instead, as the
    /// integrations do; this is here for callers that prefer refreshing.)
    pub async fn refresh_token(&self) -> Result<CachedToken> {
        let mut guard = self.token.lock().await;
        let current = match guard.clone() {
            Some(t) => Some(t),
            None => self.store.get(&self.cfg.target).await?,
        };
        let Some(current) = current else {
            return Err(TracksolidError::InvalidRequest(
                "no token to refresh".into(),
            ));
        };
        let Some(refresh) = current.refresh_token.clone() else {
            return Err(TracksolidError::InvalidRequest(
                "the token has no refresh token".into(),
            ));
        };
        let expires_in = self.cfg.token.expires_in_secs.clamp(60, 7200);
        let params = Params::new()
            .set("refresh_token", refresh)
            .set_num("expires_in", i64::from(expires_in));
        let sent_at = Timestamp::now();
        let span =
            info_span!("tracksolid", target = %self.cfg.target, method = methods::TOKEN_REFRESH);
        let env = self
            .send_with_retry(methods::TOKEN_REFRESH, &params, Some(&current.access_token))
            .instrument(span)
            .await
            .map_err(|(f, n)| f.into_error(methods::TOKEN_REFRESH, n))?;
        let grant: TokenGrant = decode(methods::TOKEN_REFRESH, env.result_or_data())?;
        let token = self.token_from_grant(
            methods::TOKEN_REFRESH,
            grant,
            sent_at,
            i64::from(expires_in),
        )?;
        self.save_token(&token).await;
        *guard = Some(token.clone());
        Ok(token)
    }

    fn token_from_grant(
        &self,
        method: &str,
        grant: TokenGrant,
        sent_at: Timestamp,
        requested: i64,
    ) -> Result<CachedToken> {
        if grant.access_token.is_empty() {
            return Err(TracksolidError::Decode {
                method: method.to_owned(),
                detail: "no accessToken in the answer".into(),
            });
        }
        let lifetime = grant.expires_in.filter(|s| *s > 0).unwrap_or(requested);
        Ok(CachedToken {
            access_token: grant.access_token,
            refresh_token: grant.refresh_token,
            obtained_at: sent_at,
            expires_at: expiry_from(sent_at, lifetime, self.cfg.token.margin),
        })
    }

    async fn save_token(&self, token: &CachedToken) {
        // The token works whether or not the store kept it; the next run
        // just logs in again.
        if let Err(e) = self.store.put(&self.cfg.target, token).await {
            warn!(target = %self.cfg.target, error = %e, "could not store the access token");
        }
    }

    /// A token that is valid now: from memory, else from the store, else a
    /// new login (stored).
    pub async fn access_token(&self) -> Result<String> {
        let mut guard = self.token.lock().await;
        let now = Timestamp::now();
        if let Some(t) = guard.as_ref().filter(|t| t.is_valid_at(now)) {
            return Ok(t.access_token.clone());
        }
        if let Some(t) = self
            .store
            .get(&self.cfg.target)
            .await?
            .filter(|t| t.is_valid_at(now))
        {
            let access = t.access_token.clone();
            *guard = Some(t);
            return Ok(access);
        }
        let t = self.request_token().await?;
        self.save_token(&t).await;
        let access = t.access_token.clone();
        *guard = Some(t);
        Ok(access)
    }

    /// After the server refused `rejected`: forget it and log in again,
    /// unless a concurrent call already did.
    async fn replace_rejected_token(&self, rejected: &str) -> Result<String> {
        let mut guard = self.token.lock().await;
        let now = Timestamp::now();
        if let Some(t) = guard
            .as_ref()
            .filter(|t| t.is_valid_at(now) && t.access_token != rejected)
        {
            return Ok(t.access_token.clone());
        }
        *guard = None;
        self.store.invalidate(&self.cfg.target, rejected).await?;
        let t = self.request_token().await?;
        self.save_token(&t).await;
        let access = t.access_token.clone();
        *guard = Some(t);
        Ok(access)
    }

    // ---- authenticated calls -----------------------------------------------

    /// Calls `method` with a valid token, retrying per the policy; on a token
    /// error, logs in again once and repeats the call.
    pub async fn call(&self, method: &str, params: &Params) -> Result<Envelope> {
        self.call_text(method, params)
            .await?
            .into_envelope()
            .map_err(|e| TracksolidError::Decode {
                method: method.to_owned(),
                detail: e.to_string(),
            })
    }

    /// [`Self::call`], with the payloads kept as text for the typed methods.
    async fn call_text(&self, method: &str, params: &Params) -> Result<TextEnvelope> {
        let span = info_span!("tracksolid", target = %self.cfg.target, method = %method);
        async {
            let token = self.access_token().await?;
            match self.send_with_retry(method, params, Some(&token)).await {
                Ok(env) => Ok(env),
                Err((Failure::Token { code, .. }, _)) => {
                    bump(&self.counters.token_rejections);
                    warn!(%code, "access token refused; logging in again");
                    let token = self.replace_rejected_token(&token).await?;
                    self.send_with_retry(method, params, Some(&token))
                        .await
                        .map_err(|(f, n)| f.into_error(method, n))
                }
                Err((f, n)) => Err(f.into_error(method, n)),
            }
        }
        .instrument(span)
        .await
    }

    /// A list payload, decoded row by row from its text; `null` (or none)
    /// is an empty list. A row that does not decode is skipped, counted in
    /// [`ClientStats::skipped_rows`] and logged with its reason; the others
    /// are kept. A payload that is not a list is an error.
    fn decode_list<T: DeserializeOwned>(
        &self,
        method: &str,
        raw: Option<&RawValue>,
    ) -> Result<Vec<T>> {
        let Some(raw) = raw else {
            return Ok(Vec::new());
        };
        let kind = raw_kind(raw);
        if kind != "a list" && kind != "null" {
            return Err(TracksolidError::Decode {
                method: method.to_owned(),
                detail: format!("expected a list, got {kind}"),
            });
        }
        let rows: Rows<T> =
            serde_json::from_str(raw.get()).map_err(|e| TracksolidError::Decode {
                method: method.to_owned(),
                detail: e.to_string(),
            })?;
        if !rows.skipped.is_empty() {
            let n = rows.skipped.len();
            self.counters
                .skipped_rows
                .fetch_add(n as u64, Ordering::Relaxed);
            for e in rows.skipped.iter().take(MAX_LOGGED_SKIPS) {
                warn!(%method, reason = %e, "skipped a row that does not decode");
            }
            warn!(
                %method,
                skipped = n,
                kept = rows.rows.len(),
                "rows that do not decode were skipped; the rest of the list is kept"
            );
        }
        Ok(rows.rows)
    }

    fn map_type(&self) -> Option<&str> {
        self.cfg.protocol.map_type.as_deref()
    }

    // ---- devices and positions ---------------------------------------------

    /// `jimi.user.device.list`: every device of the account (no paging).
    pub async fn device_list(&self) -> Result<Vec<Device>> {
        let m = methods::USER_DEVICE_LIST;
        let env = self
            .call_text(m, &Params::new().set("target", self.cfg.account()))
            .await?;
        self.decode_list(m, env.result_or_data())
    }

    /// `jimi.user.device.location.list`: the latest position of every device
    /// of the account, in one call.
    pub async fn location_list(&self) -> Result<Vec<Location>> {
        let m = methods::USER_DEVICE_LOCATION_LIST;
        let params = Params::new()
            .set("target", self.cfg.account())
            .set_opt("map_type", self.map_type());
        let env = self.call_text(m, &params).await?;
        self.decode_list(m, env.result_or_data())
    }

    /// `jimi.device.location.get` for any number of IMEIs, in batches of at
    /// most `max_imeis_per_call`.
    pub async fn locations<I: AsRef<str>>(&self, imeis: &[I]) -> Result<Vec<Location>> {
        let m = methods::DEVICE_LOCATION_GET;
        let mut out = Vec::new();
        for batch in batches(imeis, self.cfg.protocol.max_imeis_per_call) {
            let params = Params::new()
                .set("imeis", batch.join(","))
                .set_opt("map_type", self.map_type());
            let env = self.call_text(m, &params).await?;
            out.extend(self.decode_list::<Location>(m, env.result_or_data())?);
        }
        Ok(out)
    }

    // ---- track -------------------------------------------------------------

    /// One `jimi.device.track.list` call. The window must not be longer than
    /// `track_max_window` (checked before sending).
    pub async fn track_window(
        &self,
        imei: &str,
        begin: Timestamp,
        end: Timestamp,
    ) -> Result<Track> {
        let m = methods::DEVICE_TRACK_LIST;
        if end < begin || window_len(begin, end) > self.cfg.protocol.track_max_window {
            return Err(TracksolidError::InvalidRequest(format!(
                "{m}: window {begin}..{end} is reversed or longer than {:?}",
                self.cfg.protocol.track_max_window
            )));
        }
        let params = Params::new()
            .set("imei", imei)
            .set_time("begin_time", begin)
            .set_time("end_time", end)
            .set_opt("map_type", self.map_type());
        let env = self.call_text(m, &params).await?;
        let points: Vec<TrackPoint> = self.decode_list(m, env.result.as_deref())?;
        let data: TrackData = match env.data.as_deref() {
            Some(d) if raw_kind(d) == "an object" => decode(m, Some(d))?,
            _ => TrackData::default(),
        };
        Ok(Track {
            points,
            mileage: data.mileage,
        })
    }

    /// The track of one device over any window: `end` is clamped to now
    /// (the API wants it in the past) and the window is split into
    /// `track_max_window` pieces. Points are returned in the server's order,
    /// window after window; a point on a shared window boundary that comes
    /// back twice is kept once. Other duplicates are the server's and kept.
    pub async fn track(&self, imei: &str, begin: Timestamp, end: Timestamp) -> Result<Track> {
        let end = end.min(Timestamp::now());
        if end < begin {
            return Ok(Track::default());
        }
        let mut out = Track::default();
        let windows = split_window(begin, end, self.cfg.protocol.track_max_window)?;
        for (i, (b, e)) in windows.into_iter().enumerate() {
            let part = self.track_window(imei, b, e).await?;
            let skip_at = (i > 0).then_some(b);
            out.points.extend(
                part.points
                    .into_iter()
                    .filter(|p| skip_at.is_none() || p.gps_time != skip_at),
            );
            if let Some(m) = part.mileage {
                out.mileage = Some(out.mileage.unwrap_or(0.0) + m);
            }
        }
        Ok(out)
    }

    // ---- alarms ------------------------------------------------------------

    /// One page of `jimi.device.alarm.list` for at most
    /// `max_imeis_per_call` IMEIs (`page_no` ≥ 1, `page_size` 1–100).
    pub async fn alarm_page<I: AsRef<str>>(
        &self,
        imeis: &[I],
        begin: Timestamp,
        end: Timestamp,
        page_no: u32,
        page_size: u32,
    ) -> Result<Vec<Alarm>> {
        let m = methods::DEVICE_ALARM_LIST;
        let imeis: Vec<&str> = imeis.iter().map(AsRef::as_ref).collect();
        if imeis.is_empty() || imeis.len() > self.cfg.protocol.max_imeis_per_call {
            return Err(TracksolidError::InvalidRequest(format!(
                "{m}: {} IMEIs (1 to {} per call)",
                imeis.len(),
                self.cfg.protocol.max_imeis_per_call
            )));
        }
        let params = Params::new()
            .set("imeis", imeis.join(","))
            .set_time("begin_time", begin)
            .set_time("end_time", end)
            .set_num("page_no", i64::from(page_no.max(1)))
            .set_num("page_size", i64::from(page_size.max(1)));
        let env = self.call_text(m, &params).await?;
        self.decode_list(m, env.result_or_data())
    }

    /// Every page of one window for one batch, up to the row cap. Stops at a
    /// short page, at the cap, or when a page repeats the previous one (a
    /// server that ignores paging: BILLIE's observation).
    async fn alarm_window(
        &self,
        batch: &[String],
        begin: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<Alarm>> {
        let p = &self.cfg.protocol;
        let size = p.alarm_page_size.clamp(1, 100);
        let cap = p.alarm_max_rows.max(1);
        let max_pages = u32::try_from(cap.div_ceil(size as usize)).unwrap_or(u32::MAX);
        let mut rows: Vec<Alarm> = Vec::new();
        let mut previous_first: Option<Alarm> = None;
        for page_no in 1..=max_pages {
            let page = self.alarm_page(batch, begin, end, page_no, size).await?;
            let n = page.len();
            if n > 0 && previous_first.as_ref() == page.first() {
                warn!(
                    page_no,
                    "alarm.list returned the same page again; paging ignored by the server"
                );
                break;
            }
            previous_first = page.first().cloned();
            rows.extend(page);
            if n < size as usize || rows.len() >= cap {
                break;
            }
        }
        Ok(rows)
    }

    /// All alarms of `imeis` in `[begin, end]`: IMEIs in batches, the window
    /// in `alarm_max_window` pieces, every page; a piece that hits the
    /// 1000-row cap is halved and queried again (down to `alarm_min_split`).
    pub async fn alarms<I: AsRef<str>>(
        &self,
        imeis: &[I],
        begin: Timestamp,
        end: Timestamp,
    ) -> Result<AlarmScan> {
        let p = &self.cfg.protocol;
        let mut scan = AlarmScan::default();
        let mut seen = HashSet::new();
        for batch in batches(imeis, p.max_imeis_per_call) {
            let mut todo = split_window(begin, end, p.alarm_max_window)?;
            todo.reverse();
            while let Some((b, e)) = todo.pop() {
                let rows = self.alarm_window(&batch, b, e).await?;
                if rows.len() >= p.alarm_max_rows.max(1) {
                    if window_len(b, e) > p.alarm_min_split {
                        let mid = midpoint(b, e);
                        todo.push((mid, e));
                        todo.push((b, mid));
                        continue;
                    }
                    scan.truncated.push((b, e));
                }
                for a in rows {
                    if seen.insert((a.imei.clone(), a.alert_type_id.clone(), a.alert_time)) {
                        scan.alarms.push(a);
                    }
                }
            }
        }
        Ok(scan)
    }

    // ---- parking -----------------------------------------------------------

    /// One page of `jimi.open.platform.report.parking` (answer in `data`).
    #[allow(clippy::too_many_arguments)]
    pub async fn parking_page<I: AsRef<str>>(
        &self,
        imeis: &[I],
        begin: Timestamp,
        end: Timestamp,
        acc: AccType,
        start_row: u32,
        page_size: u32,
    ) -> Result<ParkingPage> {
        let m = methods::REPORT_PARKING;
        let imeis: Vec<&str> = imeis.iter().map(AsRef::as_ref).collect();
        let params = Params::new()
            .set("account", self.cfg.account())
            .set("imeis", imeis.join(","))
            .set_time("start_time", begin)
            .set_time("end_time", end)
            .set_num("start_row", i64::from(start_row))
            .set_num("page_size", i64::from(page_size.max(1)))
            .set("acc_type", acc.as_param());
        let env = self.call_text(m, &params).await?;
        match env.data_or_result() {
            None => Ok(ParkingPage::default()),
            v => decode(m, v),
        }
    }

    /// Every parking (`Parking`) or idling (`Idling`) row of `imeis` that
    /// starts in `[begin, end]`, over batches, windows and pages.
    pub async fn parking<I: AsRef<str>>(
        &self,
        imeis: &[I],
        begin: Timestamp,
        end: Timestamp,
        acc: AccType,
    ) -> Result<Vec<ParkingRow>> {
        let p = &self.cfg.protocol;
        let size = p.parking_page_size.max(1);
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for batch in batches(imeis, p.max_imeis_per_call) {
            for (b, e) in split_window(begin, end, p.parking_max_window)? {
                let mut start_row = p.parking_first_row;
                let mut got: i64 = 0;
                loop {
                    let page = self
                        .parking_page(&batch, b, e, acc, start_row, size)
                        .await?;
                    let n = page.rows.len();
                    got += n as i64;
                    for r in page.rows {
                        if seen.insert((r.imei.clone(), r.start_time, r.acc.clone())) {
                            out.push(r);
                        }
                    }
                    let all_in = page.data_total_rows.is_some_and(|t| got >= t);
                    if n < size as usize || all_in {
                        break;
                    }
                    start_row = start_row.saturating_add(size);
                }
            }
        }
        Ok(out)
    }

    // ---- trips -------------------------------------------------------------

    /// One page of `jimi.device.track.mileage`: trips in `result`, totals in
    /// `data`.
    pub async fn mileage_page<I: AsRef<str>>(
        &self,
        imeis: &[I],
        begin: Timestamp,
        end: Timestamp,
        start_row: u32,
        page_size: u32,
    ) -> Result<MileagePage> {
        let m = methods::DEVICE_TRACK_MILEAGE;
        let imeis: Vec<&str> = imeis.iter().map(AsRef::as_ref).collect();
        let params = Params::new()
            .set("imeis", imeis.join(","))
            .set_time("begin_time", begin)
            .set_time("end_time", end)
            .set_num("start_row", i64::from(start_row))
            .set_num("page_size", i64::from(page_size.max(1)));
        let env = self.call_text(m, &params).await?;
        Ok(MileagePage {
            trips: self.decode_list(m, env.result.as_deref())?,
            totals: self.decode_list(m, env.data.as_deref())?,
        })
    }

    /// Every trip of `imeis` that starts in `[begin, end]` (distances in
    /// metres), over batches, windows and pages; `totals` holds one entry per
    /// device, summed over the windows.
    pub async fn trips<I: AsRef<str>>(
        &self,
        imeis: &[I],
        begin: Timestamp,
        end: Timestamp,
    ) -> Result<MileagePage> {
        let p = &self.cfg.protocol;
        let size = p.mileage_page_size.max(1);
        let mut trips: Vec<Trip> = Vec::new();
        let mut seen = HashSet::new();
        let mut totals: BTreeMap<String, f64> = BTreeMap::new();
        for batch in batches(imeis, p.max_imeis_per_call) {
            for (b, e) in split_window(begin, end, p.mileage_max_window)? {
                let mut start_row = p.mileage_first_row;
                let mut first_page = true;
                loop {
                    let page = self.mileage_page(&batch, b, e, start_row, size).await?;
                    if first_page {
                        // Totals cover the whole query, not the page.
                        for t in &page.totals {
                            *totals.entry(t.imei.clone()).or_default() +=
                                t.total_mileage_m.unwrap_or(0.0);
                        }
                        first_page = false;
                    }
                    let n = page.trips.len();
                    for t in page.trips {
                        if seen.insert((t.imei.clone(), t.start_time)) {
                            trips.push(t);
                        }
                    }
                    if n < size as usize {
                        break;
                    }
                    start_row = start_row.saturating_add(size);
                }
            }
        }
        Ok(MileagePage {
            trips,
            totals: totals
                .into_iter()
                .map(|(imei, m)| MileageTotal {
                    imei,
                    total_mileage_m: Some(m),
                })
                .collect(),
        })
    }
}

fn transport_cause(e: &reqwest::Error) -> TransientCause {
    if e.is_timeout() {
        TransientCause::Timeout
    } else {
        TransientCause::Connect(error_chain(e))
    }
}

/// An error and its sources, one line. (Request bodies, which hold the
/// secrets, never appear in reqwest's errors.)
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A single-object payload (token grant, parking page, track data), decoded
/// from its `Value` (small); a missing payload decodes as `null`.
fn decode<T: DeserializeOwned>(method: &str, raw: Option<&RawValue>) -> Result<T> {
    let err = |e: serde_json::Error| TracksolidError::Decode {
        method: method.to_owned(),
        detail: e.to_string(),
    };
    let v: Value = match raw {
        Some(r) => serde_json::from_str(r.get()).map_err(err)?,
        None => Value::Null,
    };
    T::deserialize(v).map_err(err)
}
