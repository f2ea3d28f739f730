//! `ingestion_log`: one row per run and target, never a negative count.
//!
//! The row is the run's record for the controller's health check, failed
//! runs included, so it is written even when the database blinked: a write
//! that could not get a connection (the pool timed out: the statement was
//! never sent, so a retry cannot duplicate it) is tried again, with back-off,
//! for up to [`RETRY_FOR`]. Any other error is returned at once.

use jiff::Timestamp;
use sqlx::PgPool;
use std::time::{Duration, Instant};

/// How long a log write waits for the database to come back.
pub const RETRY_FOR: Duration = Duration::from_secs(30);

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
    let started = Instant::now();
    let mut delay = Duration::from_millis(250);
    loop {
        match insert_once(pool, row, target).await {
            Err(sqlx::Error::PoolTimedOut) if started.elapsed() + delay < RETRY_FOR => {
                tracing::warn!(
                    target = row.target,
                    retry_in_ms = delay.as_millis() as u64,
                    "ingestion_log: no database connection; retrying"
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            other => return other,
        }
    }
}

async fn insert_once(
    pool: &PgPool,
    row: &LogRow<'_>,
    target: Option<&str>,
) -> Result<(), sqlx::Error> {
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
