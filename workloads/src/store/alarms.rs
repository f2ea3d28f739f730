//! Writing polled alarms: one multi-row insert, idempotent on the natural
//! key `(imei, alarm_type, alarm_time)` (the same key as pushed alarms, so
//! an alarm both pushed and polled is stored once).

use serde_json::Value;
use sqlx::{Postgres, Transaction};

const ALARMS: &str = "
INSERT INTO alarms (imei, alarm_type, alarm_time, alarm_name, lat, lng, speed, source)
SELECT r.imei, r.alarm_type, r.alarm_time, r.alarm_name, r.lat, r.lng, r.speed, $2
FROM jsonb_to_recordset($1::jsonb) AS r(imei text, alarm_type text, alarm_time timestamptz,
     alarm_name text, lat float8, lng float8, speed real)
ON CONFLICT (imei, alarm_type, alarm_time) DO NOTHING";

/// Inserts `rows` (JSON objects with the column names above; times as RFC
/// 3339 text). Returns the number of new rows.
pub async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    rows: Vec<Value>,
    source: &str,
) -> Result<u64, sqlx::Error> {
    if rows.is_empty() {
        return Ok(0);
    }
    Ok(sqlx::query(ALARMS)
        .bind(Value::Array(rows))
        .bind(source)
        .execute(&mut **tx)
        .await?
        .rows_affected())
}
