//! Writing GPS fixes, shared by the webhook (source `push`) and the ingest
//! jobs (source `poll`): one multi-row insert into `positions` (idempotent on
//! `(imei, gps_time)`) and the `latest_positions` upsert that only ever moves
//! a device forward in time.

use serde_json::Value;
use sqlx::{Postgres, Transaction};

const POSITIONS: &str = "
INSERT INTO positions (imei, gps_time, lat, lng, speed, direction, altitude, satellites, acc,
                       gps_mode, post_type, status, distance_m, source)
SELECT r.imei, r.gps_time, r.lat, r.lng, r.speed, r.direction, r.altitude, r.satellites, r.acc,
       coalesce(r.gps_mode, 0), r.post_type, r.status, r.distance_m, $2
FROM jsonb_to_recordset($1::jsonb) AS r(imei text, gps_time timestamptz, lat float8, lng float8,
     speed real, direction smallint, altitude real, satellites smallint, acc smallint,
     gps_mode smallint, post_type smallint, status bigint, distance_m bigint)
ON CONFLICT (imei, gps_time) DO NOTHING";

/// Newest fix per device; replaces the stored one only when newer, so a
/// re-uploaded (gpsMode 1) or late point never moves it back.
const LATEST: &str = "
INSERT INTO latest_positions AS lp (imei, gps_time, lat, lng, speed, direction, acc, source)
SELECT DISTINCT ON (r.imei) r.imei, r.gps_time, r.lat, r.lng, r.speed, r.direction, r.acc, $2
FROM jsonb_to_recordset($1::jsonb) AS r(imei text, gps_time timestamptz, lat float8, lng float8,
     speed real, direction smallint, acc smallint)
ORDER BY r.imei, r.gps_time DESC
ON CONFLICT (imei) DO UPDATE
SET gps_time = excluded.gps_time, lat = excluded.lat, lng = excluded.lng, speed = excluded.speed,
    direction = excluded.direction, acc = excluded.acc, source = excluded.source, updated_at = now()
WHERE lp.gps_time < excluded.gps_time";

/// Insert `rows` (JSON objects with the column names above; times as RFC
/// 3339 text) within `tx`. Returns the number of new `positions` rows.
pub async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    rows: Vec<Value>,
    source: &str,
) -> Result<u64, sqlx::Error> {
    if rows.is_empty() {
        return Ok(0);
    }
    let rows = Value::Array(rows);
    let inserted = sqlx::query(POSITIONS)
        .bind(&rows)
        .bind(source)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    sqlx::query(LATEST)
        .bind(&rows)
        .bind(source)
        .execute(&mut **tx)
        .await?;
    Ok(inserted)
}
