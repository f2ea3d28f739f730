//! The one error type of the controller, with a stable label per category for
//! metrics and condition reasons.

use crate::desired::InvalidSpec;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// The spec cannot be acted on; waits for the user to change it.
    #[error("invalid spec: {0}")]
    InvalidSpec(#[from] InvalidSpec),
    /// A referenced Secret or one of its keys is missing.
    #[error("{}", secret_message(field, secret, key.as_deref()))]
    SecretMissing {
        field: String,
        secret: String,
        key: Option<String>,
    },
    /// A request to the Kubernetes API failed; retried with back-off.
    #[error("kubernetes API request failed: {0}")]
    Kube(#[from] kube::Error),
    /// A Secret with the name of one of our database logins exists and is not
    /// ours; it is left alone.
    #[error(
        "Secret {secret:?} exists and is not owned by this FleetPipeline; delete or rename it so the operator can write the database login"
    )]
    CredentialsConflict { secret: String },
    /// The database step failed (connect, claim, migrate, roles, or dropping
    /// the roles on deletion).
    #[error("{0}")]
    Database(#[from] crate::db::DbError),
    /// Some roles could not be dropped on deletion; the finalizer stays.
    #[error("could not drop every database role: {0}")]
    CleanupIncomplete(String),
    /// The object lacks a namespace or uid (not yet persisted).
    #[error("FleetPipeline has no {0} yet")]
    MissingMetadata(&'static str),
}

impl Error {
    /// Label for `fleet_operator_reconcile_errors_total{error=...}`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::InvalidSpec(_) => "invalid_spec",
            Error::SecretMissing { .. } => "secret_missing",
            Error::Kube(_) => "kube_api",
            Error::CredentialsConflict { .. } => "credentials_conflict",
            Error::Database(_) => "database",
            Error::CleanupIncomplete(_) => "cleanup_incomplete",
            Error::MissingMetadata(_) => "missing_metadata",
        }
    }

    /// Stable `reason` for the Ready / Degraded conditions.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::InvalidSpec(_) => "InvalidSpec",
            Error::SecretMissing { .. } => "SecretMissing",
            Error::Kube(_) => "ApplyFailed",
            Error::CredentialsConflict { .. } => "CredentialsConflict",
            Error::Database(e) => e.reason(),
            Error::CleanupIncomplete(_) => "CleanupFailed",
            Error::MissingMetadata(_) => "MissingMetadata",
        }
    }
}

fn secret_message(field: &str, secret: &str, key: Option<&str>) -> String {
    match key {
        None => format!("Secret {secret:?} referenced by spec.{field} does not exist"),
        Some(key) => format!("Secret {secret:?} (spec.{field}) has no key {key:?}"),
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
