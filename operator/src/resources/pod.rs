//! What every workload pod shares: the restricted Pod Security profile, the
//! config and scratch volumes, and read-only Secret volumes.

use super::configmap;
use fleet_workloads::config::CONFIG_MOUNT_DIR;
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, EmptyDirVolumeSource, EnvVar, KeyToPath,
    PodSecurityContext, SeccompProfile, SecretVolumeSource, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// The non-root user and group every workload runs as.
pub const RUN_AS: i64 = 65532;
/// Secret files are readable by the owner and the pod's fsGroup only.
pub const SECRET_FILE_MODE: i32 = 0o440;

/// Pod-level part of the restricted Pod Security profile.
pub fn security_context() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS),
        run_as_group: Some(RUN_AS),
        fs_group: Some(RUN_AS),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Container-level part of the restricted Pod Security profile.
pub fn container_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Log level only; configuration comes from files, secrets from Secret volumes.
pub fn env() -> Vec<EnvVar> {
    vec![EnvVar {
        name: "RUST_LOG".to_owned(),
        value: Some("info".to_owned()),
        ..Default::default()
    }]
}

/// The rendered config (read-only) and a small writable /tmp (the root
/// filesystem is read-only).
pub fn base_volumes(pipeline: &str) -> (Vec<Volume>, Vec<VolumeMount>) {
    let volumes = vec![
        Volume {
            name: "config".to_owned(),
            config_map: Some(ConfigMapVolumeSource {
                name: configmap::name(pipeline),
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
    let mounts = vec![
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
    (volumes, mounts)
}

/// A Secret mounted read-only at `mount_path`, exposing `items` as
/// `(key, file name)` pairs.
/// The role's database login Secret at `/var/run/secrets/fleet/db`
/// (`username`, `password`), where `fleet-ingest` and `fleet-webhook` read it.
pub fn db_login_volume(pipeline: &str, role: crate::db::WorkloadRole) -> (Volume, VolumeMount) {
    secret_volume(
        "db-login",
        &crate::credentials::secret_name(pipeline, role),
        &[("username", "username"), ("password", "password")],
        fleet_workloads::store::connect::DB_CREDENTIALS_DIR,
    )
}

pub fn secret_volume(
    volume: &str,
    secret: &str,
    items: &[(&str, &str)],
    mount_path: &str,
) -> (Volume, VolumeMount) {
    (
        Volume {
            name: volume.to_owned(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret.to_owned()),
                default_mode: Some(SECRET_FILE_MODE),
                items: Some(
                    items
                        .iter()
                        .map(|(key, path)| KeyToPath {
                            key: (*key).to_owned(),
                            path: (*path).to_owned(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        },
        VolumeMount {
            name: volume.to_owned(),
            mount_path: mount_path.to_owned(),
            read_only: Some(true),
            ..Default::default()
        },
    )
}
