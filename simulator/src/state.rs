//! Shared simulator state: accounts and their fleets, issued tokens, fault
//! knobs and counters. Locks are plain mutexes never held across an await.

use crate::config::{AccountConfig, SimConfig};
use crate::faults::{DeviceQuirk, Faults, FaultsPatch};
use crate::fleet::{AccountFleet, Fleet};
use crate::sign::md5_lower;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // State stays consistent even if a holder panicked (no multi-step updates).
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Clone, Debug)]
pub struct TokenRecord {
    pub account: usize,
    pub expires_at: i64,
    pub refresh_token: String,
}

/// Counters, as `GET /_sim/stats` shows them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Requests to the API endpoint (admin calls not counted).
    pub requests: u64,
    /// Per `method` parameter (`"?"` when absent).
    pub by_method: BTreeMap<String, u64>,
    /// Per outcome: the API code (`"0"`, `"1004"`, …) or `"http500"`, `"http503"`.
    pub by_outcome: BTreeMap<String, u64>,
    /// Tokens issued by token.get (refreshes not counted).
    pub logins: u64,
}

impl Stats {
    pub fn method(&self, m: &str) -> u64 {
        self.by_method.get(m).copied().unwrap_or(0)
    }

    pub fn outcome(&self, o: &str) -> u64 {
        self.by_outcome.get(o).copied().unwrap_or(0)
    }
}

pub struct SimState {
    pub config: SimConfig,
    pub fleet: Fleet,
    accounts: Vec<AccountConfig>,
    pwd_md5: Vec<String>,
    tokens: Mutex<HashMap<String, TokenRecord>>,
    faults: Mutex<Faults>,
    stats: Mutex<Stats>,
    rate: Mutex<HashMap<usize, (i64, u32)>>,
    counter: AtomicU64,
}

/// One-shot fault decisions for a request, taken atomically.
#[derive(Clone, Debug, Default)]
pub struct RequestFaults {
    pub latency_ms: u64,
    pub fail_status: Option<u16>,
    pub busy: bool,
    pub rate_limited: bool,
    pub codes_as_strings: bool,
}

impl SimState {
    pub fn new(config: SimConfig) -> SimState {
        let mut accounts = config.accounts.clone();
        if accounts.is_empty() {
            accounts.push(AccountConfig::numbered(1));
        }
        let sizes: Vec<(String, usize)> = accounts
            .iter()
            .map(|a| (a.user_id.clone(), a.devices.unwrap_or(config.devices)))
            .collect();
        let fleet = Fleet::generate(config.seed, &sizes, &config.motion);
        let pwd_md5 = accounts.iter().map(|a| md5_lower(&a.password)).collect();
        let faults = config.faults.clone();
        SimState {
            fleet,
            pwd_md5,
            accounts,
            tokens: Mutex::new(HashMap::new()),
            faults: Mutex::new(faults),
            stats: Mutex::new(Stats::default()),
            rate: Mutex::new(HashMap::new()),
            counter: AtomicU64::new(1),
            config,
        }
    }

    pub fn accounts(&self) -> &[AccountConfig] {
        &self.accounts
    }

    pub fn account_by_app_key(&self, app_key: &str) -> Option<usize> {
        self.accounts.iter().position(|a| a.app_key == app_key)
    }

    pub fn account_fleet(&self, account: usize) -> Option<&AccountFleet> {
        self.fleet.accounts.get(account)
    }

    pub fn password_md5(&self, account: usize) -> Option<&str> {
        self.pwd_md5.get(account).map(String::as_str)
    }

    // ---- faults -------------------------------------------------------------

    pub fn faults(&self) -> Faults {
        lock(&self.faults).clone()
    }

    /// Applies a patch (and invalidates tokens when it says so).
    pub fn patch_faults(&self, patch: &FaultsPatch) -> Faults {
        let (f, invalidate) = {
            let mut f = lock(&self.faults);
            let inv = patch.apply(&mut f);
            (f.clone(), inv)
        };
        if invalidate {
            self.invalidate_tokens();
        }
        f
    }

    /// Whether the device has left its account (`hidden_devices`).
    pub fn is_hidden(&self, imei: &str) -> bool {
        lock(&self.faults).hidden_devices.contains(imei)
    }

    pub fn quirk(&self, device_index: usize) -> DeviceQuirk {
        lock(&self.faults).quirk(device_index)
    }

    /// Whether an account (by index) is down.
    pub fn is_down(&self, account: usize) -> bool {
        let Some(a) = self.accounts.get(account) else {
            return false;
        };
        let f = lock(&self.faults);
        f.down_accounts.contains(&a.app_key) || f.down_accounts.contains(&a.user_id)
    }

    /// Takes this request's share of the counted faults (5xx burst, busy,
    /// rate limits). `account` is `None` when the app key is unknown.
    pub fn take_request_faults(&self, account: Option<usize>, now_ms: i64) -> RequestFaults {
        let mut f = lock(&self.faults);
        if let Some(n) = f.expire_tokens_after {
            if n <= 1 {
                f.expire_tokens_after = None;
                let forgotten = self.invalidate_tokens();
                tracing::info!(forgotten, "injected token expiry");
            } else {
                f.expire_tokens_after = Some(n - 1);
            }
        }
        let mut out = RequestFaults {
            latency_ms: f.latency_ms,
            codes_as_strings: f.codes_as_strings,
            ..RequestFaults::default()
        };
        if f.fail_next > 0 {
            f.fail_next -= 1;
            out.fail_status = Some(f.fail_status());
            return out;
        }
        if account.is_some_and(|a| {
            self.accounts.get(a).is_some_and(|c| {
                f.down_accounts.contains(&c.app_key) || f.down_accounts.contains(&c.user_id)
            })
        }) {
            out.fail_status = Some(503);
            return out;
        }
        if f.busy_next > 0 {
            f.busy_next -= 1;
            out.busy = true;
            return out;
        }
        if f.rate_limit_next > 0 {
            f.rate_limit_next -= 1;
            out.rate_limited = true;
            return out;
        }
        if let (Some(limit), Some(a)) = (f.rate_limit_per_sec, account) {
            let second = now_ms.div_euclid(1000);
            let mut rate = lock(&self.rate);
            let entry = rate.entry(a).or_insert((second, 0));
            if entry.0 != second {
                *entry = (second, 0);
            }
            entry.1 += 1;
            out.rate_limited = entry.1 > limit;
        }
        out
    }

    // ---- tokens -------------------------------------------------------------

    fn new_secret(&self, account: usize, kind: &str) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        md5_lower(&format!("{}:{account}:{kind}:{n}", self.config.seed))
    }

    /// Issues a token; returns (access, refresh).
    pub fn issue_token(&self, account: usize, expires_at: i64, login: bool) -> (String, String) {
        let access = self.new_secret(account, "access");
        let refresh = self.new_secret(account, "refresh");
        lock(&self.tokens).insert(
            access.clone(),
            TokenRecord {
                account,
                expires_at,
                refresh_token: refresh.clone(),
            },
        );
        if login {
            lock(&self.stats).logins += 1;
        }
        (access, refresh)
    }

    pub fn token(&self, access: &str) -> Option<TokenRecord> {
        lock(&self.tokens).get(access).cloned()
    }

    pub fn revoke_token(&self, access: &str) {
        lock(&self.tokens).remove(access);
    }

    /// Forgets every issued token; returns how many there were.
    pub fn invalidate_tokens(&self) -> usize {
        let mut t = lock(&self.tokens);
        let n = t.len();
        t.clear();
        n
    }

    // ---- stats --------------------------------------------------------------

    pub fn stats(&self) -> Stats {
        lock(&self.stats).clone()
    }

    pub fn reset_stats(&self) {
        *lock(&self.stats) = Stats::default();
    }

    pub fn count_request(&self, method: &str) {
        let mut s = lock(&self.stats);
        s.requests += 1;
        *s.by_method.entry(method.to_owned()).or_default() += 1;
    }

    pub fn count_outcome(&self, outcome: String) {
        *lock(&self.stats).by_outcome.entry(outcome).or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_expire_on_the_nth_request() {
        let st = SimState::new(SimConfig::for_tests(3, 1));
        st.patch_faults(&FaultsPatch {
            expire_tokens_after: Some(2),
            hidden_devices: Some(["x".to_owned()].into()),
            ..FaultsPatch::default()
        });
        let (access, _) = st.issue_token(0, i64::MAX, true);
        st.take_request_faults(Some(0), 0);
        assert!(st.token(&access).is_some(), "the first request keeps it");
        st.take_request_faults(Some(0), 0);
        assert!(st.token(&access).is_none(), "the second forgets it");
        let (again, _) = st.issue_token(0, i64::MAX, true);
        st.take_request_faults(Some(0), 0);
        assert!(st.token(&again).is_some(), "only once");
        assert!(st.is_hidden("x") && !st.is_hidden("y"));
    }
}
