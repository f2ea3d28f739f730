//! The optional webhook Ingress, so JIMI's servers can reach the receiver
//! from the internet.

use super::webhook;
use crate::desired::{DesiredPipeline, DesiredWebhook};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

pub fn build(
    desired: &DesiredPipeline,
    webhook: &DesiredWebhook,
    owner: &OwnerReference,
) -> Option<Ingress> {
    let spec = webhook.ingress.as_ref()?;
    let mut metadata = webhook::object_meta(desired, owner);
    if !spec.annotations.is_empty() {
        metadata.annotations = Some(spec.annotations.clone());
    }
    Some(Ingress {
        metadata,
        spec: Some(IngressSpec {
            ingress_class_name: spec.class_name.clone(),
            tls: spec.tls_secret_name.as_ref().map(|secret| {
                vec![IngressTLS {
                    hosts: Some(vec![spec.host.clone()]),
                    secret_name: Some(secret.clone()),
                }]
            }),
            rules: Some(vec![IngressRule {
                host: Some(spec.host.clone()),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some("/".to_owned()),
                        path_type: "Prefix".to_owned(),
                        backend: IngressBackend {
                            service: Some(IngressServiceBackend {
                                name: webhook::name(&desired.name),
                                port: Some(ServiceBackendPort {
                                    name: Some("http".to_owned()),
                                    ..Default::default()
                                }),
                            }),
                            ..Default::default()
                        },
                    }],
                }),
            }]),
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
    fn ingress_only_when_asked() {
        let (d, owner) = parts();
        let mut w = d.webhook.clone().unwrap();
        assert!(build(&d, &w, &owner).is_none());
        w.ingress = Some(crate::crd::WebhookIngress {
            class_name: Some("nginx".into()),
            host: "push.example.com".into(),
            tls_secret_name: Some("push-tls".into()),
            annotations: Default::default(),
        });
        let ing = build(&d, &w, &owner).unwrap().spec.unwrap();
        assert_eq!(ing.ingress_class_name.as_deref(), Some("nginx"));
        assert_eq!(ing.tls.unwrap()[0].secret_name.as_deref(), Some("push-tls"));
    }
}
