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

/// The `smallint` columns, with the values each may hold. A device that
/// sends a value outside them (a heading of 99999) must not fail the whole
/// batch's cast: that one field is stored as NULL.
const SMALL_INTS: [(&str, i64, i64); 5] = [
    ("direction", 0, 360),
    ("satellites", 0, i16::MAX as i64),
    ("acc", i16::MIN as i64, i16::MAX as i64),
    ("gps_mode", i16::MIN as i64, i16::MAX as i64),
    ("post_type", i16::MIN as i64, i16::MAX as i64),
];

fn null_out_of_range(row: &mut Value) {
    let Some(obj) = row.as_object_mut() else {
        return;
    };
    for (key, min, max) in SMALL_INTS {
        if let Some(v) = obj.get_mut(key) {
            let fits = v.is_null() || v.as_i64().is_some_and(|n| (min..=max).contains(&n));
            if !fits {
                *v = Value::Null;
            }
        }
    }
}

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
    let mut rows = rows;
    rows.iter_mut().for_each(null_out_of_range);
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn out_of_range_small_ints_become_null_and_the_rest_stays() {
        let mut row = json!({"imei": "1", "direction": 99999, "satellites": 12, "acc": 1,
                             "gps_mode": 70000, "post_type": "x", "speed": 1e9});
        null_out_of_range(&mut row);
        assert_eq!(
            row,
            json!({"imei": "1", "direction": null, "satellites": 12, "acc": 1,
                   "gps_mode": null, "post_type": null, "speed": 1e9})
        );
        let mut ok = json!({"direction": 360, "satellites": 0});
        null_out_of_range(&mut ok);
        assert_eq!(ok, json!({"direction": 360, "satellites": 0}));
    }
}
