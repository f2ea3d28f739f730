//! Build: pure functions from the effective pipeline to typed Kubernetes
//! objects, one module per owned kind. Nothing here talks to a cluster.

pub mod configmap;
pub mod cronjob;
pub mod deployment;
pub mod ingress;
pub mod meta;
pub mod networkpolicy;
pub mod pdb;
pub mod pod;
pub mod service;
pub mod service_account;
pub mod webhook;

use crate::desired::DesiredPipeline;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy, NetworkPolicyPeer};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

/// Every object a pipeline owns, as it should be. An empty list means the
/// kind is not wanted (and existing ones are deleted).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Children {
    pub service_accounts: Vec<ServiceAccount>,
    pub config_maps: Vec<ConfigMap>,
    pub cron_jobs: Vec<CronJob>,
    pub deployments: Vec<Deployment>,
    pub services: Vec<Service>,
    pub pod_disruption_budgets: Vec<PodDisruptionBudget>,
    pub ingresses: Vec<Ingress>,
    pub network_policies: Vec<NetworkPolicy>,
}

/// Facts about the operator itself that some objects need.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OperatorIdentity {
    /// Selects the operator's pods, for the database ingress policy.
    pub peer: Option<NetworkPolicyPeer>,
}

/// Build every owned object of a pipeline.
pub fn build(
    desired: &DesiredPipeline,
    owner: &OwnerReference,
    operator: &OperatorIdentity,
) -> Children {
    let mut children = Children {
        service_accounts: vec![service_account::ingest(desired, owner)],
        config_maps: vec![configmap::build(desired, owner)],
        cron_jobs: desired
            .jobs
            .iter()
            .map(|job| cronjob::build(desired, job, owner))
            .collect(),
        network_policies: networkpolicy::build(desired, owner, operator.peer.as_ref()),
        ..Default::default()
    };
    if let Some(w) = &desired.webhook {
        children
            .service_accounts
            .push(service_account::webhook(desired, owner));
        children
            .deployments
            .push(deployment::build(desired, w, owner));
        children.services.push(service::build(desired, owner));
        children
            .pod_disruption_budgets
            .extend(pdb::build(desired, w, owner));
        children.ingresses.extend(ingress::build(desired, w, owner));
    }
    children
}
