//! The time window of one run of the windowed jobs (`track`, `alarms`,
//! `parking`).
//!
//! Each run looks back `lookback` from now, so consecutive runs overlap and
//! late (buffered) data is picked up by the next run. After missed or
//! failed runs it reaches further back, to the start of the last successful
//! run of the same job and target (that run's window ended after it
//! started), but never more than `max_catch_up` (the API only serves so
//! much history). `--from`/`--to`
//! replace all of that with a fixed window (back-fills, tests).

use super::error::JobError;
use crate::config::JobKind;
use jiff::{SignedDuration, Timestamp};
use sqlx::PgPool;

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// How far a job looks back by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowPolicy {
    pub lookback_secs: u64,
    pub max_catch_up_secs: u64,
}

impl WindowPolicy {
    /// The defaults (documented in the README):
    /// - `track`: 35 minutes back on a 30-minute schedule (5 minutes of
    ///   overlap, as KIANI does), catching up at most 7 days (one
    ///   `track.list` window per device);
    /// - `alarms`: 1 hour back on a 5-minute schedule (late alarms),
    ///   catching up at most 7 days;
    /// - `parking`: 3 days back (a stop is reported once it has ended, under
    ///   its start time, so the look-back must cover the longest stop: a
    ///   weekend), catching up at most 7 days.
    pub fn default_for(job: JobKind) -> WindowPolicy {
        let (lookback_secs, max_catch_up_secs) = match job {
            JobKind::Track => (35 * MINUTE, 7 * DAY),
            JobKind::Alarms => (HOUR, 7 * DAY),
            JobKind::Parking => (3 * DAY, 7 * DAY),
            _ => (HOUR, DAY),
        };
        WindowPolicy {
            lookback_secs,
            max_catch_up_secs,
        }
    }
}

/// Window flags of `fleet-ingest track|alarms|parking`.
#[derive(clap::Args, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WindowArgs {
    /// Seconds each run looks back from now [default: per job].
    #[arg(long)]
    pub lookback_seconds: Option<u64>,
    /// After missed or failed runs, reach back at most this many seconds
    /// [default: 7 days].
    #[arg(long)]
    pub max_catch_up_seconds: Option<u64>,
    /// A fixed window start (RFC 3339, e.g. 2026-11-01T00:00:00Z) instead
    /// of the look-back: for back-fills by hand.
    #[arg(long, value_parser = parse_instant)]
    pub from: Option<Timestamp>,
    /// End of a fixed window (RFC 3339) [default: now].
    #[arg(long, value_parser = parse_instant, requires = "from")]
    pub to: Option<Timestamp>,
}

fn parse_instant(s: &str) -> Result<Timestamp, String> {
    s.parse::<Timestamp>()
        .map_err(|e| format!("not an RFC 3339 instant ({e})"))
}

impl WindowArgs {
    /// The policy of `job` with these flags applied.
    pub fn policy(&self, job: JobKind) -> WindowPolicy {
        let d = WindowPolicy::default_for(job);
        WindowPolicy {
            lookback_secs: self.lookback_seconds.unwrap_or(d.lookback_secs),
            max_catch_up_secs: self.max_catch_up_seconds.unwrap_or(d.max_catch_up_secs),
        }
    }

    /// The fixed window, when `--from` was given.
    pub fn fixed(&self, now: Timestamp) -> Option<Result<Window, JobError>> {
        let begin = self.from?;
        let end = self.to.unwrap_or(now);
        Some(if begin < end {
            Ok(Window { begin, end })
        } else {
            Err(JobError::Window(format!(
                "--from {begin} is not before --to {end}"
            )))
        })
    }
}

/// `[begin, end]` of one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub begin: Timestamp,
    pub end: Timestamp,
}

fn secs(s: u64) -> SignedDuration {
    SignedDuration::from_secs(i64::try_from(s).unwrap_or(i64::MAX))
}

fn back(now: Timestamp, by: u64) -> Timestamp {
    now.checked_sub(secs(by)).unwrap_or(Timestamp::MIN)
}

/// The window of a run at `now`, given when the last successful run of the
/// same job and target started (if any).
pub fn plan(policy: WindowPolicy, now: Timestamp, last_ok_start: Option<Timestamp>) -> Window {
    let mut begin = back(now, policy.lookback_secs);
    if let Some(last) = last_ok_start {
        let floor = back(now, policy.max_catch_up_secs);
        if last < begin {
            begin = last.max(floor).min(begin);
        }
    }
    Window { begin, end: now }
}

/// When the last successful run of `endpoint` for `target` started.
pub async fn last_ok_start(
    pool: &PgPool,
    endpoint: &str,
    target: &str,
) -> Result<Option<Timestamp>, sqlx::Error> {
    let row: Option<(i64,)> = sqlx::query_as(
        "SELECT floor(extract(epoch FROM started_at))::bigint FROM ingestion_log
         WHERE endpoint = $1 AND target = $2 AND status = 'ok'
         ORDER BY finished_at DESC LIMIT 1",
    )
    .bind(endpoint)
    .bind(target)
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|(s,)| Timestamp::from_second(s).ok()))
}

/// The window of this run for `target`: fixed by the flags, or planned from
/// the look-back and the last successful run (one short query).
pub async fn for_target(
    pool: &PgPool,
    job: JobKind,
    args: &WindowArgs,
    target: &str,
) -> Result<Window, JobError> {
    let now = Timestamp::now();
    if let Some(fixed) = args.fixed(now) {
        return fixed;
    }
    let last = last_ok_start(pool, job.as_str(), target).await?;
    Ok(plan(args.policy(job), now, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    const NOW: &str = "2026-11-28T12:00:00Z";

    fn track() -> WindowPolicy {
        WindowPolicy::default_for(JobKind::Track)
    }

    #[test]
    fn first_run_looks_back_only() {
        let w = plan(track(), ts(NOW), None);
        assert_eq!(w.begin, ts("2026-11-28T11:25:00Z"));
        assert_eq!(w.end, ts(NOW));
    }

    #[test]
    fn runs_on_schedule_overlap_by_the_look_back() {
        // The previous run started 30 minutes ago: the look-back already
        // reaches before it.
        let w = plan(track(), ts(NOW), Some(ts("2026-11-28T11:30:00Z")));
        assert_eq!(w.begin, ts("2026-11-28T11:25:00Z"));
    }

    #[test]
    fn missed_runs_are_caught_up_to_the_cap() {
        let w = plan(track(), ts(NOW), Some(ts("2026-11-28T06:00:00Z")));
        assert_eq!(w.begin, ts("2026-11-28T06:00:00Z"));
        let w = plan(track(), ts(NOW), Some(ts("2026-10-01T00:00:00Z")));
        assert_eq!(w.begin, ts("2026-11-21T12:00:00Z"), "7 days at most");
        // A cap shorter than the look-back never shortens the look-back.
        let p = WindowPolicy {
            lookback_secs: 3600,
            max_catch_up_secs: 60,
        };
        let w = plan(p, ts(NOW), Some(ts("2026-11-01T00:00:00Z")));
        assert_eq!(w.begin, ts("2026-11-28T11:00:00Z"));
    }

    #[test]
    fn flags_override_the_defaults() {
        let a = WindowArgs {
            lookback_seconds: Some(60),
            ..WindowArgs::default()
        };
        assert_eq!(a.policy(JobKind::Alarms).lookback_secs, 60);
        assert_eq!(a.policy(JobKind::Alarms).max_catch_up_secs, 7 * DAY);
        assert_eq!(
            WindowArgs::default().policy(JobKind::Parking).lookback_secs,
            3 * DAY
        );
        assert!(a.fixed(ts(NOW)).is_none());
        let fixed = WindowArgs {
            from: Some(ts("2026-11-27T00:00:00Z")),
            ..WindowArgs::default()
        };
        let w = fixed.fixed(ts(NOW)).and_then(Result::ok);
        assert_eq!(
            w,
            Some(Window {
                begin: ts("2026-11-27T00:00:00Z"),
                end: ts(NOW)
            })
        );
        let reversed = WindowArgs {
            from: Some(ts(NOW)),
            to: Some(ts("2026-11-27T00:00:00Z")),
            ..WindowArgs::default()
        };
        assert!(matches!(reversed.fixed(ts(NOW)), Some(Err(_))));
    }
}
