//! `fleet-ingest <job>`: one run of one job, per target: fetch from the
//! Tracksolid API with no database connection held, then one short write,
//! then one `ingestion_log` row with the exact rows inserted.

pub mod alarms;
pub mod devices;
pub mod error;
pub mod housekeeping;
pub mod imeis;
pub mod log;
pub mod outcome;
pub mod parking;
pub mod positions;
pub mod track;
pub mod trips;
pub mod window;

use crate::config::{PipelineConfig, TargetConfig};
use crate::push::Guard;
use crate::store::token::PgTokenStore;
use crate::tracksolid::{ClientConfig, Credentials, TracksolidClient};
use sqlx::PgPool;
use std::path::Path;

/// What one job run needs.
pub struct JobContext {
    pub config: PipelineConfig,
    pub pool: PgPool,
    pub guard: Guard,
}

/// What a run did for one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetOutcome {
    pub target: String,
    pub inserted: u64,
    pub rejected: u64,
    pub error: Option<String>,
}

/// A client for `target`, with its credentials from the mounted Secret and
/// the token cached in the database.
pub fn client_for(
    target: &TargetConfig,
    pool: &PgPool,
) -> Result<TracksolidClient<PgTokenStore>, String> {
    let credentials = Credentials::from_dir(Path::new(&target.credentials_dir))
        .map_err(|e| format!("credentials: {e}"))?;
    let mut cfg = ClientConfig::new(&target.name, &target.endpoint, credentials);
    cfg.protocol = cfg.protocol.with_overrides(&target.protocol);
    TracksolidClient::new(cfg, PgTokenStore::new(pool.clone())).map_err(|e| e.to_string())
}
