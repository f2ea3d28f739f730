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
