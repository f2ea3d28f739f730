//! The end of one target's run: its `ingestion_log` row (exact counts,
//! never negative) and its [`TargetOutcome`].

use super::error::JobError;
use super::log::{self, LogRow};
use super::{JobContext, TargetOutcome};
use jiff::Timestamp;
use tracing::{info, warn};

/// Rows a run inserted and rows it refused (event-time guard, no fix,
/// missing keys), added up over its writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub inserted: u64,
    pub rejected: u64,
}

impl Tally {
    pub fn add(&mut self, inserted: u64, rejected: u64) {
        self.inserted += inserted;
        self.rejected += rejected;
    }
}

/// Writes the `ingestion_log` row of `target` for `endpoint` and returns
/// the outcome. What was written before an error still counts: `tally` is
/// exact whether or not the run failed.
pub async fn finish(
    ctx: &JobContext,
    endpoint: &str,
    target: &str,
    started: Timestamp,
    tally: Tally,
    error: Option<JobError>,
) -> TargetOutcome {
    let error = error.map(|e| e.to_string());
    let row = LogRow {
        endpoint,
        target,
        started_at: started,
        finished_at: Timestamp::now(),
        inserted: tally.inserted,
        rejected: tally.rejected,
        error: error.as_deref(),
    };
    let error = match log::write(&ctx.pool, &row).await {
        Ok(()) => error,
        Err(e) => Some(error.unwrap_or_else(|| format!("ingestion_log: {e}"))),
    };
    match &error {
        None => info!(
            target = %target,
            inserted = tally.inserted,
            rejected = tally.rejected,
            "{endpoint} stored"
        ),
        Some(e) => warn!(
            target = %target,
            inserted = tally.inserted,
            rejected = tally.rejected,
            error = %e,
            "{endpoint} failed"
        ),
    }
    TargetOutcome {
        target: target.to_owned(),
        inserted: tally.inserted,
        rejected: tally.rejected,
        error,
    }
}
