//! The database layer of a pipeline, as the operator drives it:
//!
//! * [`mod@migrate`] — claim the schema for one FleetPipeline and apply
//!   `migrations/` into it under an advisory lock; report the version.
//! * [`roles`] / [`privileges`] — the four login roles (`_ingest`, `_webhook`,
//!   `_housekeeping`, `_reader`) and exactly the privileges each needs.
//! * [`catalog`] → [`mod@plan`] → [`mod@apply`] — observe the catalog, plan the
//!   ordered steps (pure), execute them per role; extra privileges found are
//!   revoked. [`reconcile_roles`] does all three under a lock.
//! * [`mod@drop`] — drop the roles when the pipeline is deleted (unless Retain).
//! * [`password`] — generated passwords, sent as SCRAM verifiers.
//!
//! Statements are never logged (connections from [`connect`] have sqlx
//! statement logging off) and errors carry SQLSTATEs and names, never SQL
//! text or passwords.
//!
//! A reconcile, with one dedicated connection (session advisory locks live
//! on it; closing it releases them even if a future is dropped midway):
//!
//! ```text
//! let mut conn = db::connect(&endpoint, &admin_user, &admin_password).await?;
//! let m = db::migrate(&mut conn, schema, &pipeline).await?;          // status.schemaVersion = m.version
//! let desired = DesiredRoles::new(&pipeline, schema, &passwords, &overrides)?;
//! let report = db::reconcile_roles(&mut conn, &desired).await?;       // status.roles = report.role_statuses()
//! // on delete, unless Retain:
//! db::drop_roles(&mut conn, &pipeline, schema).await?;
//! db::release_claim(&mut conn, schema, &pipeline).await?;
//! ```

pub mod apply;
pub mod catalog;
pub mod drop;
pub mod error;
pub mod ident;
pub mod migrate;
pub mod password;
pub mod plan;
pub mod privileges;
pub mod roles;
pub mod secret;

pub use apply::{ApplyReport, RoleError, RoleFailure, RoleOutcome, apply, reconcile_roles};
pub use catalog::{ObservedCatalog, observe};
pub use drop::{DropReport, drop_roles};
pub use error::{DbError, SqlClass, SqlError};
pub use migrate::{MigrationReport, migrate, release_claim};
pub use plan::{Action, plan};
pub use privileges::{Privilege, WorkloadRole};
pub use roles::{DesiredRoles, PipelineRef, RoleOverrides, role_name, role_prefix};
pub use secret::SecretString;

use error::classify;
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::{ConnectOptions, PgConnection};
use std::str::FromStr;
use std::time::{Duration, Instant};

/// How long a connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long to wait for another reconcile's advisory lock.
pub const LOCK_WAIT: Duration = Duration::from_secs(120);

/// Where the pipeline's database is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub database: String,
    /// libpq `sslmode` (`prefer` when unknown).
    pub ssl_mode: String,
}

/// Connection options for a login at `endpoint`, with sqlx statement
/// logging off (DDL carries password verifiers). Not public: sqlx's
/// `PgConnectOptions` prints the password in its `Debug` output.
fn connect_options(
    endpoint: &Endpoint,
    username: &str,
    password: &SecretString,
) -> PgConnectOptions {
    PgConnectOptions::new()
        .host(&endpoint.host)
        .port(endpoint.port)
        .database(&endpoint.database)
        .username(username)
        .password(password.expose())
        .ssl_mode(PgSslMode::from_str(&endpoint.ssl_mode).unwrap_or(PgSslMode::Prefer))
        .application_name("fleet-operator")
        .disable_statement_logging()
}

/// One connection as `username` (the admin login from
/// `database.adminSecretRef`), with a timeout; errors classified
/// (Unreachable, AuthFailed).
#[tracing::instrument(skip(password), fields(host = %endpoint.host, database = %endpoint.database))]
pub async fn connect(
    endpoint: &Endpoint,
    username: &str,
    password: &SecretString,
) -> Result<PgConnection, DbError> {
    let options = connect_options(endpoint, username, password);
    match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(classify(e)),
        Err(_) => Err(DbError::Unreachable(format!(
            "no connection within {}s",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

/// The advisory-lock key [`migrate()`] holds while it claims and migrates
/// `schema` (per database).
pub fn schema_lock_key(schema: &str) -> i64 {
    lock_key("fleetops-schema", schema)
}

/// A stable advisory-lock key for `tag:value`.
pub(crate) fn lock_key(tag: &str, value: &str) -> i64 {
    let digest = Sha256::digest(format!("{tag}:{value}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// Take a session advisory lock, polling so a stuck holder cannot hang the
/// caller for more than [`LOCK_WAIT`].
pub(crate) async fn advisory_lock(conn: &mut PgConnection, key: i64) -> Result<(), DbError> {
    let start = Instant::now();
    loop {
        let (got,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut *conn)
            .await
            .map_err(classify)?;
        if got {
            return Ok(());
        }
        if start.elapsed() > LOCK_WAIT {
            return Err(DbError::Sql(SqlError::new(
                "55P03",
                "another reconcile holds the lock for this schema; try again later",
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Release it (best effort: a broken connection has released it already).
pub(crate) async fn advisory_unlock(conn: &mut PgConnection, key: i64) {
    if let Err(e) = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(key)
        .execute(&mut *conn)
        .await
    {
        tracing::debug!(error = %classify(e), "advisory unlock failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable_and_distinct() {
        assert_eq!(lock_key("a", "b"), lock_key("a", "b"));
        assert_ne!(
            lock_key("fleetops-schema", "x"),
            lock_key("fleetops-roles", "x")
        );
        assert_ne!(
            lock_key("fleetops-schema", "x"),
            lock_key("fleetops-schema", "y")
        );
    }
}
