//! The pipeline's database, as the operator sees it: connect with the admin
//! Secret, claim the schema for this pipeline (a second FleetPipeline claiming
//! the same database and schema is refused and changes nothing), apply the
//! migrations (`migrations/`, under sqlx's advisory lock), record which
//! endpoints this pipeline schedules, and read their ingest health back.
//!
//! Every connection is short: one pool of one connection per reconcile, with
//! a connect timeout, so an unreachable database never stalls the controller.

use crate::desired::DesiredPipeline;
use fleet_workloads::config::JobKind;
use fleet_workloads::store::schema::{self, quote_ident};
use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use std::str::FromStr;
use std::time::Duration;
use thiserror::Error;

/// The admin login from `database.adminSecretRef` (never logged).
#[derive(Clone)]
pub struct AdminLogin {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for AdminLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AdminLogin({}, <redacted>)", self.username)
    }
}

/// Why the database is not ready; each is a stable condition reason.
#[derive(Clone, Debug, Error)]
pub enum DbError {
    #[error("cannot reach the database: {0}")]
    Unreachable(String),
    #[error("the database refused the admin login from database.adminSecretRef")]
    AuthFailed,
    #[error("schema {schema:?} is claimed by FleetPipeline {owner}; nothing was changed")]
    SchemaClaimed { schema: String, owner: String },
    #[error("migration failed: {0}")]
    MigrationFailed(String),
    #[error("database error (SQLSTATE {code}): {message}")]
    Sql { code: String, message: String },
}

impl DbError {
    pub fn reason(&self) -> &'static str {
        match self {
            DbError::Unreachable(_) => "Unreachable",
            DbError::AuthFailed => "AuthFailed",
            DbError::SchemaClaimed { .. } => "SchemaClaimed",
            DbError::MigrationFailed(_) => "MigrationFailed",
            DbError::Sql { .. } => "DatabaseError",
        }
    }
}

fn classify(e: sqlx::Error) -> DbError {
    match &e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            match code.as_str() {
                // invalid_password, invalid_authorization_specification
                "28P01" | "28000" => DbError::AuthFailed,
                // cannot_connect_now, too_many_connections, database does not exist
                "57P03" | "53300" | "3D000" => DbError::Unreachable(db.message().to_owned()),
                _ => DbError::Sql {
                    code,
                    message: db.message().to_owned(),
                },
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed => DbError::Unreachable(e.to_string()),
        _ => DbError::Unreachable(e.to_string()),
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

/// What the database step found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbState {
    pub schema_version: i64,
    pub health: Vec<EndpointHealth>,
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

/// Who owns a schema: `namespace/name` and uid of a FleetPipeline.
#[derive(Clone, Debug)]
pub struct Claimant {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

fn options(desired: &DesiredPipeline, login: &AdminLogin) -> PgConnectOptions {
    let db = &desired.config.database;
    PgConnectOptions::new()
        .host(&db.host)
        .port(db.port)
        .database(&db.name)
        .username(&login.username)
        .password(&login.password)
        .ssl_mode(PgSslMode::from_str(&db.ssl_mode).unwrap_or(PgSslMode::Prefer))
        .application_name("fleet-operator")
        .options([("search_path", db.schema.as_str())])
        .disable_statement_logging()
}

/// Claim, migrate, record endpoints, read health.
pub async fn converge(
    desired: &DesiredPipeline,
    login: &AdminLogin,
    claimant: &Claimant,
) -> Result<DbState, DbError> {
    let schema_name = desired.config.database.schema.clone();
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options(desired, login))
        .await
        .map_err(classify)?;
    let result = async {
        claim(&pool, &schema_name, claimant).await?;
        let version = schema::migrate(&pool, &schema_name)
            .await
            .map_err(|e| match e {
                fleet_workloads::store::DbError::Sql(e) => classify(e),
                other => DbError::MigrationFailed(other.to_string()),
            })?;
        record_endpoints(&pool, desired).await?;
        let health = read_health(&pool).await?;
        Ok(DbState {
            schema_version: version,
            health,
        })
    }
    .await;
    pool.close().await;
    result
}

/// Create the schema and its claim row, or find who holds it.
async fn claim(pool: &sqlx::PgPool, schema_name: &str, me: &Claimant) -> Result<(), DbError> {
    let q = quote_ident(schema_name);
    let mut tx = pool.begin().await.map_err(classify)?;
    for ddl in [
        format!("CREATE SCHEMA IF NOT EXISTS {q}"),
        format!(
            "CREATE TABLE IF NOT EXISTS {q}.fleetops_claim (
                 singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
                 namespace text NOT NULL, name text NOT NULL, uid text NOT NULL,
                 claimed_at timestamptz NOT NULL DEFAULT now())"
        ),
    ] {
        // Identifiers are quoted; DDL takes no bind parameters.
        sqlx::query(sqlx::AssertSqlSafe(ddl))
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
    }
    sqlx::query(
        "INSERT INTO fleetops_claim (namespace, name, uid) VALUES ($1, $2, $3)
         ON CONFLICT (singleton) DO NOTHING",
    )
    .bind(&me.namespace)
    .bind(&me.name)
    .bind(&me.uid)
    .execute(&mut *tx)
    .await
    .map_err(classify)?;
    let (ns, name, uid): (String, String, String) =
        sqlx::query_as("SELECT namespace, name, uid FROM fleetops_claim")
            .fetch_one(&mut *tx)
            .await
            .map_err(classify)?;
    tx.commit().await.map_err(classify)?;
    if uid != me.uid {
        return Err(DbError::SchemaClaimed {
            schema: schema_name.to_owned(),
            owner: format!("{ns}/{name}"),
        });
    }
    Ok(())
}

/// Upsert `pipeline_endpoints`: every job, active when enabled and not suspended.
async fn record_endpoints(pool: &sqlx::PgPool, desired: &DesiredPipeline) -> Result<(), DbError> {
    for job in JobKind::ALL {
        let active = desired.jobs.iter().any(|j| j.kind == job && !j.suspend);
        sqlx::query(
            "INSERT INTO pipeline_endpoints (endpoint, active, max_age_seconds) VALUES ($1, $2, $3)
             ON CONFLICT (endpoint) DO UPDATE
             SET active = excluded.active, max_age_seconds = excluded.max_age_seconds, updated_at = now()
             WHERE (pipeline_endpoints.active, pipeline_endpoints.max_age_seconds)
                   IS DISTINCT FROM (excluded.active, excluded.max_age_seconds)",
        )
        .bind(job.as_str())
        .bind(active)
        .bind(max_age_seconds(job))
        .execute(pool)
        .await
        .map_err(classify)?;
    }
    Ok(())
}

async fn read_health(pool: &sqlx::PgPool) -> Result<Vec<EndpointHealth>, DbError> {
    let rows: Vec<(String, String, Option<String>, Option<i64>)> = sqlx::query_as(
        "SELECT endpoint, state,
                to_char(last_run AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                last_rows_inserted
         FROM v_ingest_health ORDER BY endpoint",
    )
    .fetch_all(pool)
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
            password: "hunter2".into(),
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
