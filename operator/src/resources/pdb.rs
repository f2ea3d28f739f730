//! The webhook PodDisruptionBudget.

use super::webhook;
use crate::desired::{DesiredPipeline, DesiredWebhook};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Only when more than one replica is wanted: with one replica a PDB of
/// minAvailable 1 would block every node drain.
pub fn build(
    desired: &DesiredPipeline,
    webhook: &DesiredWebhook,
    owner: &OwnerReference,
) -> Option<PodDisruptionBudget> {
    (webhook.replicas > 1).then(|| PodDisruptionBudget {
        metadata: webhook::object_meta(desired, owner),
        spec: Some(PodDisruptionBudgetSpec {
            min_available: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(webhook::selector(&desired.name)),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::tests::example_parts as parts;

    #[test]
    fn pdb_only_with_more_than_one_replica() {
        let (d, owner) = parts();
        let mut w = d.webhook.clone().unwrap();
        assert!(build(&d, &w, &owner).is_some());
        w.replicas = 1;
        assert!(build(&d, &w, &owner).is_none());
    }
}
