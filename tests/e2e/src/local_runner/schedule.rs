//! When a CronJob is due, decided the way the CronJob controller decides it,
//! from a clock the caller passes in (so tests need not wait for minutes).
//!
//! Schedules are evaluated by `croner` (five fields, Vixie-cron semantics as
//! Kubernetes': day-of-month and day-of-week are OR-ed when both are given)
//! in the CronJob's `timeZone` (jiff's time zone database); without one, in
//! the local zone, as kube-controller-manager does.

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// At most this many scheduled times are looked at between two ticks
/// (the CronJob controller gives up at 100 missed times; we only need the
/// latest).
const MAX_STEPS: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("schedule {schedule:?} is not a five-field cron expression: {reason}")]
    Cron { schedule: String, reason: String },
    #[error("schedule {0:?}: put the zone in spec.timeZone, not in the schedule")]
    ZoneInSchedule(String),
    #[error("timeZone {zone:?} is not in the time zone database: {reason}")]
    Zone { zone: String, reason: String },
}

/// A parsed `spec.schedule` in its `spec.timeZone`.
#[derive(Clone, Debug)]
pub struct Schedule {
    cron: Cron,
    zone: TimeZone,
    text: String,
}

impl Schedule {
    pub fn parse(schedule: &str, time_zone: Option<&str>) -> Result<Self, ScheduleError> {
        let trimmed = schedule.trim();
        if trimmed.starts_with("TZ=") || trimmed.starts_with("CRON_TZ=") {
            return Err(ScheduleError::ZoneInSchedule(schedule.to_owned()));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(trimmed)
            .map_err(|e| ScheduleError::Cron {
                schedule: schedule.to_owned(),
                reason: e.to_string(),
            })?;
        let zone = match time_zone {
            Some(name) => TimeZone::get(name).map_err(|e| ScheduleError::Zone {
                zone: name.to_owned(),
                reason: e.to_string(),
            })?,
            None => TimeZone::system(),
        };
        Ok(Schedule {
            cron,
            zone,
            text: schedule.to_owned(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The latest scheduled time in `(after, upto]`, if any.
    pub fn latest_between(&self, after: Timestamp, upto: Timestamp) -> Option<Timestamp> {
        let mut cursor = after.to_zoned(self.zone.clone());
        let mut latest = None;
        for _ in 0..MAX_STEPS {
            let next = self.cron.find_next_occurrence(&cursor, false).ok()?;
            if next.timestamp() > upto {
                break;
            }
            latest = Some(next.timestamp());
            cursor = next;
        }
        latest
    }

    /// The first scheduled time after `after` (for logs).
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        self.cron
            .find_next_occurrence(&after.to_zoned(self.zone.clone()), false)
            .ok()
            .map(|z| z.timestamp())
    }
}

/// `spec.concurrencyPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConcurrencyPolicy {
    Allow,
    Forbid,
    Replace,
}

impl ConcurrencyPolicy {
    /// Kubernetes' default is Allow.
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("Forbid") => ConcurrencyPolicy::Forbid,
            Some("Replace") => ConcurrencyPolicy::Replace,
            _ => ConcurrencyPolicy::Allow,
        }
    }
}

/// The scheduling knobs of one CronJob.
#[derive(Clone, Debug)]
pub struct CronSpec {
    pub schedule: Schedule,
    pub suspend: bool,
    pub concurrency: ConcurrencyPolicy,
    pub starting_deadline_seconds: Option<i64>,
}

/// What the runner remembers of one CronJob (Job-like bookkeeping).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct History {
    /// When the runner first saw the CronJob (its creationTimestamp if older
    /// schedules are wanted).
    pub since: Timestamp,
    /// The last scheduled time acted on (started, or skipped as missed).
    pub last_schedule: Option<Timestamp>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing is due.
    Idle,
    /// `spec.suspend`: nothing starts.
    Suspended,
    /// Start a run for `scheduled`.
    Start { scheduled: Timestamp },
    /// Replace policy: stop the running one, then start.
    Replace { scheduled: Timestamp },
    /// Forbid policy and a run is still going: wait (it still starts if the
    /// run ends within `startingDeadlineSeconds` of `scheduled`; after that
    /// the time is no longer looked at, as in the CronJob controller).
    Blocked { scheduled: Timestamp },
}

impl Decision {
    /// The scheduled time to record as acted on, if the decision consumes it.
    pub fn consumes(self) -> Option<Timestamp> {
        match self {
            Decision::Start { scheduled } | Decision::Replace { scheduled } => Some(scheduled),
            _ => None,
        }
    }
}

/// Decide at `now` whether a CronJob starts a run. `running`: a run of it is
/// still going.
pub fn decide(spec: &CronSpec, history: &History, now: Timestamp, running: bool) -> Decision {
    if spec.suspend {
        return Decision::Suspended;
    }
    // Times older than the starting deadline are never started (the
    // controller's "too late"): look only after it.
    let mut earliest = history.last_schedule.unwrap_or(history.since);
    if let Some(deadline) = spec.starting_deadline_seconds {
        let floor = now
            .checked_sub(jiff::SignedDuration::from_secs(deadline))
            .unwrap_or(now);
        if floor > earliest {
            earliest = floor;
        }
    }
    let Some(scheduled) = spec.schedule.latest_between(earliest, now) else {
        return Decision::Idle;
    };
    match (running, spec.concurrency) {
        (true, ConcurrencyPolicy::Forbid) => Decision::Blocked { scheduled },
        (true, ConcurrencyPolicy::Replace) => Decision::Replace { scheduled },
        _ => Decision::Start { scheduled },
    }
}
