//! `fleet-ingest positions`: the latest position of every device of each
//! account (`jimi.user.device.location.list`, one call per account).

use super::log::{self, LogRow};
use super::{JobContext, TargetOutcome, client_for};
use crate::store::positions;
use crate::tracksolid::types::Location;
use jiff::Timestamp;
use serde_json::{Value, json};
use tracing::{Instrument, info, info_span, warn};

/// Rows for the database, and how many fixes the guard refused.
pub fn rows(fixes: &[Location], guard: &crate::push::Guard, now: Timestamp) -> (Vec<Value>, u64) {
    let mut rejected = 0;
    let rows = fixes
        .iter()
        .filter_map(|l| {
            let (Some(at), Some(lat), Some(lng)) = (l.gps_time, l.lat, l.lng) else {
                rejected += 1;
                return None;
            };
            if l.imei.is_empty() || guard.check_time(at, now).is_err() || guard.check_fix(lat, lng).is_err() {
                rejected += 1;
                return None;
            }
            Some(json!({
                "imei": l.imei, "gps_time": at.to_string(), "lat": lat, "lng": lng,
                "speed": l.speed, "direction": l.direction.filter(|d| *d >= 0.0).map(|d| d.round() as i64),
                "acc": l.acc_status.map(i64::from), "satellites": l.gps_num,
            }))
        })
        .collect();
    (rows, rejected)
}

async fn one_target(ctx: &JobContext, target: &crate::config::TargetConfig) -> TargetOutcome {
    let started = Timestamp::now();
    let result = async {
        let client = client_for(target, &ctx.pool)?;
        // Fetch: no database connection is held across the network call.
        let fixes = client.location_list().await.map_err(|e| e.to_string())?;
        let (rows, rejected) = rows(&fixes, &ctx.guard, Timestamp::now());
        // One short write.
        let mut tx = ctx.pool.begin().await.map_err(|e| e.to_string())?;
        let inserted = positions::insert(&mut tx, rows, "poll")
            .await
            .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        Ok::<_, String>((inserted, rejected))
    }
    .await;
    let (inserted, rejected, error) = match result {
        Ok((i, r)) => (i, r, None),
        Err(e) => (0, 0, Some(e)),
    };
    let row = LogRow {
        endpoint: "positions",
        target: &target.name,
        started_at: started,
        finished_at: Timestamp::now(),
        inserted,
        rejected,
        error: error.as_deref(),
    };
    let error = match log::write(&ctx.pool, &row).await {
        Ok(()) => error,
        Err(e) => Some(error.unwrap_or_else(|| format!("ingestion_log: {e}"))),
    };
    match &error {
        None => info!(target = %target.name, inserted, rejected, "positions stored"),
        Some(e) => warn!(target = %target.name, error = %e, "positions failed"),
    }
    TargetOutcome {
        target: target.name.clone(),
        inserted,
        rejected,
        error,
    }
}

/// Run the job for every target.
pub async fn run(ctx: &JobContext) -> Vec<TargetOutcome> {
    let mut out = Vec::new();
    for target in &ctx.config.targets {
        let span = info_span!("positions", target = %target.name);
        out.push(one_target(ctx, target).instrument(span).await);
    }
    out
}
