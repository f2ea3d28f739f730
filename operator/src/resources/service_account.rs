//! ServiceAccounts the workloads run as. They never talk to the apiserver,
//! so no token is mounted.

use super::{meta, webhook};
use crate::desired::DesiredPipeline;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

pub fn ingest_name(pipeline: &str) -> String {
    format!("{pipeline}-ingest")
}

pub fn ingest(desired: &DesiredPipeline, owner: &OwnerReference) -> ServiceAccount {
    ServiceAccount {
        metadata: meta::object_meta(
            ingest_name(&desired.name),
            &desired.namespace,
            meta::labels(&desired.name, "ingest"),
            owner,
        ),
        automount_service_account_token: Some(false),
        ..Default::default()
    }
}

pub fn webhook(desired: &DesiredPipeline, owner: &OwnerReference) -> ServiceAccount {
    ServiceAccount {
        metadata: webhook::object_meta(desired, owner),
        automount_service_account_token: Some(false),
        ..Default::default()
    }
}
