//! Trips in the database: the enrichment read (what is stored already, and
//! the device's positions during each new trip) and the idempotent write.

use crate::ingest::trips::plan::{Known, TripRow};
use serde_json::{Value, json};
use sqlx::PgConnection;

/// One query for every fetched trip, by its index `i`: whether it is stored
/// (and which addresses and points it has), and for trips not stored yet the
/// count, top speed, first and last fix of the device's stored positions
/// between start and end (primary-key range scans on positions).
const KNOWN: &str = "
SELECT r.i,
       t.imei IS NOT NULL              AS stored,
       t.start_address IS NOT NULL     AS has_start_address,
       t.end_address IS NOT NULL       AS has_end_address,
       t.start_lat, t.start_lng, t.end_lat, t.end_lng,
       coalesce(s.points, 0)           AS points,
       s.max_speed,
       f.lat AS first_lat, f.lng AS first_lng,
       l.lat AS last_lat, l.lng AS last_lng
FROM jsonb_to_recordset($1::jsonb) AS r(i int4, imei text, start_time timestamptz, end_time timestamptz)
LEFT JOIN trips t ON t.imei = r.imei AND t.start_time = r.start_time
LEFT JOIN LATERAL (
    SELECT count(*) AS points, max(p.speed) AS max_speed
    FROM positions p
    WHERE t.imei IS NULL AND p.imei = r.imei AND p.gps_time BETWEEN r.start_time AND r.end_time
) s ON true
LEFT JOIN LATERAL (
    SELECT p.lat, p.lng FROM positions p
    WHERE t.imei IS NULL AND p.imei = r.imei AND p.gps_time BETWEEN r.start_time AND r.end_time
    ORDER BY p.gps_time ASC LIMIT 1
) f ON true
LEFT JOIN LATERAL (
    SELECT p.lat, p.lng FROM positions p
    WHERE t.imei IS NULL AND p.imei = r.imei AND p.gps_time BETWEEN r.start_time AND r.end_time
    ORDER BY p.gps_time DESC LIMIT 1
) l ON true";

#[derive(sqlx::FromRow)]
struct KnownRow {
    i: i32,
    stored: bool,
    has_start_address: bool,
    has_end_address: bool,
    start_lat: Option<f64>,
    start_lng: Option<f64>,
    end_lat: Option<f64>,
    end_lng: Option<f64>,
    points: i64,
    max_speed: Option<f32>,
    first_lat: Option<f64>,
    first_lng: Option<f64>,
    last_lat: Option<f64>,
    last_lng: Option<f64>,
}

fn pair(a: Option<f64>, b: Option<f64>) -> Option<(f64, f64)> {
    Some((a?, b?))
}

/// What the database knows about each of `rows`, in the same order.
pub async fn known(conn: &mut PgConnection, rows: &[TripRow]) -> Result<Vec<Known>, sqlx::Error> {
    let mut out = vec![Known::default(); rows.len()];
    if rows.is_empty() {
        return Ok(out);
    }
    let keys: Vec<Value> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            json!({"i": i, "imei": r.imei, "start_time": r.start_time.to_string(),
                   "end_time": r.end_time.to_string()})
        })
        .collect();
    let found: Vec<KnownRow> = sqlx::query_as(KNOWN)
        .bind(Value::Array(keys))
        .fetch_all(conn)
        .await?;
    for k in found {
        let Some(slot) = usize::try_from(k.i).ok().and_then(|i| out.get_mut(i)) else {
            continue;
        };
        *slot = Known {
            stored: k.stored,
            has_start_address: k.has_start_address,
            has_end_address: k.has_end_address,
            stored_start: pair(k.start_lat, k.start_lng),
            stored_end: pair(k.end_lat, k.end_lng),
            points: k.points,
            max_speed: k.max_speed,
            first_fix: pair(k.first_lat, k.first_lng),
            last_fix: pair(k.last_lat, k.last_lng),
        };
    }
    Ok(out)
}

const INSERT: &str = "
INSERT INTO trips (imei, start_time, end_time, distance_m, duration_s, avg_speed, max_speed,
                   start_lat, start_lng, end_lat, end_lng, start_address, end_address)
SELECT r.imei, r.start_time, r.end_time, r.distance_m, r.duration_s, r.avg_speed, r.max_speed,
       r.start_lat, r.start_lng, r.end_lat, r.end_lng, r.start_address, r.end_address
FROM jsonb_to_recordset($1::jsonb) AS r(imei text, start_time timestamptz, end_time timestamptz,
     distance_m bigint, duration_s int4, avg_speed real, max_speed real, start_lat float8,
     start_lng float8, end_lat float8, end_lng float8, start_address text, end_address text)
ON CONFLICT (imei, start_time) DO NOTHING";

/// Inserts new trips (a trip stored meanwhile is left alone). Returns the
/// rows inserted.
pub async fn insert(conn: &mut PgConnection, rows: &[TripRow]) -> Result<u64, sqlx::Error> {
    if rows.is_empty() {
        return Ok(0);
    }
    let rows = Value::Array(rows.iter().map(TripRow::to_json).collect());
    Ok(sqlx::query(INSERT)
        .bind(rows)
        .execute(conn)
        .await?
        .rows_affected())
}

const FILL: &str = "
UPDATE trips t
SET start_address = coalesce(t.start_address, r.start_address),
    end_address = coalesce(t.end_address, r.end_address)
FROM jsonb_to_recordset($1::jsonb) AS r(imei text, start_time timestamptz,
     start_address text, end_address text)
WHERE t.imei = r.imei AND t.start_time = r.start_time
  AND ((t.start_address IS NULL AND r.start_address IS NOT NULL)
       OR (t.end_address IS NULL AND r.end_address IS NOT NULL))";

/// Fills addresses still missing on stored trips (never overwrites one).
/// Returns the trips updated.
pub async fn fill_addresses(conn: &mut PgConnection, rows: &[TripRow]) -> Result<u64, sqlx::Error> {
    let rows: Vec<Value> = rows
        .iter()
        .filter(|r| r.start_address.is_some() || r.end_address.is_some())
        .map(TripRow::to_json)
        .collect();
    if rows.is_empty() {
        return Ok(0);
    }
    Ok(sqlx::query(FILL)
        .bind(Value::Array(rows))
        .execute(conn)
        .await?
        .rows_affected())
}
