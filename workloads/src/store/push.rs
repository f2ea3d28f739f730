//! The webhook's PostgreSQL store: one short transaction per push batch,
//! multi-row inserts (`jsonb_to_recordset`), idempotent on natural keys, and
//! a latest-position upsert that never moves backwards in time.

use crate::push::Event;
use crate::webhook::store::{Batch, PushStore, StoreError, Stored};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use sqlx::{PgPool, Postgres, Transaction};

pub struct PgPushStore {
    pool: PgPool,
}

impl PgPushStore {
    pub fn new(pool: PgPool) -> Self {
        PgPushStore { pool }
    }
}

fn db_err(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
            StoreError::Unavailable(e.to_string())
        }
        other => StoreError::Write(other.to_string()),
    }
}

const PUSH_EVENTS: &str = "
INSERT INTO push_events (received_at, kind, imei, payload, payload_hash, rejected)
SELECT $2::timestamptz, r.kind, r.imei, r.payload, md5(r.payload::text), r.rejected
FROM jsonb_to_recordset($1::jsonb) AS r(kind text, imei text, payload jsonb, rejected text)
ON CONFLICT (kind, payload_hash) DO NOTHING";

const ALARMS: &str = "
INSERT INTO alarms (imei, alarm_type, alarm_time, alarm_name, lat, lng, speed, msg_class, source)
SELECT r.imei, r.alarm_type, r.alarm_time, r.alarm_name, r.lat, r.lng, r.speed, r.msg_class, 'push'
FROM jsonb_to_recordset($1::jsonb) AS r(imei text, alarm_type text, alarm_time timestamptz,
     alarm_name text, lat float8, lng float8, speed real, msg_class smallint)
ON CONFLICT (imei, alarm_type, alarm_time) DO NOTHING";

const HEARTBEATS: &str = "
INSERT INTO heartbeats (imei, gate_time, power_level, gsm_sign, acc, oil_ele, gps_pos, power_status, fortify)
SELECT r.imei, r.gate_time, r.power_level, r.gsm_sign, r.acc, r.oil_ele, r.gps_pos, r.power_status, r.fortify
FROM jsonb_to_recordset($1::jsonb) AS r(imei text, gate_time timestamptz, power_level smallint,
     gsm_sign smallint, acc smallint, oil_ele smallint, gps_pos smallint, power_status smallint,
     fortify smallint)
ON CONFLICT (imei, gate_time) DO NOTHING";

async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    sql: &'static str,
    rows: Vec<Value>,
) -> Result<u64, sqlx::Error> {
    if rows.is_empty() {
        return Ok(0);
    }
    Ok(sqlx::query(sql)
        .bind(Value::Array(rows))
        .execute(&mut **tx)
        .await?
        .rows_affected())
}

/// The batch as one JSON row set per table.
fn rows(batch: &Batch) -> (Vec<Value>, Vec<Value>, Vec<Value>, Vec<Value>) {
    let (mut raw, mut positions, mut alarms, mut heartbeats) = (vec![], vec![], vec![], vec![]);
    for item in &batch.items {
        raw.push(json!({
            "kind": batch.kind.name(),
            "imei": item.imei,
            "payload": item.raw,
            "rejected": item.rejected,
        }));
        if item.rejected.is_some() {
            continue;
        }
        match &item.event {
            Some(Event::Gps(g)) => positions.push(json!({
                "imei": g.imei, "gps_time": g.gps_time.to_string(), "lat": g.lat, "lng": g.lng,
                "speed": g.speed, "direction": g.direction, "altitude": g.altitude,
                "satellites": g.satellites, "acc": g.acc, "gps_mode": g.gps_mode,
                "post_type": g.post_type, "status": g.status, "distance_m": g.distance,
            })),
            Some(Event::Alarm(a)) => alarms.push(json!({
                "imei": a.imei, "alarm_type": a.alarm_type, "alarm_time": a.alarm_time.to_string(),
                "alarm_name": a.alarm_name, "lat": a.lat, "lng": a.lng, "speed": a.speed,
                "msg_class": a.msg_class,
            })),
            Some(Event::Heartbeat(h)) => heartbeats.push(json!({
                "imei": h.imei, "gate_time": h.gate_time.to_string(), "power_level": h.power_level,
                "gsm_sign": h.gsm_sign, "acc": h.acc, "oil_ele": h.oil_ele, "gps_pos": h.gps_pos,
                "power_status": h.power_status, "fortify": h.fortify,
            })),
            Some(Event::Raw) | None => {}
        }
    }
    (raw, positions, alarms, heartbeats)
}

impl PushStore for PgPushStore {
    fn store<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Result<Stored, StoreError>> {
        Box::pin(async move {
            let (raw, positions, alarms, heartbeats) = rows(batch);
            let mut tx = self.pool.begin().await.map_err(db_err)?;
            let raw_n = if raw.is_empty() {
                0
            } else {
                sqlx::query(PUSH_EVENTS)
                    .bind(Value::Array(raw))
                    .bind(batch.received_at.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?
                    .rows_affected()
            };
            let positions_n = super::positions::insert(&mut tx, positions, "push")
                .await
                .map_err(db_err)?;
            let alarms_n = insert(&mut tx, ALARMS, alarms).await.map_err(db_err)?;
            let heartbeats_n = insert(&mut tx, HEARTBEATS, heartbeats)
                .await
                .map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            Ok(Stored {
                raw: raw_n,
                positions: positions_n,
                alarms: alarms_n,
                heartbeats: heartbeats_n,
            })
        })
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            sqlx::query("SELECT 1")
                .execute(&self.pool)
                .await
                .map(|_| ())
                .map_err(db_err)
        })
    }

    fn ingest_health(&self) -> BoxFuture<'_, Result<Value, StoreError>> {
        Box::pin(async move {
            let (v,): (Option<Value>,) = sqlx::query_as(
                "SELECT json_agg(row_to_json(h) ORDER BY h.endpoint)::jsonb FROM v_ingest_health h",
            )
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
            Ok(json!({ "endpoints": v.unwrap_or_else(|| json!([])) }))
        })
    }
}
