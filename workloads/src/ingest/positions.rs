//! `fleet-ingest positions`: the latest position of every device of each
//! account (`jimi.user.device.location.list`, one call per account).

use super::log::{self, LogRow};
use super::{JobContext, TargetOutcome, client_for};
use crate::store::positions;
use crate::tracksolid::types::Location;
use jiff::Timestamp;
use serde_json::{Value, json};
use tracing::{Instrument, info, info_span, warn};

/// Rows bound to one insert statement. The fixes of a large account are
/// written in several such statements, all in the one write transaction, so
/// only one chunk's JSON is alive at a time.
pub const CHUNK_ROWS: usize = 1000;

/// A fix the guard accepted, as stored: the few columns of `positions` this
/// job fills, without the rest of the [`Location`].
#[derive(Clone, Debug, PartialEq)]
pub struct Fix {
    pub imei: String,
    pub gps_time: Timestamp,
    pub lat: f64,
    pub lng: f64,
    pub speed: Option<f64>,
    /// Whole degrees; unknown (negative) is `None`.
    pub direction: Option<i64>,
    pub acc: Option<i64>,
    pub satellites: Option<i64>,
}

impl Fix {
    /// The row for [`positions::insert`].
    pub fn to_row(&self) -> Value {
        json!({
            "imei": self.imei, "gps_time": self.gps_time.to_string(), "lat": self.lat, "lng": self.lng,
            "speed": self.speed, "direction": self.direction, "acc": self.acc, "satellites": self.satellites,
        })
    }
}

/// The fixes to store, and how many the guard refused. Consumes the list, so
/// each [`Location`] is freed as it is read.
pub fn fixes(list: Vec<Location>, guard: &crate::push::Guard, now: Timestamp) -> (Vec<Fix>, u64) {
    let mut rejected = 0;
    let mut out = Vec::with_capacity(list.len());
    for l in list {
        let (Some(at), Some(lat), Some(lng)) = (l.gps_time, l.lat, l.lng) else {
            rejected += 1;
            continue;
        };
        if l.imei.is_empty()
            || guard.check_time(at, now).is_err()
            || guard.check_fix(lat, lng).is_err()
        {
            rejected += 1;
            continue;
        }
        out.push(Fix {
            imei: l.imei,
            gps_time: at,
            lat,
            lng,
            speed: l.speed,
            direction: l.direction.filter(|d| *d >= 0.0).map(|d| d.round() as i64),
            acc: l.acc_status.map(i64::from),
            satellites: l.gps_num,
        });
    }
    (out, rejected)
}

async fn one_target(ctx: &JobContext, target: &crate::config::TargetConfig) -> TargetOutcome {
    let started = Timestamp::now();
    let result = async {
        let client = client_for(target, &ctx.pool)?;
        // Fetch: no database connection is held across the network call.
        let list = client.location_list().await.map_err(|e| e.to_string())?;
        // Elements of the answer that were not rows count as rejected.
        let skipped = client.stats().skipped_rows;
        let (fixes, rejected) = fixes(list, &ctx.guard, Timestamp::now());
        // One short write: a statement per chunk, one transaction.
        let mut tx = ctx.pool.begin().await.map_err(|e| e.to_string())?;
        let mut inserted = 0;
        for chunk in fixes.chunks(CHUNK_ROWS) {
            let rows = chunk.iter().map(Fix::to_row).collect();
            inserted += positions::insert(&mut tx, rows, "poll")
                .await
                .map_err(|e| e.to_string())?;
        }
        tx.commit().await.map_err(|e| e.to_string())?;
        Ok::<_, String>((inserted, rejected + skipped))
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
