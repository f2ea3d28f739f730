//! The push receiver: ServiceAccount, Deployment, Service, a
//! PodDisruptionBudget when it has more than one replica, and an optional
//! Ingress.

use super::cronjob::{container_security_context, pod_security_context};
use super::{configmap, meta};
use crate::desired::{DesiredPipeline, DesiredWebhook};
use fleet_workloads::config::{CONFIG_FILE, CONFIG_MOUNT_DIR};
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, HTTPGetAction,
    KeyToPath, PodSpec, PodTemplateSpec, Probe, SecretVolumeSource, Service, ServiceAccount,
    ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
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

fn object_meta(desired: &DesiredPipeline, owner: &OwnerReference) -> ObjectMeta {
    meta::object_meta(
        name(&desired.name),
        &desired.namespace,
        meta::labels(&desired.name, COMPONENT),
        owner,
    )
}

pub fn service_account(desired: &DesiredPipeline, owner: &OwnerReference) -> ServiceAccount {
    ServiceAccount {
        metadata: object_meta(desired, owner),
        automount_service_account_token: Some(false),
        ..Default::default()
    }
}

fn probe(path: &str, period: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String("http".to_owned()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(3),
        ..Default::default()
    }
}

pub fn deployment(
    desired: &DesiredPipeline,
    webhook: &DesiredWebhook,
    owner: &OwnerReference,
) -> Deployment {
    let mut command = vec![
        "fleet-webhook".to_owned(),
        "--config".to_owned(),
        format!("{CONFIG_MOUNT_DIR}/{CONFIG_FILE}"),
        "--listen".to_owned(),
        format!("0.0.0.0:{PORT}"),
    ];
    let mut volumes = vec![
        Volume {
            name: "config".to_owned(),
            config_map: Some(ConfigMapVolumeSource {
                name: configmap::name(&desired.name),
                ..Default::default()
            }),
            ..Default::default()
        },
        Volume {
            name: "tmp".to_owned(),
            empty_dir: Some(EmptyDirVolumeSource {
                size_limit: Some(Quantity("64Mi".to_owned())),
                ..Default::default()
            }),
            ..Default::default()
        },
    ];
    let mut mounts = vec![
        VolumeMount {
            name: "config".to_owned(),
            mount_path: CONFIG_MOUNT_DIR.to_owned(),
            read_only: Some(true),
            ..Default::default()
        },
        VolumeMount {
            name: "tmp".to_owned(),
            mount_path: "/tmp".to_owned(),
            ..Default::default()
        },
    ];
    if let Some((secret, key)) = &webhook.token {
        {
            command.extend(["--token-file".to_owned(), format!("{TOKEN_DIR}/token")]);
            volumes.push(Volume {
                name: "push-token".to_owned(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(secret.clone()),
                    default_mode: Some(0o440),
                    items: Some(vec![KeyToPath {
                        key: key.clone(),
                        path: "token".to_owned(),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            });
            mounts.push(VolumeMount {
                name: "push-token".to_owned(),
                mount_path: TOKEN_DIR.to_owned(),
                read_only: Some(true),
                ..Default::default()
            });
        }
    }
    if !webhook.require_token {
        command.push("--allow-unauthenticated".to_owned());
    }
    let labels = meta::labels(&desired.name, COMPONENT);
    Deployment {
        metadata: object_meta(desired, owner),
        spec: Some(DeploymentSpec {
            replicas: Some(webhook.replicas),
            selector: LabelSelector {
                match_labels: Some(selector(&desired.name)),
                ..Default::default()
            },
            // Keep capacity during a rollout: add one, then remove one.
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_owned()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(name(&desired.name)),
                    automount_service_account_token: Some(false),
                    security_context: Some(pod_security_context()),
                    // Time to drain in-flight pushes on SIGTERM.
                    termination_grace_period_seconds: Some(30),
                    containers: vec![Container {
                        name: COMPONENT.to_owned(),
                        image: Some(desired.image.clone()),
                        command: Some(command),
                        env: Some(vec![EnvVar {
                            name: "RUST_LOG".to_owned(),
                            value: Some("info".to_owned()),
                            ..Default::default()
                        }]),
                        ports: Some(vec![ContainerPort {
                            name: Some("http".to_owned()),
                            container_port: PORT,
                            protocol: Some("TCP".to_owned()),
                            ..Default::default()
                        }]),
                        liveness_probe: Some(probe("/healthz", 10)),
                        readiness_probe: Some(probe("/readyz", 5)),
                        resources: Some(webhook.resources.clone()),
                        security_context: Some(container_security_context()),
                        volume_mounts: Some(mounts),
                        ..Default::default()
                    }],
                    volumes: Some(volumes),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn service(desired: &DesiredPipeline, owner: &OwnerReference) -> Service {
    Service {
        metadata: object_meta(desired, owner),
        spec: Some(ServiceSpec {
            selector: Some(selector(&desired.name)),
            ports: Some(vec![ServicePort {
                name: Some("http".to_owned()),
                port: PORT,
                target_port: Some(IntOrString::String("http".to_owned())),
                protocol: Some("TCP".to_owned()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Only when more than one replica is wanted: with one replica a PDB of
/// minAvailable 1 would block every node drain.
pub fn pod_disruption_budget(
    desired: &DesiredPipeline,
    webhook: &DesiredWebhook,
    owner: &OwnerReference,
) -> Option<PodDisruptionBudget> {
    (webhook.replicas > 1).then(|| PodDisruptionBudget {
        metadata: object_meta(desired, owner),
        spec: Some(PodDisruptionBudgetSpec {
            min_available: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(selector(&desired.name)),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    })
}

pub fn ingress(
    desired: &DesiredPipeline,
    webhook: &DesiredWebhook,
    owner: &OwnerReference,
) -> Option<Ingress> {
    let spec = webhook.ingress.as_ref()?;
    let mut metadata = object_meta(desired, owner);
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
                                name: name(&desired.name),
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
    use crate::desired::{resolve, tests::example};

    fn parts() -> (DesiredPipeline, OwnerReference) {
        let fp = example();
        (
            resolve(&fp, "img").unwrap(),
            meta::owner_reference(&fp).unwrap(),
        )
    }

    #[test]
    fn deployment_keeps_capacity_and_mounts_the_token() {
        let (d, owner) = parts();
        let w = d.webhook.clone().unwrap();
        let dep = deployment(&d, &w, &owner);
        let spec = dep.spec.unwrap();
        assert_eq!(spec.replicas, Some(2));
        let ru = spec.strategy.unwrap().rolling_update.unwrap();
        assert_eq!(ru.max_unavailable, Some(IntOrString::Int(0)));
        let pod = spec.template.spec.unwrap();
        let c = &pod.containers[0];
        let cmd = c.command.clone().unwrap();
        assert_eq!(cmd[0], "fleet-webhook");
        assert!(
            cmd.windows(2)
                .any(|w| w == ["--token-file", "/var/run/secrets/fleet/push/token"])
        );
        assert!(!cmd.contains(&"--allow-unauthenticated".to_owned()));
        assert_eq!(
            c.readiness_probe
                .as_ref()
                .unwrap()
                .http_get
                .as_ref()
                .unwrap()
                .path
                .as_deref(),
            Some("/readyz")
        );
        assert_eq!(
            c.security_context
                .as_ref()
                .unwrap()
                .read_only_root_filesystem,
            Some(true)
        );
        let vol = pod
            .volumes
            .unwrap()
            .into_iter()
            .find(|v| v.name == "push-token")
            .unwrap();
        assert_eq!(
            vol.secret.unwrap().secret_name.as_deref(),
            Some("jimi-push")
        );
        // The token never appears in env.
        assert!(
            c.env
                .as_ref()
                .unwrap()
                .iter()
                .all(|e| e.value_from.is_none())
        );
    }

    #[test]
    fn pdb_only_with_more_than_one_replica() {
        let (d, owner) = parts();
        let mut w = d.webhook.clone().unwrap();
        assert!(pod_disruption_budget(&d, &w, &owner).is_some());
        w.replicas = 1;
        assert!(pod_disruption_budget(&d, &w, &owner).is_none());
    }

    #[test]
    fn ingress_only_when_asked() {
        let (d, owner) = parts();
        let mut w = d.webhook.clone().unwrap();
        assert!(ingress(&d, &w, &owner).is_none());
        w.ingress = Some(crate::crd::WebhookIngress {
            class_name: Some("nginx".into()),
            host: "push.example.com".into(),
            tls_secret_name: Some("push-tls".into()),
            annotations: Default::default(),
        });
        let ing = ingress(&d, &w, &owner).unwrap().spec.unwrap();
        assert_eq!(ing.ingress_class_name.as_deref(), Some("nginx"));
        assert_eq!(ing.tls.unwrap()[0].secret_name.as_deref(), Some("push-tls"));
    }
}
