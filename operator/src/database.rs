//! The controller's database step, built on [`crate::db`]: connect with the
//! admin Secret, claim the schema and apply the migrations under an advisory
//! lock, converge the four login roles and their privileges, record which
//! endpoints this pipeline schedules, and read their ingest health back. On
//! deletion ([`cleanup`]) the roles are dropped unless `deletionPolicy: Retain`.
//!
//! Every connection is short: one connection per reconcile, with a connect
//! timeout, so an unreachable database never stalls the controller.

use crate::db::error::classify;
use crate::db::{
    self, ApplyReport, DbError, DesiredRoles, DropReport, Endpoint, PipelineRef, SecretString,
    WorkloadRole,
};
use crate::desired::DesiredPipeline;
use fleet_workloads::config::{DatabaseConfig, JobKind};
use fleet_workloads::store::schema::quote_ident;
use sqlx::{Connection, PgConnection};
use std::collections::BTreeMap;

/// The admin login from `database.adminSecretRef` (never logged).
#[derive(Clone)]
pub struct AdminLogin {
    pub username: String,
    pub password: SecretString,
}

impl std::fmt::Debug for AdminLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AdminLogin({}, <redacted>)", self.username)
    }
}

/// Where the pipeline's database is.
pub fn endpoint(config: &DatabaseConfig) -> Endpoint {
    Endpoint {
        host: config.host.clone(),
        port: config.port,
        database: config.name.clone(),
        ssl_mode: config.ssl_mode.clone(),
    }
}

/// Health of one scheduled endpoint, from `v_ingest_health`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointHealth {
    pub endpoint: String,
    pub state: String,
    pub last_run: Option<String>,
    pub last_rows_inserted: Option<i64>,
}

/// How long each endpoint may go without a successful run before it is
/// Stale: about twice its default schedule's period.
pub fn max_age_seconds(job: JobKind) -> i32 {
    match job {
        JobKind::Positions => 10 * 60,
        JobKind::Track => 90 * 60,
        JobKind::Alarms => 20 * 60,
        JobKind::Trips | JobKind::Parking => 3 * 3600,
        JobKind::Devices => 14 * 3600,
        JobKind::Housekeeping => 50 * 3600,
    }
}

/// What the database step found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbState {
    pub schema_version: i64,
    pub health: Vec<EndpointHealth>,
    /// Per role: applied, failed (with SQLSTATE) or in conflict.
    pub roles: ApplyReport,
}

/// Claim and migrate the schema, converge the roles, record the endpoints,
/// read health. `passwords` come from the login Secrets
/// ([`crate::credentials`]).
pub async fn converge(
    desired: &DesiredPipeline,
    login: &AdminLogin,
    pipeline: &PipelineRef,
    passwords: &BTreeMap<WorkloadRole, SecretString>,
) -> Result<DbState, DbError> {
    let schema = desired.config.database.schema.as_str();
    let roles = DesiredRoles::new(pipeline, schema, passwords, &desired.database.roles)?;
    let mut conn = db::connect(
        &endpoint(&desired.config.database),
        &login.username,
        &login.password,
    )
    .await?;
    let result = async {
        let migration = db::migrate(&mut conn, schema, pipeline).await?;
        let report = db::reconcile_roles(&mut conn, &roles).await?;
        record_endpoints(&mut conn, schema, desired).await?;
        let health = read_health(&mut conn, schema).await?;
        Ok(DbState {
            schema_version: migration.version,
            health,
            roles: report,
        })
    }
    .await;
    // Closing releases any advisory lock a failed step left behind.
    if let Err(e) = conn.close().await {
        tracing::debug!(error = %classify(e), "closing the admin connection");
    }
    result
}

/// On deletion (`deletionPolicy: Delete`): drop the pipeline's roles and
/// release its claim on the schema. The schema and its data stay.
pub async fn cleanup(
    config: &DatabaseConfig,
    login: &AdminLogin,
    pipeline: &PipelineRef,
) -> Result<DropReport, DbError> {
    let mut conn = db::connect(&endpoint(config), &login.username, &login.password).await?;
    let result = async {
        let report = db::drop_roles(&mut conn, pipeline, &config.schema).await?;
        if report.is_complete() {
            db::release_claim(&mut conn, &config.schema, pipeline).await?;
        }
        Ok(report)
    }
    .await;
    if let Err(e) = conn.close().await {
        tracing::debug!(error = %classify(e), "closing the admin connection");
    }
    result
}

/// Upsert `pipeline_endpoints`: every job, active when enabled and not suspended.
async fn record_endpoints(
    conn: &mut PgConnection,
    schema: &str,
    desired: &DesiredPipeline,
) -> Result<(), DbError> {
    // The identifier is quoted; values are bound.
    let sql = format!(
        "INSERT INTO {}.pipeline_endpoints AS p (endpoint, active, max_age_seconds)
         VALUES ($1, $2, $3)
         ON CONFLICT (endpoint) DO UPDATE
         SET active = excluded.active, max_age_seconds = excluded.max_age_seconds, updated_at = now()
         WHERE (p.active, p.max_age_seconds)
               IS DISTINCT FROM (excluded.active, excluded.max_age_seconds)",
        quote_ident(schema)
    );
    for job in JobKind::ALL {
        let active = desired.jobs.iter().any(|j| j.kind == job && !j.suspend);
        sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(job.as_str())
            .bind(active)
            .bind(max_age_seconds(job))
            .execute(&mut *conn)
            .await
            .map_err(classify)?;
    }
    Ok(())
}

async fn read_health(
    conn: &mut PgConnection,
    schema: &str,
) -> Result<Vec<EndpointHealth>, DbError> {
    let sql = format!(
        "SELECT endpoint, state,
                to_char(last_run AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                last_rows_inserted
         FROM {}.v_ingest_health ORDER BY endpoint",
        quote_ident(schema)
    );
    let rows: Vec<(String, String, Option<String>, Option<i64>)> =
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut *conn)
            .await
            .map_err(classify)?;
    Ok(rows
        .into_iter()
        .map(
            |(endpoint, state, last_run, last_rows_inserted)| EndpointHealth {
                endpoint,
                state,
                last_run,
                last_rows_inserted,
            },
        )
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_is_never_printed() {
        let login = AdminLogin {
            username: "admin".into(),
            password: SecretString::new("hunter2"),
        };
        assert!(!format!("{login:?}").contains("hunter2"));
    }

    #[test]
    fn stale_limits_exceed_default_periods() {
        for job in JobKind::ALL {
            assert!(max_age_seconds(job) > 60, "{job}");
        }
        assert_eq!(max_age_seconds(JobKind::Positions), 600);
    }
}
