//! The pipeline configuration that the operator renders into a ConfigMap and
//! every workload reads (`/etc/fleet/config.json`).
//!
//! It holds no secrets: credentials are mounted from Secrets next to it, at
//! the paths named here. Durations are plain seconds so that workloads never
//! need to parse the resource's duration strings.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// File name of the rendered config inside the ConfigMap and its mount.
pub const CONFIG_FILE: &str = "config.json";
/// Where the ConfigMap is mounted in every workload pod.
pub const CONFIG_MOUNT_DIR: &str = "/etc/fleet";
/// Where each target's credentials Secret is mounted: `<dir>/<target>/appKey`, …
pub const TARGET_CREDENTIALS_DIR: &str = "/var/run/secrets/fleet/targets";
/// Keys every Tracksolid credentials Secret must hold.
pub const TARGET_CREDENTIAL_KEYS: [&str; 4] = ["appKey", "appSecret", "userId", "userPassword"];

/// The periodic jobs of a pipeline; each becomes a CronJob running
/// `fleet-ingest <job>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    Positions,
    Track,
    Alarms,
    Trips,
    Parking,
    Devices,
    Housekeeping,
}

impl JobKind {
    pub const ALL: [JobKind; 7] = [
        JobKind::Positions,
        JobKind::Track,
        JobKind::Alarms,
        JobKind::Trips,
        JobKind::Parking,
        JobKind::Devices,
        JobKind::Housekeeping,
    ];

    /// The name used for the CronJob suffix, the `fleet-ingest` subcommand
    /// and the `status.jobs[].name`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Positions => "positions",
            JobKind::Track => "track",
            JobKind::Alarms => "alarms",
            JobKind::Trips => "trips",
            JobKind::Parking => "parking",
            JobKind::Devices => "devices",
            JobKind::Housekeeping => "housekeeping",
        }
    }

    /// The schedule used when the resource names none (documented in the README).
    pub fn default_schedule(self) -> &'static str {
        match self {
            JobKind::Positions => "*/2 * * * *",
            JobKind::Track => "*/30 * * * *",
            JobKind::Alarms => "*/5 * * * *",
            JobKind::Trips => "15 * * * *",
            JobKind::Parking => "20 * * * *",
            JobKind::Devices => "0 */6 * * *",
            JobKind::Housekeeping => "30 2 * * *",
        }
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "unknown job {0:?}; expected one of positions, track, alarms, trips, parking, devices, housekeeping"
)]
pub struct UnknownJob(pub String);

impl FromStr for JobKind {
    type Err = UnknownJob;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobKind::ALL
            .into_iter()
            .find(|j| j.as_str() == s)
            .ok_or_else(|| UnknownJob(s.to_owned()))
    }
}

/// The whole rendered configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineConfig {
    /// `namespace/name` of the FleetPipeline this was rendered from.
    pub pipeline: String,
    pub database: DatabaseConfig,
    pub targets: Vec<TargetConfig>,
    /// Enabled jobs with their effective schedules.
    pub jobs: BTreeMap<JobKind, JobConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geocoding: Option<GeocodingConfig>,
    pub retention: RetentionConfig,
    pub event_time_guard: EventTimeGuardConfig,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseConfig {
    pub host: String,
    pub port: u16,
    pub name: String,
    pub schema: String,
    pub ssl_mode: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetConfig {
    pub name: String,
    pub endpoint: String,
    /// Directory holding the target's credential files (one file per key).
    pub credentials_dir: String,
    /// Protocol facts the reference marks uncertain, when this account
    /// needs other values than the client's defaults.
    #[serde(default, skip_serializing_if = "ProtocolOverrides::is_empty")]
    pub protocol: ProtocolOverrides,
}

/// Overrides of the Tracksolid protocol facts that the reference
/// (shared/reference/tracksolid-api.md) marks uncertain. Unset fields keep
/// the client's defaults (`tracksolid::ProtocolOptions`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProtocolOverrides {
    /// `map_type` for location and track calls (e.g. `GOOGLE`); unset sends none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_type: Option<String>,
    /// IMEIs per call for the methods that take a list (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_imeis_per_call: Option<u32>,
    /// `page_size` of the parking report (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parking_page_size: Option<u32>,
    /// `start_row` of the parking report's first page (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parking_first_row: Option<u32>,
    /// Longest window of one parking report call, in days (default 7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parking_max_window_days: Option<u32>,
    /// `page_size` of `jimi.device.track.mileage` (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mileage_page_size: Option<u32>,
    /// `start_row` of the first `track.mileage` page (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mileage_first_row: Option<u32>,
    /// Longest window of one `track.mileage` call, in days (default 7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mileage_max_window_days: Option<u32>,
}

impl ProtocolOverrides {
    pub fn is_empty(&self) -> bool {
        *self == ProtocolOverrides::default()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobConfig {
    pub schedule: String,
    pub time_zone: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GeocodingConfig {
    pub url: String,
    pub requests_per_second: u32,
    /// The `User-Agent` sent to the geocoder (Nominatim's usage policy asks
    /// for one that identifies the application and a contact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetentionConfig {
    pub ingestion_log_seconds: u64,
    pub refresh_log_seconds: u64,
    pub positions_seconds: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventTimeGuardConfig {
    pub max_future_seconds: u64,
    /// RFC 3339 instant; events stamped before it are rejected.
    pub not_before: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read pipeline config {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("pipeline config {path} is not valid: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
}

impl PipelineConfig {
    /// Read the config file a workload was given (`--config`).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.display().to_string(),
            source,
        })
    }

    /// Canonical JSON text as stored in the ConfigMap (stable key order, so an
    /// unchanged pipeline renders byte-identical config).
    pub fn to_json(&self) -> String {
        // Serializing plain owned data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PipelineConfig {
        PipelineConfig {
            pipeline: "fleet/kenya".into(),
            database: DatabaseConfig {
                host: "db".into(),
                port: 5432,
                name: "fleet".into(),
                schema: "tracksolid".into(),
                ssl_mode: "prefer".into(),
            },
            targets: vec![TargetConfig {
                name: "hk".into(),
                endpoint: "https://hk-open.tracksolidpro.com/route/rest".into(),
                credentials_dir: format!("{TARGET_CREDENTIALS_DIR}/hk"),
                protocol: Default::default(),
            }],
            jobs: [(
                JobKind::Positions,
                JobConfig {
                    schedule: "*/2 * * * *".into(),
                    time_zone: "UTC".into(),
                },
            )]
            .into(),
            geocoding: None,
            retention: RetentionConfig {
                ingestion_log_seconds: 90 * 86400,
                refresh_log_seconds: 180 * 86400,
                positions_seconds: 400 * 86400,
            },
            event_time_guard: EventTimeGuardConfig {
                max_future_seconds: 48 * 3600,
                not_before: "2026-01-01T00:00:00Z".into(),
            },
        }
    }

    #[test]
    fn round_trips_through_the_file_format() {
        let cfg = sample();
        let dir = std::env::temp_dir().join(format!("fleet-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(CONFIG_FILE);
        std::fs::write(&path, cfg.to_json()).unwrap();
        assert_eq!(PipelineConfig::load(&path).unwrap(), cfg);
        let text = cfg.to_json();
        assert!(
            text.contains("\"positions\""),
            "job keys are lower-case: {text}"
        );
    }

    #[test]
    fn bad_file_names_the_path() {
        let err = PipelineConfig::load(Path::new("/nonexistent/fleet.json")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/fleet.json"));
    }

    #[test]
    fn job_names_parse_back() {
        for job in JobKind::ALL {
            assert_eq!(job.as_str().parse::<JobKind>(), Ok(job));
        }
        assert!("gps".parse::<JobKind>().is_err());
    }
}
