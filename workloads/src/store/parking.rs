//! Writing parking and idling periods: new ones inserted (idempotent on
//! `(imei, kind, start_time)`), known ones only ever lengthened (a stop the
//! API reported while it was still going on gets its later end).

use serde_json::Value;
use sqlx::{Postgres, Transaction};

const INSERT: &str = "
INSERT INTO parking (imei, kind, start_time, end_time, duration_s, lat, lng, address)
SELECT r.imei, r.kind, r.start_time, r.end_time, r.duration_s, r.lat, r.lng, r.address
FROM jsonb_to_recordset($1::jsonb) AS r(imei text, kind text, start_time timestamptz,
     end_time timestamptz, duration_s integer, lat float8, lng float8, address text)
ON CONFLICT (imei, kind, start_time) DO NOTHING";

const LENGTHEN: &str = "
UPDATE parking p SET end_time = r.end_time, duration_s = r.duration_s
FROM jsonb_to_recordset($1::jsonb) AS r(imei text, kind text, start_time timestamptz,
     end_time timestamptz, duration_s integer)
WHERE p.imei = r.imei AND p.kind = r.kind AND p.start_time = r.start_time
  AND r.end_time > coalesce(p.end_time, '-infinity'::timestamptz)";

/// What one write did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    pub inserted: u64,
    pub lengthened: u64,
}

/// Inserts `rows` (JSON objects with the column names above; times as RFC
/// 3339 text) and lengthens known periods that now end later.
pub async fn upsert(
    tx: &mut Transaction<'_, Postgres>,
    rows: Vec<Value>,
) -> Result<Written, sqlx::Error> {
    if rows.is_empty() {
        return Ok(Written::default());
    }
    let rows = Value::Array(rows);
    let lengthened = sqlx::query(LENGTHEN)
        .bind(&rows)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    let inserted = sqlx::query(INSERT)
        .bind(&rows)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok(Written {
        inserted,
        lengthened,
    })
}
