//! One CronJob per enabled job, running `fleet-ingest <job>` under restricted
//! Pod Security.

use super::{meta, pod, service_account};
use crate::desired::{DesiredJob, DesiredPipeline};
use fleet_workloads::config::{
    CONFIG_FILE, CONFIG_MOUNT_DIR, JobKind, TARGET_CREDENTIAL_KEYS, TARGET_CREDENTIALS_DIR,
};
use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, JobSpec, JobTemplateSpec};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

pub fn name(pipeline: &str, job: JobKind) -> String {
    format!("{pipeline}-{job}")
}

fn target_volume_name(target: &str) -> String {
    format!("target-{target}")
}

pub fn build(desired: &DesiredPipeline, job: &DesiredJob, owner: &OwnerReference) -> CronJob {
    let mut labels = meta::labels(&desired.name, "ingest");
    labels.insert(meta::LABEL_JOB.to_owned(), job.kind.as_str().to_owned());

    let (mut volumes, mut mounts) = pod::base_volumes(&desired.name);
    let (volume, mount) =
        pod::db_login_volume(&desired.name, crate::credentials::role_for_job(job.kind));
    volumes.push(volume);
    mounts.push(mount);
    let items: Vec<(&str, &str)> = TARGET_CREDENTIAL_KEYS.iter().map(|k| (*k, *k)).collect();
    for (target, secret) in &desired.target_secrets {
        let (volume, mount) = pod::secret_volume(
            &target_volume_name(target),
            secret,
            &items,
            &format!("{TARGET_CREDENTIALS_DIR}/{target}"),
        );
        volumes.push(volume);
        mounts.push(mount);
    }

    let container = Container {
        name: "ingest".to_owned(),
        image: Some(desired.image.clone()),
        command: Some(vec![
            "fleet-ingest".to_owned(),
            job.kind.as_str().to_owned(),
            "--config".to_owned(),
            format!("{CONFIG_MOUNT_DIR}/{CONFIG_FILE}"),
        ]),
        env: Some(pod::env()),
        resources: Some(job.resources.clone()),
        security_context: Some(pod::container_security_context()),
        volume_mounts: Some(mounts),
        ..Default::default()
    };

    CronJob {
        metadata: meta::object_meta(
            name(&desired.name, job.kind),
            &desired.namespace,
            labels.clone(),
            owner,
        ),
        spec: CronJobSpec {
            schedule: job.schedule.clone(),
            time_zone: Some(job.time_zone.clone()),
            suspend: Some(job.suspend),
            concurrency_policy: Some(job.concurrency_policy.as_str().to_owned()),
            starting_deadline_seconds: Some(job.starting_deadline_seconds),
            successful_jobs_history_limit: Some(job.successful_jobs_history_limit),
            failed_jobs_history_limit: Some(job.failed_jobs_history_limit),
            job_template: JobTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels.clone()),
                    ..Default::default()
                }),
                spec: Some(JobSpec {
                    backoff_limit: Some(job.backoff_limit),
                    active_deadline_seconds: Some(job.active_deadline_seconds),
                    template: PodTemplateSpec {
                        metadata: Some(ObjectMeta {
                            labels: Some(labels),
                            ..Default::default()
                        }),
                        spec: Some(PodSpec {
                            service_account_name: Some(service_account::ingest_name(&desired.name)),
                            automount_service_account_token: Some(false),
                            restart_policy: Some("Never".to_owned()),
                            security_context: Some(pod::security_context()),
                            containers: vec![container],
                            volumes: Some(volumes),
                            ..Default::default()
                        }),
                    },
                    ..Default::default()
                }),
            },
        },
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{resolve, tests::example};

    fn built(kind: JobKind) -> CronJob {
        let fp = example();
        let d = resolve(&fp, "registry.example/fleet-workloads:1").unwrap();
        let owner = meta::owner_reference(&fp).unwrap();
        let job = d.jobs.iter().find(|j| j.kind == kind).unwrap();
        build(&d, job, &owner)
    }

    #[test]
    fn schedule_time_zone_and_knobs() {
        let cj = built(JobKind::Alarms);
        assert_eq!(cj.metadata.name.as_deref(), Some("kenya-fleet-alarms"));
        let spec = cj.spec;
        assert_eq!(spec.schedule, "*/5 * * * *");
        assert_eq!(spec.time_zone.as_deref(), Some("Africa/Nairobi"));
        assert_eq!(spec.concurrency_policy.as_deref(), Some("Forbid"));
        assert_eq!(spec.suspend, Some(false));
        let job = spec.job_template.spec.unwrap();
        assert_eq!(job.backoff_limit, Some(1));
        let pod = job.template.spec.unwrap();
        let c = &pod.containers[0];
        assert_eq!(
            c.command.as_ref().unwrap(),
            &[
                "fleet-ingest",
                "alarms",
                "--config",
                "/etc/fleet/config.json"
            ]
        );
        assert_eq!(
            pod.service_account_name.as_deref(),
            Some("kenya-fleet-ingest")
        );
    }

    #[test]
    fn pods_meet_restricted_pod_security() {
        let cj = built(JobKind::Positions);
        let pod = cj.spec.job_template.spec.unwrap().template.spec.unwrap();
        let psc = pod.security_context.unwrap();
        assert_eq!(psc.run_as_non_root, Some(true));
        assert_eq!(psc.seccomp_profile.unwrap().type_, "RuntimeDefault");
        assert_eq!(pod.automount_service_account_token, Some(false));
        let sc = pod.containers[0].security_context.clone().unwrap();
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.capabilities.unwrap().drop.unwrap(), ["ALL"]);
    }

    #[test]
    fn credentials_come_from_secrets_at_the_configured_paths() {
        let cj = built(JobKind::Positions);
        let pod = cj.spec.job_template.spec.unwrap().template.spec.unwrap();
        let vol = pod
            .volumes
            .unwrap()
            .into_iter()
            .find(|v| v.name == "target-hk")
            .unwrap();
        let secret = vol.secret.unwrap();
        assert_eq!(secret.secret_name.as_deref(), Some("tracksolid-hk"));
        assert_eq!(secret.default_mode, Some(0o440));
        let mount = pod.containers[0]
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.name == "target-hk")
            .unwrap()
            .clone();
        assert_eq!(mount.mount_path, "/var/run/secrets/fleet/targets/hk");
        assert_eq!(mount.read_only, Some(true));
        // No secret value or reference leaks into env.
        assert!(
            pod.containers[0]
                .env
                .as_ref()
                .unwrap()
                .iter()
                .all(|e| e.value_from.is_none())
        );
    }

    #[test]
    fn each_job_mounts_its_roles_login_and_never_the_admin_secret() {
        for (kind, secret) in [
            (JobKind::Positions, "kenya-fleet-db-ingest"),
            (JobKind::Trips, "kenya-fleet-db-ingest"),
            (JobKind::Housekeeping, "kenya-fleet-db-housekeeping"),
        ] {
            let cj = built(kind);
            let pod = cj.spec.job_template.spec.unwrap().template.spec.unwrap();
            let names: Vec<String> = pod
                .volumes
                .iter()
                .flatten()
                .filter_map(|v| v.secret.as_ref()?.secret_name.clone())
                .collect();
            assert!(names.contains(&secret.to_owned()), "{kind}: {names:?}");
            assert!(!names.contains(&"fleet-db-admin".to_owned()), "{kind}");
            let mount = pod.containers[0]
                .volume_mounts
                .iter()
                .flatten()
                .find(|m| m.name == "db-login")
                .map(|m| m.mount_path.clone());
            assert_eq!(mount.as_deref(), Some("/var/run/secrets/fleet/db"));
        }
    }

    #[test]
    fn owned_and_labelled() {
        let cj = built(JobKind::Devices);
        let refs = cj.metadata.owner_references.unwrap();
        assert_eq!(refs[0].kind, "FleetPipeline");
        assert_eq!(refs[0].controller, Some(true));
        let labels = cj.metadata.labels.unwrap();
        for key in [
            meta::LABEL_NAME,
            meta::LABEL_INSTANCE,
            meta::LABEL_COMPONENT,
            meta::LABEL_PART_OF,
            meta::LABEL_MANAGED_BY,
        ] {
            assert!(labels.contains_key(key), "{key}");
        }
        assert_eq!(labels[meta::LABEL_JOB], "devices");
    }
}
