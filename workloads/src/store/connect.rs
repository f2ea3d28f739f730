//! Connection options: from the rendered config plus a credentials directory
//! (`username`, `password` files from a mounted basic-auth Secret), or from a
//! URL when run by hand. The pipeline's schema is always the search_path.

use super::DbError;
use crate::config::DatabaseConfig;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// Where the workloads find their database login.
pub const DB_CREDENTIALS_DIR: &str = "/var/run/secrets/fleet/db";

fn read_secret(dir: &Path, key: &str) -> Result<String, DbError> {
    let path = dir.join(key);
    std::fs::read_to_string(&path)
        .map(|s| s.trim_end_matches(['\n', '\r']).to_owned())
        .map_err(|source| DbError::Credentials {
            path: path.display().to_string(),
            source,
        })
}

/// Options for the pipeline's database with the login in `credentials_dir`.
pub fn from_config(
    cfg: &DatabaseConfig,
    credentials_dir: &Path,
) -> Result<PgConnectOptions, DbError> {
    let ssl = PgSslMode::from_str(&cfg.ssl_mode).unwrap_or(PgSslMode::Prefer);
    Ok(PgConnectOptions::new()
        .host(&cfg.host)
        .port(cfg.port)
        .database(&cfg.name)
        .username(&read_secret(credentials_dir, "username")?)
        .password(&read_secret(credentials_dir, "password")?)
        .ssl_mode(ssl)
        .application_name("fleetpipeline")
        .options(session_settings(&cfg.schema)))
}

/// Every workload session: the pipeline's schema, and `synchronous_commit`
/// forced on — a push is acknowledged only after its commit is durable, even
/// where the server runs with it off (a crash would otherwise lose commits
/// already acknowledged; the fault test shows it).
fn session_settings(schema: &str) -> [(&str, &str); 2] {
    [("search_path", schema), ("synchronous_commit", "on")]
}

/// Options from a URL (running by hand), with `schema` as the search_path.
pub fn from_url(url: &str, schema: &str) -> Result<PgConnectOptions, DbError> {
    Ok(PgConnectOptions::from_str(url)?
        .application_name("fleetpipeline")
        .options(session_settings(schema)))
}

/// A small pool: the workloads hold connections only for short writes.
pub async fn pool(options: PgConnectOptions, max: u32) -> Result<PgPool, DbError> {
    Ok(PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(5))
        .idle_timeout(Duration::from_secs(60))
        .connect_with(options)
        .await?)
}

/// A pool on the same database as `from` that keeps no idle connection:
/// each connection is opened on acquire and closed when released. For a job
/// that waits on the network between short database steps, so that between
/// them it holds no connection at all (not even an idle one).
pub fn transient_pool(from: &PgPool, max: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(max.max(1))
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(5))
        .after_release(|_conn, _meta| Box::pin(async { Ok(false) }))
        .connect_lazy_with((*from.connect_options()).clone())
}

/// Closes every idle connection of `pool`, so that the process holds no
/// database connection at all while it waits on the network (the trips job's
/// API and geocoding phases). Connections in use are not touched; the pool
/// opens new ones on the next acquire.
pub async fn release_idle(pool: &PgPool) {
    while let Some(conn) = pool.try_acquire() {
        if let Err(e) = conn.close().await {
            tracing::debug!(error = %e, "closing an idle connection");
        }
    }
}
