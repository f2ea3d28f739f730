//! Names, labels and owner references shared by every owned object.

use crate::crd::FleetPipeline;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use std::collections::BTreeMap;

/// The one field manager for every server-side apply.
pub const FIELD_MANAGER: &str = "fleet-operator";
pub const MANAGED_BY: &str = "fleet-operator";
pub const PART_OF: &str = "fleet-pipeline";
pub const LABEL_NAME: &str = "app.kubernetes.io/name";
pub const LABEL_INSTANCE: &str = "app.kubernetes.io/instance";
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
pub const LABEL_PART_OF: &str = "app.kubernetes.io/part-of";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Hash of the object as the operator last rendered it; see [`crate::apply`].
pub const ANNOTATION_DESIRED_HASH: &str = "fleetops.dev/desired-hash";
/// The job a CronJob runs.
pub const LABEL_JOB: &str = "fleetops.dev/job";

/// The standard `app.kubernetes.io/*` labels of a pipeline's object.
pub fn labels(pipeline: &str, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_NAME.to_owned(), "fleet-pipeline".to_owned()),
        (LABEL_INSTANCE.to_owned(), pipeline.to_owned()),
        (LABEL_COMPONENT.to_owned(), component.to_owned()),
        (LABEL_PART_OF.to_owned(), PART_OF.to_owned()),
        (LABEL_MANAGED_BY.to_owned(), MANAGED_BY.to_owned()),
    ])
}

/// Label selector matching every object a pipeline owns.
pub fn instance_selector(pipeline: &str) -> String {
    format!("{LABEL_INSTANCE}={pipeline},{LABEL_MANAGED_BY}={MANAGED_BY}")
}

/// Metadata of an owned object.
pub fn object_meta(
    name: String,
    namespace: &str,
    labels: BTreeMap<String, String>,
    owner: &OwnerReference,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(namespace.to_owned()),
        labels: Some(labels),
        owner_references: Some(vec![owner.clone()]),
        ..Default::default()
    }
}

/// The controller owner reference to a pipeline; `None` before it has a uid.
pub fn owner_reference(fp: &FleetPipeline) -> Option<OwnerReference> {
    fp.controller_owner_ref(&())
}

/// Does this object carry a controller reference to the pipeline with `uid`?
pub fn is_owned_by(meta: &ObjectMeta, uid: &str) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|r| r.uid == uid && r.controller == Some(true))
}
