//! `fleet-ingest parking`: parking (engine off) and idling (engine on)
//! periods from `jimi.open.platform.report.parking` (`acc_type` `off` and
//! `on`), over a look-back long enough to cover the longest stop (see
//! [`super::window`]), in IMEI batches, windows and pages. Inserts are
//! idempotent on `(imei, kind, start_time)`; a known period is only ever
//! lengthened. Periods starting outside the event-time guard are refused
//! and counted.

use super::error::JobError;
use super::outcome::{Tally, TargetScope, per_target};
use super::window::WindowArgs;
use super::{JobContext, TargetOutcome};
use crate::config::JobKind;
use crate::push::Guard;
use crate::store::parking;
use crate::tracksolid::types::{AccType, ParkingRow, is_real_fix};
use jiff::Timestamp;
use serde_json::{Value, json};
use tracing::info;

/// The `kind` column for an `acc_type`.
pub fn kind(acc: AccType) -> &'static str {
    match acc {
        AccType::Parking => "parking",
        AccType::Idling => "idling",
    }
}

/// Rows for the parking table, and how many were refused: no IMEI or
/// start, a start or end outside the event-time guard, or an end before
/// the start.
pub fn rows(acc: AccType, list: &[ParkingRow], guard: &Guard, now: Timestamp) -> (Vec<Value>, u64) {
    let mut rejected = 0;
    let rows = list
        .iter()
        .filter_map(|r| {
            let imei = r.imei.trim();
            let Some(start) = r.start_time else {
                rejected += 1;
                return None;
            };
            let end_ok = r
                .end_time
                .is_none_or(|e| e >= start && guard.check_time(e, now).is_ok());
            if imei.is_empty() || guard.check_time(start, now).is_err() || !end_ok {
                rejected += 1;
                return None;
            }
            let duration = r
                .dur_second
                .or(r.stop_second)
                .or_else(|| r.end_time.map(|e| e.duration_since(start).as_secs()))
                .filter(|d| *d >= 0)
                .and_then(|d| i32::try_from(d).ok());
            let fix = is_real_fix(r.lat, r.lng);
            Some(json!({
                "imei": imei, "kind": kind(acc), "start_time": start.to_string(),
                "end_time": r.end_time.map(|e| e.to_string()), "duration_s": duration,
                "lat": r.lat.filter(|_| fix), "lng": r.lng.filter(|_| fix),
                "address": r.addr.as_deref().map(str::trim).filter(|a| !a.is_empty()),
            }))
        })
        .collect();
    (rows, rejected)
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
    // Fetch both kinds: no database connection is held across the calls.
    let mut all = Vec::new();
    let mut rejected = 0;
    for acc in [AccType::Parking, AccType::Idling] {
        let fetched = client.parking(imeis, w.begin, w.end, acc).await?;
        let (rows, r) = rows(acc, &fetched, &ctx.guard, Timestamp::now());
        info!(kind = kind(acc), fetched = fetched.len(), "periods fetched");
        all.extend(rows);
        rejected += r;
    }
    // One short write.
    let mut tx = ctx.pool.begin().await?;
    let written = parking::upsert(&mut tx, all).await?;
    tx.commit().await?;
    info!(
        devices = imeis.len(),
        begin = %w.begin,
        end = %w.end,
        lengthened = written.lengthened,
        "parking window"
    );
    tally.add(written.inserted, rejected);
    Ok(())
}

/// Run the job for every target.
pub async fn run(ctx: &JobContext, args: &WindowArgs) -> Vec<TargetOutcome> {
    per_target(ctx, args, JobKind::Parking, fetch_and_store).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;

    fn row(json: &str) -> ParkingRow {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    #[test]
    fn rows_from_the_iso_report() {
        let guard = Guard {
            not_before: "2020-01-01T00:00:00Z".parse().unwrap_or(Timestamp::MIN),
            max_future: SignedDuration::from_hours(48),
        };
        let now: Timestamp = "2026-11-28T12:00:00Z".parse().unwrap_or(Timestamp::MIN);
        let list = [
            row(
                r#"{"imei":"869247060001739","startTime":"2026-11-27T01:05:33.000Z","endTime":"2026-11-27T04:17:48.000Z","durSecond":"11535","lng":113.943093,"lat":22.576748,"addr":"Shigu Road","acc":"off","stopSecond":"11535"}"#,
            ),
            row(
                r#"{"imei":"869247060001739","startTime":"2026-11-27T05:00:00.000Z","endTime":"2026-11-27T05:10:00.000Z","lng":0,"lat":0,"addr":" "}"#,
            ),
            row(r#"{"imei":"1","startTime":"2019-12-10T01:05:33.000Z"}"#),
            row(
                r#"{"imei":"1","startTime":"2026-11-27T01:05:33.000Z","endTime":"2026-12-27T01:05:33.000Z"}"#,
            ),
            row(
                r#"{"imei":"1","startTime":"2026-11-27T01:05:33.000Z","endTime":"2026-11-26T01:05:33.000Z"}"#,
            ),
            row(r#"{"imei":"1","endTime":"2026-11-27T01:05:33.000Z"}"#),
        ];
        let (out, rejected) = rows(AccType::Parking, &list, &guard, now);
        assert_eq!(rejected, 4);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0]["kind"], "parking");
        assert_eq!(out[0]["start_time"], "2026-11-27T01:05:33Z");
        assert_eq!(out[0]["end_time"], "2026-11-27T04:17:48Z");
        assert_eq!(out[0]["duration_s"], 11535);
        assert_eq!(out[0]["address"], "Shigu Road");
        assert_eq!(out[1]["duration_s"], 600, "from the times when absent");
        assert_eq!(out[1]["lat"], Value::Null);
        assert_eq!(out[1]["address"], Value::Null);
        let (idle, _) = rows(AccType::Idling, &list[..1], &guard, now);
        assert_eq!(idle[0]["kind"], "idling");
    }
}
