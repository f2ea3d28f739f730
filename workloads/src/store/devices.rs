//! Writing the device list: new devices inserted, known ones refreshed
//! (name, model, account, attributes, `last_seen`), and the fleet-wide
//! enable/disable step that the `devices` job runs only when every target
//! answered.

use serde_json::Value;
use sqlx::{Postgres, Transaction};

const INSERT: &str = "
INSERT INTO devices (imei, target, name, model, attributes)
SELECT r.imei, $2, r.name, r.model, coalesce(r.attributes, '{}'::jsonb)
FROM jsonb_to_recordset($1::jsonb) AS r(imei text, name text, model text, attributes jsonb)
ON CONFLICT (imei) DO NOTHING";

const REFRESH: &str = "
UPDATE devices d
SET target = $2, name = r.name, model = r.model,
    attributes = coalesce(r.attributes, '{}'::jsonb), last_seen = now()
FROM jsonb_to_recordset($1::jsonb) AS r(imei text, name text, model text, attributes jsonb)
WHERE d.imei = r.imei";

const DISABLE: &str = "
UPDATE devices SET enabled = false, disabled_at = now()
WHERE enabled AND NOT (imei = ANY($1::text[]))";

const ENABLE: &str = "
UPDATE devices SET enabled = true, disabled_at = NULL
WHERE NOT enabled AND imei = ANY($1::text[])";

/// Upserts one target's devices (JSON objects `imei`, `name`, `model`,
/// `attributes`). Returns the number of devices new to the table.
pub async fn upsert(
    tx: &mut Transaction<'_, Postgres>,
    target: &str,
    rows: Vec<Value>,
) -> Result<u64, sqlx::Error> {
    if rows.is_empty() {
        return Ok(0);
    }
    let rows = Value::Array(rows);
    let inserted = sqlx::query(INSERT)
        .bind(&rows)
        .bind(target)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    sqlx::query(REFRESH)
        .bind(&rows)
        .bind(target)
        .execute(&mut **tx)
        .await?;
    Ok(inserted)
}

/// What the membership step changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Membership {
    pub disabled: u64,
    pub enabled: u64,
}

/// Disables every enabled device not in `present` and re-enables every
/// disabled one that is. The caller decides whether `present` is complete.
pub async fn apply_membership(
    tx: &mut Transaction<'_, Postgres>,
    present: &[String],
) -> Result<Membership, sqlx::Error> {
    let disabled = sqlx::query(DISABLE)
        .bind(present)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    let enabled = sqlx::query(ENABLE)
        .bind(present)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok(Membership { disabled, enabled })
}
