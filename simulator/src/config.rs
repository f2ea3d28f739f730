//! Simulator configuration. Several accounts (targets) can live in one
//! process: each has its own app key, secret, user and fleet, and requests
//! are routed to an account by `app_key`.

use crate::faults::Faults;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// One Open API account: an app key on this "node" and the user it logs in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    pub app_key: String,
    pub app_secret: String,
    pub user_id: String,
    /// The plain password (the client sends its lower-case MD5).
    pub password: String,
    /// Devices in this account's fleet; `None` = the global `--devices`.
    #[serde(default)]
    pub devices: Option<usize>,
}

impl AccountConfig {
    /// The `n`-th default account (1-based): `sim-app-key-n`, …
    pub fn numbered(n: usize) -> Self {
        AccountConfig {
            app_key: format!("sim-app-key-{n}"),
            app_secret: format!("sim-app-secret-{n}"),
            user_id: format!("sim-user-{n}"),
            password: format!("sim-password-{n}"),
            devices: None,
        }
    }
}

/// Protocol limits (reference §5, §8.11). Those the reference leaves open
/// are our choice, marked [UNCERTAIN].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// IMEIs per `imeis` list (location.get: 100 [DOC]; the others
    /// [UNCERTAIN], same value).
    pub max_imeis: usize,
    /// track.list window (7 days [DOC]).
    pub track_max_window_secs: i64,
    /// track.list history (about 90 days [DOC/PT-AN]).
    pub track_history_secs: i64,
    /// alarm.list window ("1 month" [DOC]; 31 days here).
    pub alarm_max_window_secs: i64,
    /// alarm.list page_size upper bound (100 [DOC]).
    pub alarm_max_page_size: usize,
    /// alarm.list rows reachable per query (1000 [DOC]).
    pub alarm_max_rows: usize,
    /// alarm.list without a window: the latest N of the last month (50 [DOC]).
    pub alarm_default_latest: usize,
    /// parking and mileage windows [UNCERTAIN: 31 days].
    pub report_max_window_secs: i64,
    /// parking and mileage page_size upper bound [UNCERTAIN: 100].
    pub report_max_page_size: usize,
    /// The `start_row` of the first row [UNCERTAIN: 0].
    pub report_first_row: usize,
    /// Allowed clock difference of `timestamp` (±10 min [DOC]).
    pub timestamp_tolerance_secs: i64,
    /// Longest token lifetime handed out, whatever `expires_in` asks
    /// (7200 [DOC]; lower it to force expiry in tests).
    pub token_ttl_cap_secs: i64,
}

impl Default for Limits {
    fn default() -> Self {
        const DAY: i64 = 86_400;
        Limits {
            max_imeis: 100,
            track_max_window_secs: 7 * DAY,
            track_history_secs: 90 * DAY,
            alarm_max_window_secs: 31 * DAY,
            alarm_max_page_size: 100,
            alarm_max_rows: 1000,
            alarm_default_latest: 50,
            report_max_window_secs: 31 * DAY,
            report_max_page_size: 100,
            report_first_row: 0,
            timestamp_tolerance_secs: 600,
            token_ttl_cap_secs: 7200,
        }
    }
}

/// Error codes answered. The reference documents 1001/1002/1004/1006/-1
/// (§4) but gives no code for a bad signature, bad credentials, an unknown
/// app key or a bad timestamp; those are [UNCERTAIN] and configurable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorCodes {
    pub parameter: i64,
    pub illegal_user_or_device: i64,
    pub token: i64,
    pub too_frequent: i64,
    pub busy: i64,
    pub wrong_request_method: i64,
    pub bad_sign: i64,
    pub bad_credentials: i64,
    pub unknown_app_key: i64,
    pub bad_timestamp: i64,
}

impl Default for ErrorCodes {
    fn default() -> Self {
        ErrorCodes {
            parameter: 1001,
            illegal_user_or_device: 1002,
            token: 1004,
            too_frequent: 1006,
            busy: -1,
            wrong_request_method: 1007,
            bad_sign: 1001,
            bad_credentials: 1002,
            unknown_app_key: 1001,
            bad_timestamp: 1001,
        }
    }
}

/// How the fleet moves and reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Motion {
    /// Where the fleet lives (default: Nairobi); accounts are spread around it.
    pub base_lat: f64,
    pub base_lng: f64,
    /// A track point every this many seconds while driving.
    pub driving_interval_secs: i64,
    /// A track point every this many seconds while stopped.
    pub stopped_interval_secs: i64,
    /// With the late-points fault: buffered points appear this late.
    pub late_delay_secs: i64,
    /// Clock skew of the 2019-clock devices (subtracted) …
    pub past_clock_offset_secs: i64,
    /// … and of the future-clock devices (added).
    pub future_clock_offset_secs: i64,
}

impl Default for Motion {
    fn default() -> Self {
        Motion {
            base_lat: -1.2921,
            base_lng: 36.8219,
            driving_interval_secs: 30,
            stopped_interval_secs: 600,
            late_delay_secs: 1200,
            past_clock_offset_secs: 7 * 365 * 86_400,
            future_clock_offset_secs: 3 * 86_400,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimConfig {
    pub listen: SocketAddr,
    pub seed: u64,
    /// Devices per account unless the account says otherwise.
    pub devices: usize,
    pub accounts: Vec<AccountConfig>,
    pub limits: Limits,
    pub codes: ErrorCodes,
    pub motion: Motion,
    /// Faults active from the start.
    pub faults: Faults,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8089)),
            seed: 1,
            devices: 25,
            accounts: vec![AccountConfig::numbered(1)],
            limits: Limits::default(),
            codes: ErrorCodes::default(),
            motion: Motion::default(),
            faults: Faults::default(),
        }
    }
}

impl SimConfig {
    /// A configuration for in-process tests: an ephemeral loopback port.
    pub fn for_tests(devices: usize, seed: u64) -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed,
            devices,
            ..SimConfig::default()
        }
    }
}
