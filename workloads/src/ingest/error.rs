//! Why one target of a job run failed.

use crate::tracksolid::TracksolidError;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The target's client could not be set up (credentials, endpoint).
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Api(#[from] TracksolidError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("window: {0}")]
    Window(String),
    /// The fleet-wide enable/disable step of the `devices` job failed.
    #[error("enabling/disabling devices: {0}")]
    Membership(String),
}
