//! `fleet-ingest track`: dense trails from `jimi.device.track.list`, one
//! call per device and window of at most 7 days, over an overlapping
//! look-back (see [`super::window`]). Points go through the shared
//! positions writer (source `poll`): idempotent on `(imei, gps_time)`, and
//! `latest_positions` never moves backwards when old or buffered points
//! arrive.

use super::error::JobError;
use super::outcome::{Tally, TargetScope, per_target};
use super::window::WindowArgs;
use super::{JobContext, TargetOutcome};
use crate::config::JobKind;
use crate::push::Guard;
use crate::store::positions;
use crate::tracksolid::types::TrackPoint;
use crate::tracksolid::{RejectKind, TracksolidError};
use jiff::Timestamp;
use serde_json::{Value, json};
use tracing::{info, warn};

/// Rows held before a write: bounds memory on a long catch-up, and keeps
/// each transaction short.
const FLUSH_ROWS: usize = 20_000;

/// Rows for the positions writer, and how many points were refused: no
/// time, no real fix (absent, out of range or (0,0)), or a time outside the
/// event-time guard (devices with 2019 or future clocks).
pub fn rows(imei: &str, points: &[TrackPoint], guard: &Guard, now: Timestamp) -> (Vec<Value>, u64) {
    let mut rejected = 0;
    let rows = points
        .iter()
        .filter_map(|p| {
            let (Some(at), Some(lat), Some(lng), true) = (p.gps_time, p.lat, p.lng, p.has_fix())
            else {
                rejected += 1;
                return None;
            };
            if imei.is_empty() || guard.check_time(at, now).is_err() {
                rejected += 1;
                return None;
            }
            Some(json!({
                "imei": imei, "gps_time": at.to_string(), "lat": lat, "lng": lng,
                // -1 on TAG/beacon points: unknown, not a speed.
                "speed": p.gps_speed.filter(|s| *s >= 0.0),
                "direction": p.heading().map(|d| d.round() as i64),
                "satellites": p.satellite, "acc": p.acc_status.map(i64::from),
                "gps_mode": p.gps_mode,
            }))
        })
        .collect();
    (rows, rejected)
}

/// A refusal that concerns one device only (not this account's any more,
/// unknown, expired): the device is skipped, the run goes on.
pub fn device_unavailable(e: &TracksolidError) -> bool {
    match e {
        TracksolidError::Rejected { kind, message, .. } => {
            let m = message.to_ascii_lowercase();
            *kind == RejectKind::IllegalUserOrDevice
                || m.contains("does not exist")
                || m.contains("expired")
                || m.contains("illegal device")
        }
        _ => false,
    }
}

async fn flush(ctx: &JobContext, pending: &mut Vec<Value>) -> Result<u64, JobError> {
    if pending.is_empty() {
        return Ok(0);
    }
    let rows = std::mem::take(pending);
    let mut tx = ctx.pool.begin().await?;
    let inserted = positions::insert(&mut tx, rows, "poll").await?;
    tx.commit().await?;
    Ok(inserted)
}

async fn fetch_and_store(
    ctx: &JobContext,
    scope: &TargetScope,
    tally: &mut Tally,
) -> Result<(), JobError> {
    let TargetScope {
        window: w,
        client,
        imeis,
    } = scope;
    info!(devices = imeis.len(), begin = %w.begin, end = %w.end, "track window");
    let mut pending = Vec::new();
    let mut skipped = 0u64;
    let mut failure = None;
    for imei in imeis {
        // No database connection is held across this call.
        match client.track(imei, w.begin, w.end).await {
            Ok(track) => {
                let (rows, rejected) = rows(imei, &track.points, &ctx.guard, Timestamp::now());
                tally.rejected += rejected;
                pending.extend(rows);
                if pending.len() >= FLUSH_ROWS {
                    tally.inserted += flush(ctx, &mut pending).await?;
                }
            }
            Err(e) if device_unavailable(&e) => {
                skipped += 1;
                warn!(imei = %imei, error = %e, "device skipped");
            }
            Err(e) => {
                failure = Some(JobError::from(e));
                break;
            }
        }
    }
    // What was fetched before a failure is stored all the same.
    tally.inserted += flush(ctx, &mut pending).await?;
    if skipped > 0 {
        info!(skipped, "devices without a track");
    }
    failure.map_or(Ok(()), Err)
}

/// Run the job for every target.
pub async fn run(ctx: &JobContext, args: &WindowArgs) -> Vec<TargetOutcome> {
    per_target(ctx, args, JobKind::Track, fetch_and_store).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracksolid::ApiCode;
    use jiff::SignedDuration;

    fn guard() -> Guard {
        Guard {
            not_before: "2026-01-01T00:00:00Z".parse().unwrap_or(Timestamp::MIN),
            max_future: SignedDuration::from_hours(48),
        }
    }

    fn point(json: &str) -> TrackPoint {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    #[test]
    fn rows_keep_real_fixes_in_the_window() {
        let now: Timestamp = "2026-11-28T12:00:00Z".parse().unwrap_or(Timestamp::MIN);
        let points = [
            point(
                r#"{"lat":-1.29,"lng":36.82,"gpsTime":"2026-11-28 11:40:46","direction":"-1","gpsSpeed":-1.0,"posType":5,"satellite":9,"accStatus":"ON","gpsMode":1}"#,
            ),
            point(r#"{"lat":-1.29,"lng":36.82,"gpsTime":"2019-03-18 09:40:46"}"#),
            point(r#"{"lat":-1.29,"lng":36.82,"gpsTime":"2026-12-18 09:40:46"}"#),
            point(r#"{"lat":0,"lng":0,"gpsTime":"2026-11-28 11:41:00"}"#),
            point(r#"{"lat":-1.29,"gpsTime":"2026-11-28 11:41:00"}"#),
            point(r#"{"lat":-1.29,"lng":36.82}"#),
            point(
                r#"{"lat":-1.29,"lng":36.82,"gpsTime":"2026-11-28 11:42:00","gpsSpeed":"41.5","direction":"270.4"}"#,
            ),
        ];
        let (rows, rejected) = rows("868120145233604", &points, &guard(), now);
        assert_eq!(rejected, 5);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["gps_time"], "2026-11-28T11:40:46Z");
        assert_eq!(rows[0]["speed"], Value::Null, "-1 is no speed");
        assert_eq!(rows[0]["direction"], Value::Null, "-1 is no direction");
        assert_eq!(rows[0]["acc"], 1);
        assert_eq!(rows[0]["gps_mode"], 1);
        assert_eq!(rows[0]["satellites"], 9);
        assert_eq!(rows[1]["speed"], 41.5);
        assert_eq!(rows[1]["direction"], 270);
        assert_eq!(rows[1]["imei"], "868120145233604");
    }

    #[test]
    fn only_device_refusals_skip_a_device() {
        let rejected = |code: i64, kind: RejectKind, message: &str| TracksolidError::Rejected {
            method: "jimi.device.track.list".into(),
            code: ApiCode::Num(code),
            kind,
            message: message.into(),
        };
        assert!(device_unavailable(&rejected(
            1002,
            RejectKind::IllegalUserOrDevice,
            "Illegal device"
        )));
        assert!(device_unavailable(&rejected(
            7,
            RejectKind::Other,
            "The device has expired{353419031939627}"
        )));
        assert!(device_unavailable(&rejected(
            7,
            RejectKind::Other,
            "IMEI does not exist{353419031939627}"
        )));
        assert!(!device_unavailable(&rejected(
            1001,
            RejectKind::Parameter,
            "The time range cannot exceed 7 days"
        )));
        assert!(!device_unavailable(&TracksolidError::Transient {
            method: "m".into(),
            cause: crate::tracksolid::TransientCause::HttpStatus(503),
            attempts: 5,
        }));
    }
}
