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
            Error::MissingMetadata(_) => "missing_metadata",
        }
    }

    /// Stable `reason` for the Ready / Degraded conditions.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::InvalidSpec(_) => "InvalidSpec",
            Error::SecretMissing { .. } => "SecretMissing",
            Error::Kube(_) => "ApplyFailed",
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
