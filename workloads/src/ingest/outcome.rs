//! The end of one target's run: its `ingestion_log` row (exact counts,
//! never negative) and its [`TargetOutcome`].

use super::error::JobError;
use super::log::{self, LogRow};
use super::window::{self, Window, WindowArgs};
use super::{JobContext, TargetOutcome, client_for, imeis};
use crate::config::JobKind;
use crate::store::token::PgTokenStore;
use crate::tracksolid::TracksolidClient;
use jiff::Timestamp;
use tracing::{Instrument, info, info_span, warn};

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

/// What a windowed job works on for one target, read before anything is
/// written: the planned window, the account's client and its IMEIs (from the
/// API's device list: the `devices` table may be stale or not filled yet).
pub struct TargetScope {
    pub window: Window,
    pub client: TracksolidClient<PgTokenStore>,
    pub imeis: Vec<String>,
}

/// Run a windowed job (`track`, `alarms`, `parking`) for every target, one
/// after the other: plan the window, list the account's devices, then
/// `fetch_and_store` adds what it writes to the tally (an account without
/// devices has nothing to fetch), and each target ends with its
/// `ingestion_log` row, failed or not.
pub async fn per_target(
    ctx: &JobContext,
    args: &WindowArgs,
    job: JobKind,
    fetch_and_store: impl AsyncFn(&JobContext, &TargetScope, &mut Tally) -> Result<(), JobError>,
) -> Vec<TargetOutcome> {
    let endpoint = job.as_str();
    let mut out = Vec::new();
    for target in &ctx.config.targets {
        let span = info_span!("target", job = endpoint, target = %target.name);
        let outcome = async {
            let started = Timestamp::now();
            let mut tally = Tally::default();
            let error = async {
                let window = window::for_target(&ctx.pool, job, args, &target.name).await?;
                let client = client_for(target, &ctx.pool).map_err(JobError::Setup)?;
                let imeis = imeis::of_account(&client).await?;
                if imeis.is_empty() {
                    info!("no devices");
                    return Ok(());
                }
                let scope = TargetScope {
                    window,
                    client,
                    imeis,
                };
                fetch_and_store(ctx, &scope, &mut tally).await
            }
            .await
            .err();
            finish(ctx, endpoint, &target.name, started, tally, error).await
        }
        .instrument(span)
        .await;
        out.push(outcome);
    }
    out
}
