//! The event-time guard (FIX-W04): events stamped before `not_before` (2019
//! device clocks) or further ahead than `max_future` are rejected and counted,
//! not stored as data; (0,0) fixes from devices without a fix likewise.

use jiff::{SignedDuration, Timestamp};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    BeforeNotBefore,
    TooFarInFuture,
    NullIsland,
}

impl Rejection {
    /// Label for metrics and `ingestion_log`.
    pub fn label(self) -> &'static str {
        match self {
            Rejection::BeforeNotBefore => "time_before_window",
            Rejection::TooFarInFuture => "time_in_future",
            Rejection::NullIsland => "zero_fix",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Guard {
    pub not_before: Timestamp,
    pub max_future: SignedDuration,
}

impl Guard {
    pub fn from_config(cfg: &crate::config::EventTimeGuardConfig) -> Option<Guard> {
        Some(Guard {
            not_before: cfg.not_before.parse().ok()?,
            max_future: SignedDuration::from_secs(i64::try_from(cfg.max_future_seconds).ok()?),
        })
    }

    /// Check an event time against the window around `now`.
    pub fn check_time(&self, at: Timestamp, now: Timestamp) -> Result<(), Rejection> {
        if at < self.not_before {
            return Err(Rejection::BeforeNotBefore);
        }
        match now.checked_add(self.max_future) {
            Ok(limit) if at > limit => Err(Rejection::TooFarInFuture),
            _ => Ok(()),
        }
    }

    /// A fix at exactly (0,0) is a device without a fix, not a ship in the
    /// Gulf of Guinea.
    pub fn check_fix(&self, lat: f64, lng: f64) -> Result<(), Rejection> {
        if lat == 0.0 && lng == 0.0 {
            Err(Rejection::NullIsland)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> Guard {
        Guard {
            not_before: "2026-01-01T00:00:00Z".parse().unwrap(),
            max_future: SignedDuration::from_hours(48),
        }
    }

    #[test]
    fn window_edges() {
        let now: Timestamp = "2026-11-28T12:00:00Z".parse().unwrap();
        let g = guard();
        assert_eq!(
            g.check_time("2019-06-01T00:00:00Z".parse().unwrap(), now),
            Err(Rejection::BeforeNotBefore)
        );
        assert_eq!(
            g.check_time("2026-01-01T00:00:00Z".parse().unwrap(), now),
            Ok(())
        );
        assert_eq!(
            g.check_time("2026-11-30T12:00:00Z".parse().unwrap(), now),
            Ok(())
        );
        assert_eq!(
            g.check_time("2026-11-30T12:00:01Z".parse().unwrap(), now),
            Err(Rejection::TooFarInFuture)
        );
        assert_eq!(g.check_fix(0.0, 0.0), Err(Rejection::NullIsland));
        assert_eq!(g.check_fix(0.0, 113.9), Ok(()));
    }

    #[test]
    fn built_from_the_rendered_config() {
        let cfg = crate::config::EventTimeGuardConfig {
            max_future_seconds: 3600,
            not_before: "2026-01-01T00:00:00Z".into(),
        };
        let g = Guard::from_config(&cfg).unwrap();
        assert_eq!(g.max_future, SignedDuration::from_hours(1));
    }
}
