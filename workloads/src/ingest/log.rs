//! `ingestion_log`: one row per run and target, never a negative count.

use jiff::Timestamp;
use sqlx::PgPool;

pub struct LogRow<'a> {
    pub endpoint: &'a str,
    pub target: &'a str,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub inserted: u64,
    pub rejected: u64,
    pub error: Option<&'a str>,
}

pub async fn write(pool: &PgPool, row: &LogRow<'_>) -> Result<(), sqlx::Error> {
    insert(pool, row, Some(row.target)).await
}

/// A row that belongs to no Tracksolid target (housekeeping): `target` is
/// NULL and `row.target` is ignored.
pub async fn write_untargeted(pool: &PgPool, row: &LogRow<'_>) -> Result<(), sqlx::Error> {
    insert(pool, row, None).await
}

async fn insert(pool: &PgPool, row: &LogRow<'_>, target: Option<&str>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO ingestion_log (endpoint, target, started_at, finished_at, rows_inserted,
                                    rows_rejected, status, error)
         VALUES ($1, $2, $3::timestamptz, $4::timestamptz, $5, $6, $7, $8)",
    )
    .bind(row.endpoint)
    .bind(target)
    .bind(row.started_at.to_string())
    .bind(row.finished_at.to_string())
    // u64 counts come from rows_affected(); they fit i64 and are never negative.
    .bind(i64::try_from(row.inserted).unwrap_or(i64::MAX))
    .bind(i64::try_from(row.rejected).unwrap_or(i64::MAX))
    .bind(if row.error.is_some() { "failed" } else { "ok" })
    .bind(row.error)
    .execute(pool)
    .await?;
    Ok(())
}
