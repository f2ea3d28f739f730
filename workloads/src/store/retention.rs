//! Retention and the reporting refresh, as the housekeeping job runs them.
//!
//! The logs are trimmed with a plain `DELETE` (the `_housekeeping` role has
//! DELETE on them); the time series through the `purge_time_series()`
//! SECURITY DEFINER function (drop_chunks on a TimescaleDB hypertable, then
//! DELETE of what is left; plain DELETE without TimescaleDB) and the
//! materialized views through `refresh_reporting()`, which needs ownership
//! (migration 20261128000100). Cut-offs are computed by the server
//! (`now() - interval`), never from our clock.

use sqlx::PgPool;

/// The shortest retention accepted (the SQL function refuses less too).
pub const MIN_RETENTION_SECONDS: u64 = 86_400;
/// Longer retentions are capped here (a century) so the interval is valid.
const MAX_RETENTION_SECONDS: u64 = 100 * 366 * 86_400;

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error("retention of {0} s is shorter than one day; refusing to delete")]
    TooShort(u64),
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
}

/// An append-only log with its time column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogTable {
    IngestionLog,
    RefreshLog,
    PushEvents,
}

impl LogTable {
    pub fn name(self) -> &'static str {
        match self {
            LogTable::IngestionLog => "ingestion_log",
            LogTable::RefreshLog => "refresh_log",
            LogTable::PushEvents => "push_events",
        }
    }

    fn delete_sql(self) -> &'static str {
        match self {
            LogTable::IngestionLog => {
                "DELETE FROM ingestion_log WHERE finished_at < now() - make_interval(secs => $1)"
            }
            LogTable::RefreshLog => {
                "DELETE FROM refresh_log WHERE finished_at < now() - make_interval(secs => $1)"
            }
            LogTable::PushEvents => {
                "DELETE FROM push_events WHERE received_at < now() - make_interval(secs => $1)"
            }
        }
    }
}

/// The retention as the `secs` of `make_interval`, or why it is refused.
pub fn retention_secs(seconds: u64) -> Result<f64, RetentionError> {
    if seconds < MIN_RETENTION_SECONDS {
        return Err(RetentionError::TooShort(seconds));
    }
    // ≤ 3.2e9: exact in an f64.
    Ok(seconds.min(MAX_RETENTION_SECONDS) as f64)
}

/// Deletes rows of `table` older than `seconds`. Returns the rows deleted.
pub async fn delete_older(
    pool: &PgPool,
    table: LogTable,
    seconds: u64,
) -> Result<u64, RetentionError> {
    let secs = retention_secs(seconds)?;
    Ok(sqlx::query(table.delete_sql())
        .bind(secs)
        .execute(pool)
        .await?
        .rows_affected())
}

/// What `purge_time_series()` did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub chunks_dropped: i32,
    pub rows_deleted: i64,
}

/// Purges one time-series table (`positions`, `alarms`, `heartbeats`) of
/// rows older than `seconds`.
pub async fn purge_time_series(
    pool: &PgPool,
    relation: &str,
    seconds: u64,
) -> Result<Purged, RetentionError> {
    let secs = retention_secs(seconds)?;
    let (chunks_dropped, rows_deleted): (Option<i32>, Option<i64>) = sqlx::query_as(
        "SELECT chunks_dropped, rows_deleted
         FROM purge_time_series($1, now() - make_interval(secs => $2))",
    )
    .bind(relation)
    .bind(secs)
    .fetch_one(pool)
    .await?;
    Ok(Purged {
        chunks_dropped: chunks_dropped.unwrap_or(0),
        rows_deleted: rows_deleted.unwrap_or(0),
    })
}

/// One refresh as `refresh_reporting()` reports (and logs in refresh_log) it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refreshed {
    pub object: String,
    pub ok: bool,
    pub error: Option<String>,
}

/// Refreshes every reporting materialized view (concurrently).
pub async fn refresh_reporting(pool: &PgPool) -> Result<Vec<Refreshed>, sqlx::Error> {
    let rows: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT object, status, error FROM refresh_reporting()")
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(object, status, error)| Refreshed {
            object,
            ok: status == "ok",
            error,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retentions_shorter_than_a_day_are_refused() {
        assert!(matches!(
            retention_secs(0),
            Err(RetentionError::TooShort(0))
        ));
        assert!(retention_secs(86_399).is_err());
        assert_eq!(retention_secs(86_400).unwrap(), 86_400.0);
        assert_eq!(
            retention_secs(u64::MAX).unwrap(),
            MAX_RETENTION_SECONDS as f64
        );
    }
}
