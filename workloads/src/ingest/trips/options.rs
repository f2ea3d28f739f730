//! Tuning of the trips job that the pipeline config does not carry: read
//! from the environment (all optional), so the CronJob needs no flags.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `FLEET_TRIPS_LOOKBACK_HOURS` | 24 | trips starting this far back are fetched (and re-checked) each run |
//! | `FLEET_GEOCODER_USER_AGENT` | `FleetPipeline/<version> (fleet-ingest trips)` | the `User-Agent` sent to the geocoder when the config's `geocoding.userAgent` is unset |
//! | `FLEET_GEOCODER_MAX_REQUESTS` | 600 | geocoder requests per run at most; the rest wait for the next run |
//! | `FLEET_GEOCODER_TIMEOUT_SECONDS` | 10 | per geocoder request |
//!
//! The rate (`geocoding.requestsPerSecond`) and the URL come from the config.

use crate::geocode::ResolveLimits;
use crate::geocode::nominatim::DEFAULT_USER_AGENT;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
pub struct TripsOptions {
    pub lookback: Duration,
    pub user_agent: String,
    pub geocoder_timeout: Duration,
    pub limits: ResolveLimits,
}

impl Default for TripsOptions {
    fn default() -> Self {
        TripsOptions {
            lookback: Duration::from_secs(24 * 3600),
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            geocoder_timeout: Duration::from_secs(10),
            limits: ResolveLimits::default(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{name}={value:?}: {expected}")]
pub struct OptionError {
    pub name: &'static str,
    pub value: String,
    pub expected: &'static str,
}

fn number(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    range: std::ops::RangeInclusive<u64>,
    expected: &'static str,
) -> Result<Option<u64>, OptionError> {
    let Some(value) = get(name).filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    match value.trim().parse::<u64>() {
        Ok(n) if range.contains(&n) => Ok(Some(n)),
        _ => Err(OptionError {
            name,
            value,
            expected,
        }),
    }
}

impl TripsOptions {
    /// From the process environment.
    pub fn from_env() -> Result<TripsOptions, OptionError> {
        TripsOptions::from_lookup(|k| std::env::var(k).ok())
    }

    /// From any variable lookup (tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<TripsOptions, OptionError> {
        let mut o = TripsOptions::default();
        if let Some(h) = number(
            &get,
            "FLEET_TRIPS_LOOKBACK_HOURS",
            1..=24 * 31,
            "hours, 1 to 744",
        )? {
            o.lookback = Duration::from_secs(h * 3600);
        }
        if let Some(ua) = get("FLEET_GEOCODER_USER_AGENT").filter(|v| !v.trim().is_empty()) {
            o.user_agent = ua.trim().to_owned();
        }
        if let Some(n) = number(
            &get,
            "FLEET_GEOCODER_MAX_REQUESTS",
            0..=1_000_000,
            "a request count",
        )? {
            o.limits.max_requests = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(s) = number(
            &get,
            "FLEET_GEOCODER_TIMEOUT_SECONDS",
            1..=300,
            "seconds, 1 to 300",
        )? {
            o.geocoder_timeout = Duration::from_secs(s);
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with(vars: &[(&str, &str)]) -> Result<TripsOptions, OptionError> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        TripsOptions::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(with(&[]).unwrap(), TripsOptions::default());
        let o = with(&[
            ("FLEET_TRIPS_LOOKBACK_HOURS", "6"),
            (
                "FLEET_GEOCODER_USER_AGENT",
                " acme-fleet/1 (ops@acme.example) ",
            ),
            ("FLEET_GEOCODER_MAX_REQUESTS", "0"),
            ("FLEET_GEOCODER_TIMEOUT_SECONDS", "3"),
        ])
        .unwrap();
        assert_eq!(o.lookback, Duration::from_secs(6 * 3600));
        assert_eq!(o.user_agent, "acme-fleet/1 (ops@acme.example)");
        assert_eq!(o.limits.max_requests, 0);
        assert_eq!(o.geocoder_timeout, Duration::from_secs(3));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = with(&[("FLEET_TRIPS_LOOKBACK_HOURS", "0")]).unwrap_err();
        assert_eq!(e.name, "FLEET_TRIPS_LOOKBACK_HOURS");
        assert!(with(&[("FLEET_GEOCODER_TIMEOUT_SECONDS", "ten")]).is_err());
        assert!(e.to_string().contains("1 to 744"));
    }
}
