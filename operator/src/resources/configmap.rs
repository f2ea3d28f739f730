//! The ConfigMap holding the rendered pipeline config (no secrets).

use super::meta;
use crate::desired::DesiredPipeline;
use fleet_workloads::config::CONFIG_FILE;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use std::collections::BTreeMap;

pub fn name(pipeline: &str) -> String {
    format!("{pipeline}-config")
}

pub fn build(desired: &DesiredPipeline, owner: &OwnerReference) -> ConfigMap {
    ConfigMap {
        metadata: meta::object_meta(
            name(&desired.name),
            &desired.namespace,
            meta::labels(&desired.name, "config"),
            owner,
        ),
        data: Some(BTreeMap::from([(
            CONFIG_FILE.to_owned(),
            desired.config.to_json(),
        )])),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{resolve, tests::example};
    use fleet_workloads::config::PipelineConfig;

    #[test]
    fn holds_the_config_and_no_secret_names() {
        let fp = example();
        let d = resolve(&fp, "img").unwrap();
        let owner = meta::owner_reference(&fp).unwrap();
        let cm = build(&d, &owner);
        assert_eq!(cm.metadata.name.as_deref(), Some("kenya-fleet-config"));
        let text = &cm.data.as_ref().unwrap()[CONFIG_FILE];
        let parsed: PipelineConfig = serde_json::from_str(text).unwrap();
        assert_eq!(parsed, d.config);
        assert!(
            !text.contains("tracksolid-hk"),
            "secret names stay out of the config"
        );
        assert!(!text.contains("fleet-db-admin"));
    }
}
