//! `fleet-ingest housekeeping` (FIX-M25): retention and the reporting
//! refresh, one step after the other, each its own short statement:
//!
//! | step | retention (config) | how |
//! |---|---|---|
//! | `ingestion_log` | `retention.ingestionLogSeconds` (90 d) | `DELETE` |
//! | `push_events` | the same as `ingestion_log` (raw push audit) | `DELETE` |
//! | `refresh_log` | `retention.refreshLogSeconds` (180 d) | `DELETE` |
//! | `positions` | `retention.positionsSeconds` (400 d) | `purge_time_series()`: `drop_chunks` when a hypertable, then `DELETE` |
//! | reporting | — | `refresh_reporting()`: `REFRESH MATERIALIZED VIEW CONCURRENTLY`, one `refresh_log` row per view |
//!
//! A failed step does not stop the others. The exact counts are logged per
//! step; the run writes one `ingestion_log` row (endpoint `housekeeping`, no
//! target, nothing inserted) that fails when any step failed.

use super::log::{self, LogRow};
use super::{JobContext, TargetOutcome};
use crate::store::retention::{self, LogTable};
use jiff::Timestamp;
use tracing::{Instrument, info, info_span, warn};

/// The `ingestion_log.endpoint` of this job.
pub const ENDPOINT: &str = "housekeeping";

/// What one step did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepOutcome {
    pub step: String,
    /// Rows deleted (retention steps).
    pub deleted: u64,
    /// TimescaleDB chunks dropped (time-series steps).
    pub chunks_dropped: u64,
    pub error: Option<String>,
}

impl StepOutcome {
    fn ok(step: &str, deleted: u64, chunks_dropped: u64) -> Self {
        StepOutcome {
            step: step.to_owned(),
            deleted,
            chunks_dropped,
            error: None,
        }
    }

    fn failed(step: &str, error: impl ToString) -> Self {
        StepOutcome {
            step: step.to_owned(),
            deleted: 0,
            chunks_dropped: 0,
            error: Some(error.to_string()),
        }
    }
}

async fn trim(ctx: &JobContext, table: LogTable, seconds: u64) -> StepOutcome {
    match retention::delete_older(&ctx.pool, table, seconds).await {
        Ok(n) => StepOutcome::ok(table.name(), n, 0),
        Err(e) => StepOutcome::failed(table.name(), e),
    }
}

/// Every step, in order.
pub async fn steps(ctx: &JobContext) -> Vec<StepOutcome> {
    let r = &ctx.config.retention;
    let mut out = vec![
        trim(ctx, LogTable::IngestionLog, r.ingestion_log_seconds).await,
        trim(ctx, LogTable::PushEvents, r.ingestion_log_seconds).await,
        trim(ctx, LogTable::RefreshLog, r.refresh_log_seconds).await,
    ];
    out.push(
        match retention::purge_time_series(&ctx.pool, "positions", r.positions_seconds).await {
            Ok(p) => StepOutcome::ok(
                "positions",
                u64::try_from(p.rows_deleted).unwrap_or(0),
                u64::try_from(p.chunks_dropped).unwrap_or(0),
            ),
            Err(e) => StepOutcome::failed("positions", e),
        },
    );
    match retention::refresh_reporting(&ctx.pool).await {
        Ok(views) => out.extend(views.into_iter().map(|v| {
            let step = format!("refresh {}", v.object);
            if v.ok {
                StepOutcome::ok(&step, 0, 0)
            } else {
                StepOutcome::failed(&step, v.error.unwrap_or_else(|| "failed".into()))
            }
        })),
        Err(e) => out.push(StepOutcome::failed("refresh", e)),
    }
    out
}

/// Runs housekeeping once. One outcome (the binary's exit status).
pub async fn run(ctx: &JobContext) -> Vec<TargetOutcome> {
    let started = Timestamp::now();
    let outcomes = steps(ctx).instrument(info_span!("housekeeping")).await;
    for s in &outcomes {
        match &s.error {
            None => {
                info!(step = %s.step, deleted = s.deleted, chunks_dropped = s.chunks_dropped, "done")
            }
            Some(e) => warn!(step = %s.step, error = %e, "failed"),
        }
    }
    let errors: Vec<String> = outcomes
        .iter()
        .filter_map(|s| s.error.as_ref().map(|e| format!("{}: {e}", s.step)))
        .collect();
    let error = (!errors.is_empty()).then(|| errors.join("; "));
    let row = LogRow {
        endpoint: ENDPOINT,
        target: "",
        started_at: started,
        finished_at: Timestamp::now(),
        inserted: 0,
        rejected: 0,
        error: error.as_deref(),
    };
    let error = match log::write_untargeted(&ctx.pool, &row).await {
        Ok(()) => error,
        Err(e) => Some(error.unwrap_or_else(|| format!("ingestion_log: {e}"))),
    };
    vec![TargetOutcome {
        target: String::new(),
        inserted: 0,
        rejected: 0,
        error,
    }]
}
