//! Build: pure functions from the effective pipeline to typed Kubernetes
//! objects, one module per owned kind. Nothing here talks to a cluster.

pub mod configmap;
pub mod cronjob;
pub mod meta;
pub mod service_account;

use crate::desired::DesiredPipeline;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

/// Every object a pipeline owns, as it should be.
#[derive(Clone, Debug, PartialEq)]
pub struct Children {
    pub service_accounts: Vec<ServiceAccount>,
    pub config_map: ConfigMap,
    pub cron_jobs: Vec<CronJob>,
}

/// Build every owned object of a pipeline.
pub fn build(desired: &DesiredPipeline, owner: &OwnerReference) -> Children {
    Children {
        service_accounts: vec![service_account::ingest(desired, owner)],
        config_map: configmap::build(desired, owner),
        cron_jobs: desired
            .jobs
            .iter()
            .map(|job| cronjob::build(desired, job, owner))
            .collect(),
    }
}
