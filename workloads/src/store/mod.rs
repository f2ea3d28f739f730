//! PostgreSQL access shared by the workloads and the operator: connection
//! options from the rendered config, the embedded migrations, and the push
//! store.

pub mod alarms;
pub mod connect;
pub mod devices;
pub mod parking;
pub mod positions;
pub mod push;
pub mod retention;
pub mod schema;
pub mod token;
pub mod trips;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum DbError {
    #[error("cannot read database credentials {path}: {source}")]
    Credentials {
        path: String,
        source: std::io::Error,
    },
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}
