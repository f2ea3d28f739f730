//! Names, labels and constants of the webhook's objects; each object is
//! built by the module of its kind (deployment, service, pdb, ingress).

use super::meta;
use crate::desired::DesiredPipeline;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use std::collections::BTreeMap;

pub const COMPONENT: &str = "webhook";
/// The port the receiver listens on inside the pod and the Service exposes.
pub const PORT: i32 = 8080;
/// Where the push token is mounted.
pub const TOKEN_DIR: &str = "/var/run/secrets/fleet/push";

pub fn name(pipeline: &str) -> String {
    format!("{pipeline}-webhook")
}

/// In-cluster URL of the receiver, for status.
pub fn url(pipeline: &str, namespace: &str) -> String {
    format!("http://{}.{namespace}.svc:{PORT}", name(pipeline))
}

/// Labels that select the webhook pods.
pub fn selector(pipeline: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (meta::LABEL_NAME.to_owned(), "fleet-pipeline".to_owned()),
        (meta::LABEL_INSTANCE.to_owned(), pipeline.to_owned()),
        (meta::LABEL_COMPONENT.to_owned(), COMPONENT.to_owned()),
    ])
}

/// Metadata shared by every webhook object (they all carry its name).
pub fn object_meta(desired: &DesiredPipeline, owner: &OwnerReference) -> ObjectMeta {
    meta::object_meta(
        name(&desired.name),
        &desired.namespace,
        meta::labels(&desired.name, COMPONENT),
        owner,
    )
}
