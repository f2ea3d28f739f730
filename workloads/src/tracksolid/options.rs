//! Client configuration: endpoint, credentials, timeouts, retry and token
//! policy, and the protocol facts that the reference marks uncertain (each
//! is a field here with the reference's value, or our guess, as default).

use super::retry::RetryPolicy;
use super::sign::md5_lower_hex;
use std::fmt;
use std::path::Path;
use std::time::Duration;

/// The account password, in the form the configuration holds it
/// (reference pitfall 13: be explicit).
#[derive(Clone, PartialEq, Eq)]
pub enum UserPassword {
    /// The password itself; the client sends its lower-case MD5.
    Plain(String),
    /// The MD5 hex of the password; sent lower-cased.
    Md5Hex(String),
}

impl UserPassword {
    /// The `user_pwd_md5` value.
    pub fn md5_lower_hex(&self) -> String {
        match self {
            UserPassword::Plain(p) => md5_lower_hex(p),
            UserPassword::Md5Hex(h) => h.trim().to_ascii_lowercase(),
        }
    }
}

impl fmt::Debug for UserPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserPassword::Plain(_) => f.write_str("Plain(<redacted>)"),
            UserPassword::Md5Hex(_) => f.write_str("Md5Hex(<redacted>)"),
        }
    }
}

/// The credentials of one Open API account.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub app_key: String,
    pub app_secret: String,
    pub user_id: String,
    pub password: UserPassword,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("app_key", &self.app_key)
            .field("app_secret", &"<redacted>")
            .field("user_id", &self.user_id)
            .field("password", &self.password)
            .finish()
    }
}

/// Why credentials could not be read from their Secret mount.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("credentials: cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("credentials: {path} is empty")]
    Empty { path: String },
}

impl Credentials {
    /// Reads a mounted credentials Secret: files `appKey`, `appSecret`,
    /// `userId` and `userPassword` (the **plain** password) — or
    /// `userPasswordMd5` (its MD5 hex) instead of `userPassword`.
    /// Surrounding whitespace (a trailing newline) is trimmed.
    pub fn from_dir(dir: &Path) -> Result<Credentials, CredentialsError> {
        let read = |name: &str| -> Result<Option<String>, CredentialsError> {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(s) if s.trim().is_empty() => Err(CredentialsError::Empty {
                    path: path.display().to_string(),
                }),
                Ok(s) => Ok(Some(s.trim().to_owned())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(CredentialsError::Read {
                    path: path.display().to_string(),
                    source,
                }),
            }
        };
        let need = |name: &str| -> Result<String, CredentialsError> {
            read(name)?.ok_or_else(|| CredentialsError::Read {
                path: dir.join(name).display().to_string(),
                source: std::io::ErrorKind::NotFound.into(),
            })
        };
        let password = match read("userPassword")? {
            Some(p) => UserPassword::Plain(p),
            None => UserPassword::Md5Hex(need("userPasswordMd5")?),
        };
        Ok(Credentials {
            app_key: need("appKey")?,
            app_secret: need("appSecret")?,
            user_id: need("userId")?,
            password,
        })
    }
}

/// The token lifetime we ask for and the safety margin we keep.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenPolicy {
    /// `expires_in` of `jimi.oauth.token.get` (the API allows 60–7200 s).
    pub expires_in_secs: u32,
    /// Stop using a token this long before it expires (capped at half its
    /// lifetime). Integrations use 60–1200 s.
    pub margin: Duration,
}

impl Default for TokenPolicy {
    fn default() -> Self {
        TokenPolicy {
            expires_in_secs: 7200,
            margin: Duration::from_secs(300),
        }
    }
}

/// Protocol facts and limits. Defaults are the reference's values; those the
/// reference marks [UNCERTAIN] are noted.
#[derive(Clone, Debug, PartialEq)]
pub struct ProtocolOptions {
    /// `v` (§2.1). "0.9" would skip signature verification.
    pub api_version: String,
    /// `map_type` for the location and track methods; `None` = raw
    /// coordinates (§5.2, §8.7 [UNCERTAIN] outside China).
    pub map_type: Option<String>,
    /// IMEIs per call for the `imeis` methods (§5.2: location.get ≤ 100;
    /// the same limit is assumed for alarms, parking and mileage).
    pub max_imeis_per_call: usize,
    /// Longest window of one `jimi.device.track.list` call (§5.3: 7 days).
    pub track_max_window: Duration,
    /// Longest window of one `jimi.device.alarm.list` call. The API allows
    /// "1 month" (§5.6); we use 7-day chunks like BILLIE so a month of any
    /// length is never exceeded.
    pub alarm_max_window: Duration,
    /// `page_size` for alarm.list (§5.6: 1–100).
    pub alarm_page_size: u32,
    /// Rows one alarm.list query can return at most (§5.6: 1000); a window
    /// that hits it is split in half and queried again.
    pub alarm_max_rows: usize,
    /// The shortest window the alarm helper still splits.
    pub alarm_min_split: Duration,
    /// Longest window of one parking report call [UNCERTAIN: undocumented].
    pub parking_max_window: Duration,
    /// `page_size` of the parking report [UNCERTAIN: BILLIE found it picky].
    pub parking_page_size: u32,
    /// `start_row` of the first page [UNCERTAIN: 0 or 1, BILLIE tries both].
    pub parking_first_row: u32,
    /// Longest window of one `jimi.device.track.mileage` call [UNCERTAIN].
    pub mileage_max_window: Duration,
    /// `page_size` of track.mileage [UNCERTAIN].
    pub mileage_page_size: u32,
    /// `start_row` of the first track.mileage page [UNCERTAIN].
    pub mileage_first_row: u32,
    /// Codes that mean "the token is bad: log in again" (§4: 1004).
    pub token_error_codes: Vec<i64>,
    /// Message fragments (case-insensitive) that also mean a token error,
    /// for the non-numeric codes the doc shows (§3.2 "token is invalid";
    /// PADAS matches "token"). Never applied to the token methods.
    pub token_error_markers: Vec<String>,
    /// Codes that mean "slow down" (§4: 1006 too frequent, 1005 IP limit).
    pub rate_limit_codes: Vec<i64>,
    /// Codes that are worth a retry (§4: -1 system busy).
    pub transient_codes: Vec<i64>,
}

impl Default for ProtocolOptions {
    fn default() -> Self {
        const DAY: u64 = 86_400;
        ProtocolOptions {
            api_version: "1.0".into(),
            map_type: None,
            max_imeis_per_call: 100,
            track_max_window: Duration::from_secs(7 * DAY),
            alarm_max_window: Duration::from_secs(7 * DAY),
            alarm_page_size: 100,
            alarm_max_rows: 1000,
            alarm_min_split: Duration::from_secs(600),
            parking_max_window: Duration::from_secs(7 * DAY),
            parking_page_size: 100,
            parking_first_row: 0,
            mileage_max_window: Duration::from_secs(7 * DAY),
            mileage_page_size: 100,
            mileage_first_row: 0,
            token_error_codes: vec![1004],
            token_error_markers: vec!["token".into()],
            rate_limit_codes: vec![1006, 1005],
            transient_codes: vec![-1],
        }
    }
}

impl ProtocolOptions {
    /// These options with a target's overrides from the pipeline config.
    pub fn with_overrides(mut self, o: &crate::config::ProtocolOverrides) -> Self {
        const DAY: u64 = 86_400;
        if let Some(v) = &o.map_type {
            self.map_type = Some(v.clone());
        }
        if let Some(v) = o.max_imeis_per_call {
            self.max_imeis_per_call = (v as usize).max(1);
        }
        if let Some(v) = o.parking_page_size {
            self.parking_page_size = v.max(1);
        }
        if let Some(v) = o.parking_first_row {
            self.parking_first_row = v;
        }
        if let Some(v) = o.parking_max_window_days {
            self.parking_max_window = Duration::from_secs(u64::from(v.max(1)) * DAY);
        }
        if let Some(v) = o.mileage_page_size {
            self.mileage_page_size = v.max(1);
        }
        if let Some(v) = o.mileage_first_row {
            self.mileage_first_row = v;
        }
        if let Some(v) = o.mileage_max_window_days {
            self.mileage_max_window = Duration::from_secs(u64::from(v.max(1)) * DAY);
        }
        self
    }
}

/// Everything a [`super::TracksolidClient`] needs.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The pipeline's name for this account: the token store key and a
    /// tracing field.
    pub target: String,
    /// The node URL, e.g. `https://hk-open.tracksolidpro.com/route/rest`
    /// (an app key only works on its own node: reference §1).
    pub endpoint: String,
    pub credentials: Credentials,
    /// The `target`/`account` parameter of the account-wide methods;
    /// `None` = `credentials.user_id`.
    pub account: Option<String>,
    pub connect_timeout: Duration,
    /// Whole-request timeout (connect, send, wait, read).
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
    pub token: TokenPolicy,
    pub protocol: ProtocolOptions,
    /// Extra trusted root certificates (PEM), besides the platform's.
    pub extra_root_pem: Option<Vec<u8>>,
}

impl ClientConfig {
    pub fn new(
        target: impl Into<String>,
        endpoint: impl Into<String>,
        credentials: Credentials,
    ) -> Self {
        ClientConfig {
            target: target.into(),
            endpoint: endpoint.into(),
            credentials,
            account: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            token: TokenPolicy::default(),
            protocol: ProtocolOptions::default(),
            extra_root_pem: None,
        }
    }

    /// The account the account-wide methods ask about.
    pub fn account(&self) -> &str {
        self.account.as_deref().unwrap_or(&self.credentials.user_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_sent_as_lower_case_md5() {
        assert_eq!(
            UserPassword::Plain("demo_password".into()).md5_lower_hex(),
            "c9a2be50ac796d7c8bff5ab5f6d9a69b"
        );
        assert_eq!(
            UserPassword::Md5Hex(" C9A2BE50AC796D7C8BFF5AB5F6D9A69B\n".into()).md5_lower_hex(),
            "c9a2be50ac796d7c8bff5ab5f6d9a69b"
        );
    }

    #[test]
    fn debug_never_shows_secrets() {
        let c = Credentials {
            app_key: "KEY".into(),
            app_secret: "the-secret".into(),
            user_id: "user".into(),
            password: UserPassword::Plain("hunter2".into()),
        };
        let s = format!(
            "{:?}",
            ClientConfig::new("hk", "http://127.0.0.1:1/route/rest", c)
        );
        assert!(!s.contains("the-secret") && !s.contains("hunter2"), "{s}");
    }

    #[test]
    fn credentials_from_a_secret_mount() {
        let dir = std::env::temp_dir().join(format!("ts-creds-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        for (k, v) in [("appKey", "K\n"), ("appSecret", "S"), ("userId", "u")] {
            std::fs::write(dir.join(k), v).unwrap_or_else(|e| panic!("{e}"));
        }
        assert!(matches!(
            Credentials::from_dir(&dir),
            Err(CredentialsError::Read { .. })
        ));
        std::fs::write(dir.join("userPasswordMd5"), "ABC").unwrap_or_else(|e| panic!("{e}"));
        let c = Credentials::from_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.app_key, "K");
        assert_eq!(c.password, UserPassword::Md5Hex("ABC".into()));
        std::fs::write(dir.join("userPassword"), "pw\n").unwrap_or_else(|e| panic!("{e}"));
        let c = Credentials::from_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.password, UserPassword::Plain("pw".into()));
        std::fs::write(dir.join("appSecret"), "\n").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            Credentials::from_dir(&dir),
            Err(CredentialsError::Empty { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[cfg(test)]
mod override_tests {
    use super::*;
    use crate::config::ProtocolOverrides;

    #[test]
    fn overrides_replace_only_what_they_set() {
        let base = ProtocolOptions::default();
        assert_eq!(
            base.clone().with_overrides(&ProtocolOverrides::default()),
            base
        );
        let o = ProtocolOverrides {
            map_type: Some("GOOGLE".into()),
            parking_first_row: Some(1),
            mileage_max_window_days: Some(3),
            max_imeis_per_call: Some(0),
            ..Default::default()
        };
        let p = ProtocolOptions::default().with_overrides(&o);
        assert_eq!(p.map_type.as_deref(), Some("GOOGLE"));
        assert_eq!(p.parking_first_row, 1);
        assert_eq!(p.mileage_max_window, Duration::from_secs(3 * 86_400));
        // Nonsense is clamped, never zero.
        assert_eq!(p.max_imeis_per_call, 1);
        assert_eq!(p.parking_page_size, base.parking_page_size);
    }
}
