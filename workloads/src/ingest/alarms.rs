//! `fleet-ingest alarms`: `jimi.device.alarm.list` over an overlapping
//! look-back (see [`super::window`]). The client asks in IMEI batches of at
//! most 100, windows of at most 7 days (the API allows a month) and pages of
//! 100, and halves any window that reaches the 1000-row cap. Inserts are
//! idempotent on `(imei, alarm_type, alarm_time)`; alarms stamped outside
//! the event-time guard are refused and counted.

use super::error::JobError;
use super::outcome::{Tally, TargetScope, per_target};
use super::window::WindowArgs;
use super::{JobContext, TargetOutcome};
use crate::config::JobKind;
use crate::push::Guard;
use crate::store::alarms;
use crate::tracksolid::types::{Alarm, is_real_fix};
use jiff::Timestamp;
use serde_json::{Value, json};
use tracing::{info, warn};

/// Rows for the alarms table, and how many alarms were refused: no IMEI,
/// type or time, or a time outside the event-time guard. An alarm without
/// a real fix ((0,0) from an expired device) is still an alarm: it is kept
/// without coordinates.
pub fn rows(list: &[Alarm], guard: &Guard, now: Timestamp) -> (Vec<Value>, u64) {
    let mut rejected = 0;
    let rows = list
        .iter()
        .filter_map(|a| {
            let imei = a.imei.trim();
            let kind = a.alert_type_id.trim();
            let Some(at) = a.alert_time else {
                rejected += 1;
                return None;
            };
            if imei.is_empty() || kind.is_empty() || guard.check_time(at, now).is_err() {
                rejected += 1;
                return None;
            }
            let fix = is_real_fix(a.lat, a.lng);
            Some(json!({
                "imei": imei, "alarm_type": kind, "alarm_time": at.to_string(),
                "alarm_name": a.alarm_type_name,
                "lat": a.lat.filter(|_| fix), "lng": a.lng.filter(|_| fix),
                "speed": a.speed.filter(|s| *s >= 0.0),
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
    // Fetch: no database connection is held across the network calls.
    let scan = client.alarms(imeis, w.begin, w.end).await?;
    if !scan.truncated.is_empty() {
        warn!(
            windows = scan.truncated.len(),
            "windows still at the 1000-row cap at the smallest split: some alarms may be missing"
        );
    }
    let (rows, rejected) = rows(&scan.alarms, &ctx.guard, Timestamp::now());
    info!(devices = imeis.len(), begin = %w.begin, end = %w.end, fetched = scan.alarms.len(), "alarms fetched");
    // One short write.
    let mut tx = ctx.pool.begin().await?;
    let inserted = alarms::insert(&mut tx, rows, "poll").await?;
    tx.commit().await?;
    tally.add(inserted, rejected);
    Ok(())
}

/// Run the job for every target.
pub async fn run(ctx: &JobContext, args: &WindowArgs) -> Vec<TargetOutcome> {
    per_target(ctx, args, JobKind::Alarms, fetch_and_store).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;

    fn alarm(json: &str) -> Alarm {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    #[test]
    fn rows_keep_alarms_in_the_window() {
        let guard = Guard {
            not_before: "2026-01-01T00:00:00Z".parse().unwrap_or(Timestamp::MIN),
            max_future: SignedDuration::from_hours(48),
        };
        let now: Timestamp = "2026-11-28T12:00:00Z".parse().unwrap_or(Timestamp::MIN);
        let list = [
            alarm(
                r#"{"imei":"343503422910345","alertTypeId":"1002","alarmTypeName":"ACC On","alertTime":"2026-11-28 11:02:03","lat":22.57,"lng":113.91,"speed":"10"}"#,
            ),
            alarm(
                r#"{"imei":"343503422910345","alertTypeId":1,"alertTypeName":"SOS","alertTime":"2026-11-28 11:05:00","lat":0,"lng":0}"#,
            ),
            alarm(r#"{"imei":"1","alertTypeId":"overSpeed","alertTime":"2019-03-14 14:02:03"}"#),
            alarm(r#"{"imei":"1","alertTypeId":"overSpeed","alertTime":"2026-12-14 14:02:03"}"#),
            alarm(r#"{"imei":"1","alertTypeId":"overSpeed"}"#),
            alarm(r#"{"imei":"1","alertTypeId":"","alertTime":"2026-11-28 11:05:00"}"#),
            alarm(r#"{"imei":" ","alertTypeId":"1","alertTime":"2026-11-28 11:05:00"}"#),
        ];
        let (rows, rejected) = rows(&list, &guard, now);
        assert_eq!(rejected, 5);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["alarm_type"], "1002");
        assert_eq!(rows[0]["alarm_name"], "ACC On");
        assert_eq!(rows[0]["alarm_time"], "2026-11-28T11:02:03Z");
        assert_eq!(rows[0]["speed"], 10.0);
        assert_eq!(rows[0]["lat"], 22.57);
        assert_eq!(rows[1]["alarm_type"], "1");
        assert_eq!(rows[1]["alarm_name"], "SOS");
        assert_eq!(rows[1]["lat"], Value::Null, "(0,0) is no position");
        assert_eq!(rows[1]["lng"], Value::Null);
    }
}
