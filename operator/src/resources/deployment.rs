//! The webhook Deployment: `fleet-webhook`, probes on `/healthz` and
//! `/readyz`, a rolling update that keeps capacity, the push token mounted
//! from its Secret.

use super::{meta, pod, webhook};
use crate::desired::{DesiredPipeline, DesiredWebhook};
use fleet_workloads::config::{CONFIG_FILE, CONFIG_MOUNT_DIR};
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, HTTPGetAction, PodSpec, PodTemplateSpec, Probe,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

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

pub fn build(
    desired: &DesiredPipeline,
    webhook: &DesiredWebhook,
    owner: &OwnerReference,
) -> Deployment {
    let mut command = vec![
        "fleet-webhook".to_owned(),
        "--config".to_owned(),
        format!("{CONFIG_MOUNT_DIR}/{CONFIG_FILE}"),
        "--listen".to_owned(),
        format!("0.0.0.0:{}", webhook::PORT),
    ];
    let (mut volumes, mut mounts) = pod::base_volumes(&desired.name);
    let (volume, mount) = pod::db_login_volume(&desired.name, crate::db::WorkloadRole::Webhook);
    volumes.push(volume);
    mounts.push(mount);
    if let Some((secret, key)) = &webhook.token {
        command.extend([
            "--token-file".to_owned(),
            format!("{}/token", webhook::TOKEN_DIR),
        ]);
        let (volume, mount) = pod::secret_volume(
            "push-token",
            secret,
            &[(key.as_str(), "token")],
            webhook::TOKEN_DIR,
        );
        volumes.push(volume);
        mounts.push(mount);
    }
    if !webhook.require_token {
        command.push("--allow-unauthenticated".to_owned());
    }
    let labels = meta::labels(&desired.name, webhook::COMPONENT);
    Deployment {
        metadata: webhook::object_meta(desired, owner),
        spec: Some(DeploymentSpec {
            replicas: Some(webhook.replicas),
            selector: LabelSelector {
                match_labels: Some(webhook::selector(&desired.name)),
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
                    // A credentials rotation rolls the pods onto the new
                    // password (they read it at start).
                    annotations: (!desired.database.rotation.is_empty()).then(|| {
                        std::collections::BTreeMap::from([(
                            crate::credentials::ROTATE_ANNOTATION.to_owned(),
                            desired.database.rotation.clone(),
                        )])
                    }),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(webhook::name(&desired.name)),
                    automount_service_account_token: Some(false),
                    security_context: Some(pod::security_context()),
                    // Time to drain in-flight pushes on SIGTERM.
                    termination_grace_period_seconds: Some(30),
                    containers: vec![Container {
                        name: webhook::COMPONENT.to_owned(),
                        image: Some(desired.image.clone()),
                        command: Some(command),
                        env: Some(pod::env()),
                        ports: Some(vec![ContainerPort {
                            name: Some("http".to_owned()),
                            container_port: webhook::PORT,
                            protocol: Some("TCP".to_owned()),
                            ..Default::default()
                        }]),
                        liveness_probe: Some(probe("/healthz", 10)),
                        readiness_probe: Some(probe("/readyz", 5)),
                        resources: Some(webhook.resources.clone()),
                        security_context: Some(pod::container_security_context()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::tests::example_parts as parts;

    #[test]
    fn deployment_keeps_capacity_and_mounts_the_token() {
        let (d, owner) = parts();
        let w = d.webhook.clone().unwrap();
        let dep = build(&d, &w, &owner);
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
            .clone()
            .unwrap()
            .into_iter()
            .find(|v| v.name == "push-token")
            .unwrap();
        assert_eq!(
            vol.secret.unwrap().secret_name.as_deref(),
            Some("jimi-push")
        );
        // Its own database login, never the admin Secret.
        let login = pod
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == "db-login")
            .and_then(|v| v.secret.as_ref())
            .and_then(|s| s.secret_name.clone());
        assert_eq!(login.as_deref(), Some("kenya-fleet-db-webhook"));
        assert!(
            c.volume_mounts
                .iter()
                .flatten()
                .any(|m| m.name == "db-login" && m.mount_path == "/var/run/secrets/fleet/db")
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
}
