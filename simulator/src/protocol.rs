//! The Open API endpoint (`POST /route/rest`): form-encoded parameters,
//! common-parameter and signature checks, tokens, and the methods the
//! pipeline uses, answering in the reference's envelopes and field shapes.
//!
//! Order of checks for a request: counted faults (5xx burst, account down
//! → 503, busy → -1, rate limit → 1006), HTTP method (→ 1007), required
//! common parameters, app key, `v`/`sign_method`/`format`, signature,
//! timestamp (±10 min), access token (→ 1004), then the method's own
//! parameters and limits.

use crate::faults::DeviceQuirk;
use crate::fleet::{DeviceSpec, TrackOptions};
use crate::geo::{LatLng, haversine_m, round6};
use crate::sign::expected_sign;
use crate::state::SimState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub const TOKEN_GET: &str = "jimi.oauth.token.get";
pub const TOKEN_REFRESH: &str = "jimi.oauth.token.refresh";
pub const USER_DEVICE_LIST: &str = "jimi.user.device.list";
pub const USER_DEVICE_LOCATION_LIST: &str = "jimi.user.device.location.list";
pub const DEVICE_LOCATION_GET: &str = "jimi.device.location.get";
pub const DEVICE_TRACK_LIST: &str = "jimi.device.track.list";
pub const DEVICE_TRACK_MILEAGE: &str = "jimi.device.track.mileage";
pub const DEVICE_ALARM_LIST: &str = "jimi.device.alarm.list";
pub const REPORT_PARKING: &str = "jimi.open.platform.report.parking";

/// A refusal: `{"code": code, "message": message}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: i64,
    pub message: String,
}

type ApiResult = Result<Value, ApiError>;

/// `yyyy-MM-dd HH:mm:ss`, UTC.
pub fn fmt_time(t: i64) -> String {
    Timestamp::from_second(t)
        .map(|ts| ts.strftime("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// ISO-8601 with milliseconds and `Z` (parking rows).
pub fn fmt_iso(t: i64) -> String {
    Timestamp::from_second(t)
        .map(|ts| ts.strftime("%Y-%m-%dT%H:%M:%S.000Z").to_string())
        .unwrap_or_default()
}

/// Parses a wire time strictly (`yyyy-MM-dd HH:mm:ss`, UTC).
pub fn parse_wire_time(s: &str) -> Option<i64> {
    let civil = DateTime::strptime("%Y-%m-%d %H:%M:%S", s.trim()).ok()?;
    civil
        .to_zoned(TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp().as_second())
}

fn now_ms() -> i64 {
    Timestamp::now().as_millisecond()
}

/// The axum handler for the API endpoint.
pub async fn rest(State(st): State<Arc<SimState>>, http_method: Method, body: Bytes) -> Response {
    let params: BTreeMap<String, String> =
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
            .map(|v| v.into_iter().collect())
            .unwrap_or_default();
    let api_method = params.get("method").cloned().unwrap_or_else(|| "?".into());
    st.count_request(&api_method);
    let account = params.get("app_key").and_then(|k| st.account_by_app_key(k));
    let now_ms = now_ms();
    let rf = st.take_request_faults(account, now_ms);
    if rf.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(rf.latency_ms)).await;
    }
    if let Some(status) = rf.fail_status {
        st.count_outcome(format!("http{status}"));
        tracing::info!(method = %api_method, status, "injected HTTP failure");
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (
            status,
            status.canonical_reason().unwrap_or("error").to_owned(),
        )
            .into_response();
    }
    let codes = &st.config.codes;
    let outcome = if http_method != Method::POST {
        Err(ApiError {
            code: codes.wrong_request_method,
            message: "Request method error, use POST".into(),
        })
    } else if rf.busy {
        Err(ApiError {
            code: codes.busy,
            message: "System busy".into(),
        })
    } else if rf.rate_limited {
        Err(ApiError {
            code: codes.too_frequent,
            message: "Illegal access, too frequently request!".into(),
        })
    } else {
        handle(&st, &params, now_ms.div_euclid(1000))
    };
    let (code, mut body) = match outcome {
        Ok(mut v) => {
            if let Value::Object(m) = &mut v {
                m.insert("code".into(), json!(0));
                m.insert("message".into(), json!("success"));
            }
            (0, v)
        }
        Err(e) => (e.code, json!({"code": e.code, "message": e.message})),
    };
    if rf.codes_as_strings {
        body["code"] = json!(code.to_string());
    }
    st.count_outcome(code.to_string());
    tracing::info!(method = %api_method, code, "answered");
    (
        [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
        body.to_string(),
    )
        .into_response()
}

struct Ctx<'a> {
    st: &'a SimState,
    account: usize,
    p: &'a BTreeMap<String, String>,
    now: i64,
}

impl Ctx<'_> {
    fn param_err(&self, message: impl Into<String>) -> ApiError {
        ApiError {
            code: self.st.config.codes.parameter,
            message: message.into(),
        }
    }

    fn illegal(&self, message: impl Into<String>) -> ApiError {
        ApiError {
            code: self.st.config.codes.illegal_user_or_device,
            message: message.into(),
        }
    }

    fn opt(&self, name: &str) -> Option<&str> {
        self.p.get(name).map(|s| s.trim()).filter(|s| !s.is_empty())
    }

    fn req(&self, name: &str) -> Result<&str, ApiError> {
        self.opt(name)
            .ok_or_else(|| self.param_err(format!("Missing required parameter: {name}")))
    }

    fn time(&self, name: &str) -> Result<i64, ApiError> {
        let raw = self.req(name)?;
        parse_wire_time(raw).ok_or_else(|| {
            self.param_err(format!("Illegal time format: {name} (yyyy-MM-dd HH:mm:ss)"))
        })
    }

    fn int(&self, name: &str, default: i64) -> Result<i64, ApiError> {
        match self.opt(name) {
            None => Ok(default),
            Some(s) => s
                .parse()
                .map_err(|_| self.param_err(format!("Illegal number: {name}"))),
        }
    }

    fn imei_list(&self, raw: &str) -> Result<Vec<String>, ApiError> {
        let list: Vec<String> = raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let max = self.st.config.limits.max_imeis;
        if list.len() > max {
            return Err(self.param_err(format!("The number of IMEIs exceeds the limit of {max}")));
        }
        Ok(list)
    }

    fn user_id(&self) -> &str {
        self.st
            .accounts()
            .get(self.account)
            .map(|a| a.user_id.as_str())
            .unwrap_or("")
    }

    fn check_target(&self, name: &str) -> Result<(), ApiError> {
        let target = self.req(name)?;
        if target != self.user_id() {
            return Err(self.illegal(format!("Illegal user{{{target}}}")));
        }
        Ok(())
    }

    /// The known devices among `imeis` (unknown ones are skipped, as they
    /// belong to nobody we know).
    fn devices(&self, imeis: &[String]) -> Vec<&DeviceSpec> {
        let Some(f) = self.st.account_fleet(self.account) else {
            return Vec::new();
        };
        imeis
            .iter()
            .filter(|i| !self.st.is_hidden(i))
            .filter_map(|i| f.device(i))
            .collect()
    }

    /// The account's devices, without those that have left it.
    fn listed(&self) -> Vec<&DeviceSpec> {
        let Some(f) = self.st.account_fleet(self.account) else {
            return Vec::new();
        };
        let hidden = self.st.faults().hidden_devices;
        f.devices
            .iter()
            .filter(|d| !hidden.contains(&d.imei))
            .collect()
    }

    fn window(&self, b: i64, e: i64, max: i64) -> Result<(), ApiError> {
        if e < b {
            return Err(self.param_err("The begin time must be earlier than the end time"));
        }
        if e - b > max {
            return Err(self.param_err(format!(
                "The time range cannot exceed {} days",
                max / 86_400
            )));
        }
        Ok(())
    }

    fn device_time(&self, dev: &DeviceSpec, t: i64) -> i64 {
        let m = self.st.fleet.motion();
        match self.st.quirk(dev.index) {
            DeviceQuirk::Clock2019 => t - m.past_clock_offset_secs,
            DeviceQuirk::FutureClock => t + m.future_clock_offset_secs,
            _ => t,
        }
    }

    fn pos(&self, dev: &DeviceSpec, p: LatLng) -> (f64, f64) {
        if self.st.quirk(dev.index) == DeviceQuirk::ZeroFix {
            (0.0, 0.0)
        } else {
            (round6(p.lat), round6(p.lng))
        }
    }
}

fn handle(st: &SimState, p: &BTreeMap<String, String>, now: i64) -> ApiResult {
    let codes = &st.config.codes;
    let param = |m: String| ApiError {
        code: codes.parameter,
        message: m,
    };
    for name in [
        "method",
        "timestamp",
        "app_key",
        "sign_method",
        "v",
        "format",
    ] {
        if p.get(name).is_none_or(|v| v.trim().is_empty()) {
            return Err(param(format!("Missing required parameter: {name}")));
        }
    }
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    let Some(account) = st.account_by_app_key(get("app_key")) else {
        return Err(ApiError {
            code: codes.unknown_app_key,
            message: "AppKey does not exist or is not enabled on this node".into(),
        });
    };
    match get("v") {
        "1.0" => {
            let secret = st
                .accounts()
                .get(account)
                .map(|a| a.app_secret.as_str())
                .unwrap_or("");
            if get("sign").is_empty() || expected_sign(secret, p) != get("sign") {
                return Err(ApiError {
                    code: codes.bad_sign,
                    message: "Illegal access, invalid sign".into(),
                });
            }
        }
        // The doc: v=0.9 "will not perform Sign signature verification".
        "0.9" => {}
        other => return Err(param(format!("Unsupported version v={other}"))),
    }
    if get("sign_method") != "md5" {
        return Err(param("sign_method must be md5".into()));
    }
    if get("format") != "json" {
        return Err(param("format must be json".into()));
    }
    let tol = st.config.limits.timestamp_tolerance_secs;
    match parse_wire_time(get("timestamp")) {
        None => {
            return Err(ApiError {
                code: codes.bad_timestamp,
                message: "Illegal timestamp format (yyyy-MM-dd HH:mm:ss, UTC)".into(),
            });
        }
        Some(t) if (t - now).abs() > tol => {
            return Err(ApiError {
                code: codes.bad_timestamp,
                message: format!(
                    "The timestamp is invalid: more than {} minutes from the server time (UTC)",
                    tol / 60
                ),
            });
        }
        Some(_) => {}
    }
    let ctx = Ctx {
        st,
        account,
        p,
        now,
    };
    let method = get("method");
    if method != TOKEN_GET && method != TOKEN_REFRESH {
        check_token(&ctx)?;
    }
    match method {
        TOKEN_GET => token_get(&ctx),
        TOKEN_REFRESH => token_refresh(&ctx),
        USER_DEVICE_LIST => device_list(&ctx),
        USER_DEVICE_LOCATION_LIST => location_list(&ctx),
        DEVICE_LOCATION_GET => location_get(&ctx),
        DEVICE_TRACK_LIST => track_list(&ctx),
        DEVICE_ALARM_LIST => alarm_list(&ctx),
        REPORT_PARKING => parking(&ctx),
        DEVICE_TRACK_MILEAGE => mileage(&ctx),
        other => Err(param(format!("The method does not exist: {other}"))),
    }
}

fn token_error(ctx: &Ctx<'_>) -> ApiError {
    ApiError {
        code: ctx.st.config.codes.token,
        message: "Illegal access, token exception! (Token failure or nonexistent)".into(),
    }
}

fn check_token(ctx: &Ctx<'_>) -> Result<(), ApiError> {
    let access = ctx.opt("access_token").ok_or_else(|| token_error(ctx))?;
    match ctx.st.token(access) {
        Some(rec) if rec.account == ctx.account && rec.expires_at > ctx.now => Ok(()),
        Some(rec) if rec.account == ctx.account => {
            ctx.st.revoke_token(access);
            Err(token_error(ctx))
        }
        _ => Err(token_error(ctx)),
    }
}

fn expires_in(ctx: &Ctx<'_>) -> Result<i64, ApiError> {
    let e = ctx.int("expires_in", 7200)?;
    if !(60..=7200).contains(&e) {
        return Err(ctx.param_err("expires_in must be between 60 and 7200"));
    }
    Ok(e.min(ctx.st.config.limits.token_ttl_cap_secs.max(1)))
}

fn token_result(ctx: &Ctx<'_>, access: String, refresh: String, ttl: i64) -> Value {
    let app_key = ctx
        .st
        .accounts()
        .get(ctx.account)
        .map(|a| a.app_key.clone())
        .unwrap_or_default();
    json!({"result": {
        "appKey": app_key,
        "account": ctx.user_id(),
        "accessToken": access,
        "expiresIn": ttl,
        "refreshToken": refresh,
        "time": fmt_time(ctx.now),
    }})
}

fn token_get(ctx: &Ctx<'_>) -> ApiResult {
    let user = ctx.req("user_id")?;
    let pwd = ctx.req("user_pwd_md5")?;
    let ttl = expires_in(ctx)?;
    // The hash must be the lower-case one (reference §3.1).
    if user != ctx.user_id() || Some(pwd) != ctx.st.password_md5(ctx.account) {
        return Err(ApiError {
            code: ctx.st.config.codes.bad_credentials,
            message: "Incorrect user name or password".into(),
        });
    }
    let (access, refresh) = ctx.st.issue_token(ctx.account, ctx.now + ttl, true);
    Ok(token_result(ctx, access, refresh, ttl))
}

fn token_refresh(ctx: &Ctx<'_>) -> ApiResult {
    let access = ctx.req("access_token")?;
    let refresh = ctx.req("refresh_token")?;
    let ttl = expires_in(ctx)?;
    let invalid = || ApiError {
        code: ctx.st.config.codes.token,
        message: "Illegal request，token is invalid".into(),
    };
    let rec = ctx.st.token(access).ok_or_else(invalid)?;
    if rec.account != ctx.account || rec.refresh_token != refresh {
        return Err(invalid());
    }
    ctx.st.revoke_token(access);
    let (access, refresh) = ctx.st.issue_token(ctx.account, ctx.now + ttl, false);
    Ok(token_result(ctx, access, refresh, ttl))
}

fn device_list(ctx: &Ctx<'_>) -> ApiResult {
    ctx.check_target("target")?;
    let rows: Vec<Value> = ctx
        .listed()
        .into_iter()
        .map(|d| {
            json!({
                "imei": d.imei, "deviceName": d.name, "mcType": d.model, "mcTypeUseScope": "automobile",
                "sim": d.sim, "expiration": "2037-04-01 23:59:59", "activationTime": fmt_time(d.activation),
                "reMark": null, "vehicleName": null, "vehicleIcon": "car", "vehicleNumber": d.vehicle_number,
                "vehicleModels": null, "carFrame": null, "driverName": d.driver_name, "driverPhone": d.driver_phone,
                "enabledFlag": 1, "engineNumber": null, "deviceGroupId": format!("{:032x}", d.index), "deviceGroup": d.group,
            })
        })
        .collect();
    Ok(json!({"result": rows}))
}

fn location_row(ctx: &Ctx<'_>, d: &DeviceSpec) -> Value {
    let l = ctx.st.fleet.location(d, ctx.now);
    let quirk = ctx.st.quirk(d.index);
    let (lat, lng) = ctx.pos(d, l.pos);
    let expired = quirk == DeviceQuirk::ZeroFix;
    let km = (ctx.now - d.activation).max(0) as f64 / 86_400.0 * 37.5;
    json!({
        "imei": d.imei, "deviceName": d.name, "mcType": d.model, "icon": "car",
        "status": if expired { "0" } else { "1" }, "posType": "GPS",
        "lat": lat, "lng": lng,
        "hbTime": fmt_time(ctx.device_time(d, ctx.now - ctx.now.rem_euclid(30))),
        "accStatus": if l.acc_on { "1" } else { "0" },
        "gpsSignal": "4", "powerValue": null, "batteryPowerVal": "98", "speed": format!("{:.0}", l.speed_kmh),
        "gpsNum": l.satellites.to_string(), "gpsTime": fmt_time(ctx.device_time(d, l.gps_time)),
        "direction": format!("{:.0}", l.direction), "activationFlag": "1",
        "expireFlag": if expired { "0" } else { "1" }, "electQuantity": "", "locDesc": null,
        "distance": "-1", "temperature": null, "trackerOil": "0.00L", "trackerOils": null,
        "currentMileage": format!("{km:.3}"), "account": ctx.user_id(), "customerName": ctx.user_id(),
        "state": null, "stateTime": null, "iccid": d.iccid, "mac": "", "chargeStatus": null,
        "shutdown": null, "confidence": null,
    })
}

fn location_list(ctx: &Ctx<'_>) -> ApiResult {
    ctx.check_target("target")?;
    let rows: Vec<Value> = ctx
        .listed()
        .into_iter()
        .map(|d| location_row(ctx, d))
        .collect();
    Ok(json!({"result": rows, "data": null}))
}

fn location_get(ctx: &Ctx<'_>) -> ApiResult {
    let imeis = ctx.imei_list(ctx.req("imeis")?)?;
    let devs = ctx.devices(&imeis);
    if devs.is_empty() {
        return Err(ctx.illegal("Illegal device"));
    }
    Ok(json!({"result": devs.iter().map(|d| location_row(ctx, d)).collect::<Vec<_>>()}))
}

fn track_options(ctx: &Ctx<'_>) -> TrackOptions {
    let f = ctx.st.faults();
    TrackOptions {
        duplicates: f.duplicate_points,
        late_points: f.late_points,
    }
}

fn track_list(ctx: &Ctx<'_>) -> ApiResult {
    let imei = ctx.req("imei")?;
    let Some(dev) = ctx.devices(&[imei.to_owned()]).first().copied() else {
        return Err(ctx.illegal(format!("IMEI does not exist{{{imei}}}")));
    };
    let (b, e) = (ctx.time("begin_time")?, ctx.time("end_time")?);
    let lim = &ctx.st.config.limits;
    ctx.window(b, e, lim.track_max_window_secs)?;
    if b < ctx.now - lim.track_history_secs {
        return Err(ctx.param_err("Only data within the last 3 months can be queried"));
    }
    if e > ctx.now + lim.timestamp_tolerance_secs {
        return Err(ctx.param_err("The end time must be earlier than the current time"));
    }
    let pts = ctx.st.fleet.track(dev, b, e, ctx.now, track_options(ctx));
    let mileage: f64 = pts
        .windows(2)
        .map(|w| haversine_m(w[0].pos, w[1].pos))
        .sum();
    let rows: Vec<Value> = pts
        .iter()
        .map(|p| {
            let (lat, lng) = ctx.pos(dev, p.pos);
            let acc = if p.acc_on { "ON" } else { "OFF" };
            json!({
                "lat": lat, "lng": lng, "gpsTime": fmt_time(ctx.device_time(dev, p.t)),
                "direction": p.direction, "gpsSpeed": (p.speed_kmh * 10.0).round() / 10.0, "posType": 1,
                "satellite": p.satellites, "ignition": acc, "accStatus": acc,
                "gpsMode": if p.retransmitted { 1 } else { 0 }, "confidence": null,
            })
        })
        .collect();
    Ok(json!({"result": rows, "data": {"mileage": mileage.round() as i64}}))
}

fn alarm_list(ctx: &Ctx<'_>) -> ApiResult {
    let lim = &ctx.st.config.limits;
    let imeis = match (ctx.opt("imeis"), ctx.opt("imei")) {
        (Some(list), _) => ctx.imei_list(list)?,
        (None, Some(one)) => vec![one.to_owned()],
        (None, None) => return Err(ctx.param_err("Missing required parameter: imeis or imei")),
    };
    let (window, cap) = match (ctx.opt("begin_time"), ctx.opt("end_time")) {
        (None, None) => ((ctx.now - 30 * 86_400, ctx.now), lim.alarm_default_latest),
        (Some(_), Some(_)) => (
            (ctx.time("begin_time")?, ctx.time("end_time")?),
            lim.alarm_max_rows,
        ),
        _ => return Err(ctx.param_err("begin_time and end_time go together")),
    };
    ctx.window(window.0, window.1, lim.alarm_max_window_secs)?;
    let page_no = ctx.int("page_no", 1)?;
    let page_size = ctx.int("page_size", 50)?;
    if page_no < 1 || page_size < 1 || page_size > lim.alarm_max_page_size as i64 {
        return Err(ctx.param_err(format!(
            "page_no must be ≥ 1 and page_size 1–{}",
            lim.alarm_max_page_size
        )));
    }
    let filter = ctx.opt("alertTypeId");
    let mut rows: Vec<(&DeviceSpec, crate::fleet::AlarmTruth)> = Vec::new();
    for d in ctx.devices(&imeis) {
        for a in ctx.st.fleet.alarms(d, window.0, window.1, ctx.now) {
            if filter.is_none_or(|f| f == a.type_id) {
                rows.push((d, a));
            }
        }
    }
    // Latest first; stable across pages.
    rows.sort_by(|x, y| {
        y.1.t
            .cmp(&x.1.t)
            .then(x.0.imei.cmp(&y.0.imei))
            .then(x.1.type_id.cmp(y.1.type_id))
    });
    rows.truncate(cap);
    let from = ((page_no - 1) * page_size) as usize;
    let page: Vec<Value> = rows
        .iter()
        .skip(from)
        .take(page_size as usize)
        .map(|(d, a)| {
            let (lat, lng) = ctx.pos(d, a.pos);
            let t = fmt_time(ctx.device_time(d, a.t));
            json!({
                "deviceName": d.name, "imei": d.imei, "model": d.model, "account": ctx.user_id(),
                "alertTypeId": a.type_id, "alarmTypeName": a.name, "alertTime": t, "positioningTime": t,
                "lat": lat, "lng": lng, "speed": format!("{:.0}", a.speed_kmh), "geoid": "",
            })
        })
        .collect();
    Ok(json!({"result": page}))
}

fn report_paging(ctx: &Ctx<'_>, required: bool) -> Result<(usize, usize), ApiError> {
    let lim = &ctx.st.config.limits;
    let first = lim.report_first_row as i64;
    let (start_row, page_size) = if required {
        (
            ctx.req("start_row")?.parse::<i64>().ok(),
            ctx.req("page_size")?.parse::<i64>().ok(),
        )
    } else {
        (
            Some(ctx.int("start_row", first)?),
            Some(ctx.int("page_size", lim.report_max_page_size as i64)?),
        )
    };
    match (start_row, page_size) {
        (Some(s), Some(n)) if s >= first && n >= 1 && n <= lim.report_max_page_size as i64 => {
            Ok(((s - first) as usize, n as usize))
        }
        _ => Err(ctx.param_err(format!(
            "start_row must be ≥ {first} and page_size 1–{}",
            lim.report_max_page_size
        ))),
    }
}

fn parking(ctx: &Ctx<'_>) -> ApiResult {
    ctx.check_target("account")?;
    let imeis = ctx.imei_list(ctx.req("imeis")?)?;
    let (b, e) = (ctx.time("start_time")?, ctx.time("end_time")?);
    ctx.window(b, e, ctx.st.config.limits.report_max_window_secs)?;
    let (offset, size) = report_paging(ctx, true)?;
    let idling = match ctx.req("acc_type")? {
        "on" => true,
        "off" => false,
        _ => return Err(ctx.param_err("acc_type must be on or off")),
    };
    let mut rows = Vec::new();
    for d in ctx.devices(&imeis) {
        for s in ctx.st.fleet.stops(d, b, e, ctx.now) {
            if s.idling == idling {
                rows.push((d, s));
            }
        }
    }
    rows.sort_by(|x, y| x.1.start.cmp(&y.1.start).then(x.0.imei.cmp(&y.0.imei)));
    let total_time: i64 = rows.iter().map(|(_, s)| s.end - s.start).sum();
    let acc = if idling { "on" } else { "off" };
    let page: Vec<Value> = rows
        .iter()
        .skip(offset)
        .take(size)
        .map(|(d, s)| {
            let (lat, lng) = ctx.pos(d, s.pos);
            let dur = (s.end - s.start).to_string();
            json!({
                "imei": d.imei, "startTime": fmt_iso(ctx.device_time(d, s.start)),
                "endTime": fmt_iso(ctx.device_time(d, s.end)), "durSecond": dur, "lng": lng, "lat": lat,
                "addr": format!("Near {lat:.4},{lng:.4}"), "deviceName": d.name, "mcType": d.model,
                "acc": acc, "stopSecond": dur,
            })
        })
        .collect();
    Ok(json!({
        "result": null,
        "data": {"totalTime": total_time.to_string(), "dataTotalRows": rows.len().to_string(), "rows": page},
    }))
}

fn mileage(ctx: &Ctx<'_>) -> ApiResult {
    let imeis = ctx.imei_list(ctx.req("imeis")?)?;
    let (b, e) = (ctx.time("begin_time")?, ctx.time("end_time")?);
    ctx.window(b, e, ctx.st.config.limits.report_max_window_secs)?;
    let (offset, size) = report_paging(ctx, false)?;
    let mut rows = Vec::new();
    let mut totals = Vec::new();
    for d in ctx.devices(&imeis) {
        let trips = ctx.st.fleet.trips(d, b, e, ctx.now);
        let total: f64 = trips.iter().map(|t| t.distance_m).sum();
        totals.push(json!({"imei": d.imei, "totalMileage": total as i64}));
        rows.extend(trips.into_iter().map(|t| (d, t)));
    }
    rows.sort_by(|x, y| x.1.start.cmp(&y.1.start).then(x.0.imei.cmp(&y.0.imei)));
    let page: Vec<Value> = rows
        .iter()
        .skip(offset)
        .take(size)
        .map(|(d, t)| {
            let (slat, slng) = ctx.pos(d, t.from);
            let (elat, elng) = ctx.pos(d, t.to);
            json!({
                "imei": d.imei, "startTime": fmt_time(ctx.device_time(d, t.start)),
                "endTime": fmt_time(ctx.device_time(d, t.end)), "startLat": slat, "startLng": slng,
                "endLat": elat, "endLng": elng, "elapsed": t.end - t.start,
                "distance": t.distance_m as i64, "avgSpeed": t.avg_speed_kmh().round() as i64,
            })
        })
        .collect();
    Ok(json!({"result": page, "data": totals}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_times() {
        assert_eq!(fmt_time(1_705_312_800), "2024-01-15 10:00:00");
        assert_eq!(fmt_iso(1_670_634_333), "2022-12-10T01:05:33.000Z");
        assert_eq!(parse_wire_time("2024-01-15 10:00:00"), Some(1_705_312_800));
        assert_eq!(parse_wire_time("2024-01-15 10:00"), None);
        assert_eq!(parse_wire_time("2024-01-15T10:00:00Z"), None);
        assert_eq!(parse_wire_time("2024-01-15 22:00:00"), Some(1_705_356_000));
    }
}
