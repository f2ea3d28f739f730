//! The webhook Service (port 8080).

use super::webhook;
use crate::desired::DesiredPipeline;
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

pub fn build(desired: &DesiredPipeline, owner: &OwnerReference) -> Service {
    Service {
        metadata: webhook::object_meta(desired, owner),
        spec: Some(ServiceSpec {
            selector: Some(webhook::selector(&desired.name)),
            ports: Some(vec![ServicePort {
                name: Some("http".to_owned()),
                port: webhook::PORT,
                target_port: Some(IntOrString::String("http".to_owned())),
                protocol: Some("TCP".to_owned()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}
