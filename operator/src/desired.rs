//! Validate: turn a `FleetPipeline` into the effective, fully defaulted
//! description the build step works from.
//!
//! Every default of the resource lives here, in memory: nothing is written
//! back to `spec`. This is also where the rules the schema cannot express are
//! checked (an object stored under an older CRD version may predate a rule).

use crate::crd::{
    ConcurrencyPolicy, DatabasePeer, DatabaseSpec, DeletionPolicy, FleetPipeline, JobSpec,
    JobsSpec, RoleSettingsSpec, SslMode, WebhookIngress,
};
use crate::db::{RoleOverrides, WorkloadRole, roles::webhook_connection_limit};
use crate::duration;
use fleet_workloads::config::{
    DatabaseConfig, EventTimeGuardConfig, GeocodingConfig, JobConfig, JobKind, PipelineConfig,
    ProtocolOverrides, RetentionConfig, TARGET_CREDENTIAL_KEYS, TARGET_CREDENTIALS_DIR,
    TargetConfig,
};
use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::api::networking::v1::{NetworkPolicyIngressRule, NetworkPolicyPeer};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::ResourceExt;
use std::collections::BTreeMap;
use thiserror::Error;

pub const DEFAULT_DB_PORT: i32 = 5432;
pub const DEFAULT_TIME_ZONE: &str = "UTC";
pub const DEFAULT_WEBHOOK_REPLICAS: i32 = 2;
pub const DEFAULT_RETENTION_INGESTION_LOG: &str = "90d";
pub const DEFAULT_RETENTION_REFRESH_LOG: &str = "180d";
pub const DEFAULT_RETENTION_POSITIONS: &str = "400d";
pub const DEFAULT_MAX_FUTURE: &str = "48h";
pub const DEFAULT_NOT_BEFORE: &str = "2020-01-01T00:00:00Z";
pub const DEFAULT_STARTING_DEADLINE_SECONDS: i64 = 60;
pub const DEFAULT_HISTORY_LIMIT: i32 = 3;
pub const DEFAULT_BACKOFF_LIMIT: i32 = 1;
pub const DEFAULT_ACTIVE_DEADLINE_SECONDS: i64 = 900;

/// A spec the controller cannot act on, with the field at fault.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("spec.{field}: {reason}")]
pub struct InvalidSpec {
    pub field: String,
    pub reason: String,
}

fn invalid(field: impl Into<String>, reason: impl ToString) -> InvalidSpec {
    InvalidSpec {
        field: field.into(),
        reason: reason.to_string(),
    }
}

/// One enabled CronJob with every knob resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredJob {
    pub kind: JobKind,
    pub schedule: String,
    pub time_zone: String,
    pub suspend: bool,
    pub concurrency_policy: ConcurrencyPolicy,
    pub starting_deadline_seconds: i64,
    pub successful_jobs_history_limit: i32,
    pub failed_jobs_history_limit: i32,
    pub backoff_limit: i32,
    pub active_deadline_seconds: i64,
    pub resources: ResourceRequirements,
}

/// The webhook, when enabled.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredWebhook {
    /// Zero while the pipeline is suspended.
    pub replicas: i32,
    pub require_token: bool,
    /// (Secret name, key) of the push token.
    pub token: Option<(String, String)>,
    pub resources: ResourceRequirements,
    pub ingress: Option<WebhookIngress>,
    pub allow_from: Vec<NetworkPolicyPeer>,
}

/// What the NetworkPolicies need to know.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredNetwork {
    pub database_port: i32,
    pub database_peer: Option<DatabasePeer>,
    /// Admit this pipeline and the operator on the database pods.
    pub database_ingress: Option<Vec<NetworkPolicyIngressRule>>,
    /// Distinct ports of the Tracksolid endpoints.
    pub tracksolid_ports: Vec<i32>,
    pub tracksolid_peers: Vec<NetworkPolicyPeer>,
    pub geocoder_port: Option<i32>,
    pub geocoder_peers: Vec<NetworkPolicyPeer>,
}

/// A Secret the pipeline needs, and the keys it must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretRequirement {
    pub name: String,
    pub keys: Vec<String>,
    /// The spec field that references it, for messages.
    pub field: String,
}

/// The effective pipeline: what the build step renders into objects.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredPipeline {
    pub name: String,
    pub namespace: String,
    pub suspend: bool,
    pub image: String,
    /// Credentials Secret name per target, in spec order.
    pub target_secrets: Vec<(String, String)>,
    pub jobs: Vec<DesiredJob>,
    pub webhook: Option<DesiredWebhook>,
    pub network: DesiredNetwork,
    pub secrets: Vec<SecretRequirement>,
    pub config: PipelineConfig,
    pub database: DesiredDatabase,
}

/// The pipeline's database roles and what happens to them on deletion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredDatabase {
    /// `deletionPolicy: Retain`: keep the roles (and data) when the pipeline
    /// is deleted.
    pub retain: bool,
    /// The FleetPipeline's `fleetops.dev/rotate-credentials` annotation ("" when
    /// unset): a new value rotates every login password.
    pub rotation: String,
    /// Per role: connection limit and session settings beyond the defaults.
    pub roles: BTreeMap<WorkloadRole, RoleOverrides>,
}

/// Pooled connections per webhook replica (`fleet-webhook --db-connections`).
pub const WEBHOOK_DB_CONNECTIONS: i32 = 8;

fn role_overrides(spec: Option<&RoleSettingsSpec>) -> RoleOverrides {
    let Some(s) = spec else {
        return RoleOverrides::default();
    };
    let settings = [
        ("statement_timeout", &s.statement_timeout),
        ("lock_timeout", &s.lock_timeout),
        (
            "idle_in_transaction_session_timeout",
            &s.idle_in_transaction_session_timeout,
        ),
        ("idle_session_timeout", &s.idle_session_timeout),
        ("work_mem", &s.work_mem),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_owned(), v.clone())))
    .collect();
    RoleOverrides {
        connection_limit: s.connection_limit,
        settings,
    }
}

fn desired_database(
    spec: &DatabaseSpec,
    webhook_replicas: i32,
    rotation: String,
) -> DesiredDatabase {
    let r = spec.roles.clone().unwrap_or_default();
    let mut roles = BTreeMap::from([
        (WorkloadRole::Ingest, role_overrides(r.ingest.as_ref())),
        (WorkloadRole::Webhook, role_overrides(r.webhook.as_ref())),
        (
            WorkloadRole::Housekeeping,
            role_overrides(r.housekeeping.as_ref()),
        ),
        (WorkloadRole::Reader, role_overrides(r.reader.as_ref())),
    ]);
    if let Some(w) = roles.get_mut(&WorkloadRole::Webhook) {
        // Room for every replica's pool, twice over during a rolling update.
        w.connection_limit.get_or_insert(webhook_connection_limit(
            webhook_replicas.max(1),
            WEBHOOK_DB_CONNECTIONS,
        ));
    }
    DesiredDatabase {
        retain: spec.deletion_policy == Some(DeletionPolicy::Retain),
        rotation,
        roles,
    }
}

/// Resolve defaults and check what the schema cannot.
pub fn resolve(fp: &FleetPipeline, default_image: &str) -> Result<DesiredPipeline, InvalidSpec> {
    let spec = &fp.spec;
    let name = fp.name_any();
    let namespace = fp
        .namespace()
        .ok_or_else(|| invalid("metadata.namespace", "FleetPipeline must be namespaced"))?;
    if name.len() > crate::crd::MAX_NAME_LEN {
        return Err(invalid(
            "metadata.name",
            format!("must be at most {} characters", crate::crd::MAX_NAME_LEN),
        ));
    }
    if spec.targets.is_empty() {
        return Err(invalid("targets", "at least one target is required"));
    }
    let suspend = spec.suspend.unwrap_or(false);

    let jobs_spec = spec.jobs.clone().unwrap_or_default();
    let time_zone = jobs_spec
        .time_zone
        .clone()
        .unwrap_or_else(|| DEFAULT_TIME_ZONE.to_owned());
    let jobs: Vec<DesiredJob> = JobKind::ALL
        .into_iter()
        .filter_map(|kind| {
            let js = job_spec(&jobs_spec, kind).cloned().unwrap_or_default();
            js.enabled.unwrap_or(true).then(|| DesiredJob {
                kind,
                schedule: js
                    .schedule
                    .clone()
                    .unwrap_or_else(|| kind.default_schedule().to_owned()),
                time_zone: time_zone.clone(),
                suspend: suspend || js.suspend.unwrap_or(false),
                concurrency_policy: js.concurrency_policy.unwrap_or(ConcurrencyPolicy::Forbid),
                starting_deadline_seconds: js
                    .starting_deadline_seconds
                    .unwrap_or(DEFAULT_STARTING_DEADLINE_SECONDS),
                successful_jobs_history_limit: js
                    .successful_jobs_history_limit
                    .unwrap_or(DEFAULT_HISTORY_LIMIT),
                failed_jobs_history_limit: js
                    .failed_jobs_history_limit
                    .unwrap_or(DEFAULT_HISTORY_LIMIT),
                backoff_limit: js.backoff_limit.unwrap_or(DEFAULT_BACKOFF_LIMIT),
                active_deadline_seconds: js
                    .active_deadline_seconds
                    .unwrap_or(DEFAULT_ACTIVE_DEADLINE_SECONDS),
                resources: js.resources.clone().unwrap_or_else(default_resources),
            })
        })
        .collect();

    let webhook = match &spec.webhook {
        Some(w) if w.enabled.unwrap_or(true) => {
            let require_token = w.require_token.unwrap_or(true);
            if require_token && w.token_secret_ref.is_none() {
                return Err(invalid(
                    "webhook.tokenSecretRef",
                    "required while requireToken is true",
                ));
            }
            Some(DesiredWebhook {
                replicas: if suspend {
                    0
                } else {
                    w.replicas.unwrap_or(DEFAULT_WEBHOOK_REPLICAS)
                },
                require_token,
                token: w.token_secret_ref.as_ref().map(|r| {
                    (
                        r.name.clone(),
                        r.key
                            .clone()
                            .unwrap_or_else(|| DEFAULT_TOKEN_KEY.to_owned()),
                    )
                }),
                resources: w.resources.clone().unwrap_or_else(default_resources),
                ingress: w.ingress.clone(),
                allow_from: w.allow_from.clone(),
            })
        }
        _ => None,
    };

    let retention = spec.retention.clone().unwrap_or_default();
    let seconds = |field: &str, value: Option<&String>, default: &str| {
        duration::parse(value.map(String::as_str).unwrap_or(default)).map_err(|e| invalid(field, e))
    };
    let retention = RetentionConfig {
        ingestion_log_seconds: seconds(
            "retention.ingestionLog",
            retention.ingestion_log.as_ref(),
            DEFAULT_RETENTION_INGESTION_LOG,
        )?,
        refresh_log_seconds: seconds(
            "retention.refreshLog",
            retention.refresh_log.as_ref(),
            DEFAULT_RETENTION_REFRESH_LOG,
        )?,
        positions_seconds: seconds(
            "retention.positions",
            retention.positions.as_ref(),
            DEFAULT_RETENTION_POSITIONS,
        )?,
    };
    let guard = spec.event_time_guard.clone().unwrap_or_default();
    let not_before = guard
        .not_before
        .clone()
        .unwrap_or_else(|| DEFAULT_NOT_BEFORE.to_owned());
    not_before
        .parse::<jiff::Timestamp>()
        .map_err(|e| invalid("eventTimeGuard.notBefore", e))?;
    let event_time_guard = EventTimeGuardConfig {
        max_future_seconds: seconds(
            "eventTimeGuard.maxFuture",
            guard.max_future.as_ref(),
            DEFAULT_MAX_FUTURE,
        )?,
        not_before,
    };

    let config = PipelineConfig {
        pipeline: format!("{namespace}/{name}"),
        database: DatabaseConfig {
            host: spec.database.host.clone(),
            port: u16::try_from(spec.database.port.unwrap_or(DEFAULT_DB_PORT))
                .map_err(|e| invalid("database.port", e))?,
            name: spec.database.name.clone(),
            schema: spec.database.schema.clone(),
            ssl_mode: spec
                .database
                .ssl_mode
                .unwrap_or(SslMode::Prefer)
                .as_str()
                .to_owned(),
        },
        targets: spec
            .targets
            .iter()
            .map(|t| TargetConfig {
                name: t.name.clone(),
                endpoint: t.endpoint.clone(),
                credentials_dir: format!("{TARGET_CREDENTIALS_DIR}/{}", t.name),
                protocol: t
                    .protocol
                    .as_ref()
                    .map(|p| ProtocolOverrides {
                        map_type: p.map_type.clone(),
                        max_imeis_per_call: p.max_imeis_per_call,
                        parking_page_size: p.parking_page_size,
                        parking_first_row: p.parking_first_row,
                        parking_max_window_days: p.parking_max_window_days,
                        mileage_page_size: p.mileage_page_size,
                        mileage_first_row: p.mileage_first_row,
                        mileage_max_window_days: p.mileage_max_window_days,
                    })
                    .unwrap_or_default(),
            })
            .collect(),
        jobs: jobs
            .iter()
            .map(|j| {
                (
                    j.kind,
                    JobConfig {
                        schedule: j.schedule.clone(),
                        time_zone: j.time_zone.clone(),
                    },
                )
            })
            .collect(),
        geocoding: spec.geocoding.as_ref().map(|g| GeocodingConfig {
            url: g.url.clone(),
            requests_per_second: g.requests_per_second.unwrap_or(1).clamp(1, 100) as u32,
            user_agent: g.user_agent.clone(),
        }),
        retention,
        event_time_guard,
    };

    let netpol = spec.network_policy.clone().unwrap_or_default();
    let mut tracksolid_ports = spec
        .targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            url_port(&t.endpoint).map_err(|e| invalid(format!("targets[{i}].endpoint"), e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    tracksolid_ports.sort_unstable();
    tracksolid_ports.dedup();
    let geocoder_port = spec
        .geocoding
        .as_ref()
        .map(|g| url_port(&g.url).map_err(|e| invalid("geocoding.url", e)))
        .transpose()?;
    let peer = spec.database.peer.clone();
    let database_ingress = peer.as_ref().and_then(|p| {
        let policy = p.ingress_policy.as_ref()?;
        (policy.enabled.unwrap_or(false) && p.pod_selector.is_some())
            .then(|| policy.extra_ingress.clone())
    });
    let network = DesiredNetwork {
        database_port: spec.database.port.unwrap_or(DEFAULT_DB_PORT),
        database_peer: peer,
        database_ingress,
        tracksolid_ports,
        tracksolid_peers: netpol.tracksolid,
        geocoder_port,
        geocoder_peers: netpol.geocoder,
    };

    let mut secrets: Vec<SecretRequirement> = spec
        .targets
        .iter()
        .enumerate()
        .map(|(i, t)| SecretRequirement {
            name: t.credentials_secret_ref.name.clone(),
            keys: TARGET_CREDENTIAL_KEYS
                .iter()
                .map(|k| (*k).to_owned())
                .collect(),
            field: format!("targets[{i}].credentialsSecretRef"),
        })
        .collect();
    secrets.push(SecretRequirement {
        name: spec.database.admin_secret_ref.name.clone(),
        keys: vec!["username".to_owned(), "password".to_owned()],
        field: "database.adminSecretRef".to_owned(),
    });
    if let Some((name, key)) = webhook.as_ref().and_then(|w| w.token.clone()) {
        secrets.push(SecretRequirement {
            name,
            keys: vec![key],
            field: "webhook.tokenSecretRef".to_owned(),
        });
    }

    let database = desired_database(
        &spec.database,
        spec.webhook
            .as_ref()
            .and_then(|w| w.replicas)
            .unwrap_or(DEFAULT_WEBHOOK_REPLICAS),
        fp.annotations()
            .get(crate::credentials::ROTATE_ANNOTATION)
            .cloned()
            .unwrap_or_default(),
    );
    Ok(DesiredPipeline {
        database,
        name,
        namespace,
        suspend,
        image: spec
            .image
            .clone()
            .unwrap_or_else(|| default_image.to_owned()),
        target_secrets: spec
            .targets
            .iter()
            .map(|t| (t.name.clone(), t.credentials_secret_ref.name.clone()))
            .collect(),
        jobs,
        webhook,
        network,
        secrets,
        config,
    })
}

/// Key of the push token in its Secret when `tokenSecretRef.key` is unset.
pub const DEFAULT_TOKEN_KEY: &str = "token";

/// The TCP port of an http(s) URL (explicit, or 80 / 443).
fn url_port(text: &str) -> Result<i32, String> {
    let parsed = url::Url::parse(text).map_err(|e| e.to_string())?;
    parsed
        .port_or_known_default()
        .map(i32::from)
        .ok_or_else(|| format!("{text:?} has no port and no known default"))
}

fn job_spec(jobs: &JobsSpec, kind: JobKind) -> Option<&JobSpec> {
    match kind {
        JobKind::Positions => jobs.positions.as_ref(),
        JobKind::Track => jobs.track.as_ref(),
        JobKind::Alarms => jobs.alarms.as_ref(),
        JobKind::Trips => jobs.trips.as_ref(),
        JobKind::Parking => jobs.parking.as_ref(),
        JobKind::Devices => jobs.devices.as_ref(),
        JobKind::Housekeeping => jobs.housekeeping.as_ref(),
    }
}

/// Requests cpu 50m / memory 64Mi, limit memory 256Mi: the jobs are short
/// HTTP-then-write runs.
pub fn default_resources() -> ResourceRequirements {
    let q = |s: &str| Quantity(s.to_owned());
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), q("50m")),
            ("memory".to_owned(), q("64Mi")),
        ])),
        limits: Some(BTreeMap::from([("memory".to_owned(), q("256Mi"))])),
        ..Default::default()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::crd::FleetPipelineSpec;

    pub(crate) fn example() -> FleetPipeline {
        let yaml = include_str!("../../examples/fleetpipeline.yaml");
        let mut fp: FleetPipeline = serde_yaml::from_str(yaml).expect("example parses");
        fp.metadata.uid = Some("0d7c2f9e-0000-4000-8000-000000000001".into());
        fp
    }

    /// The example resolved, with its owner reference.
    pub(crate) fn example_parts() -> (
        DesiredPipeline,
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
    ) {
        let fp = example();
        (
            resolve(&fp, "img").unwrap(),
            crate::resources::meta::owner_reference(&fp).unwrap(),
        )
    }

    #[test]
    fn protocol_overrides_reach_the_config_and_are_absent_when_unset() {
        let mut fp = example();
        let plain = resolve(&fp, "img").unwrap();
        assert!(
            !plain.config.to_json().contains("protocol"),
            "no protocol key when unset (no ConfigMap change for existing pipelines)"
        );
        fp.spec.targets[0].protocol = Some(crate::crd::TargetProtocolSpec {
            parking_first_row: Some(1),
            ..Default::default()
        });
        let d = resolve(&fp, "img").unwrap();
        assert_eq!(d.config.targets[0].protocol.parking_first_row, Some(1));
        assert!(d.config.to_json().contains("\"parkingFirstRow\": 1"));
    }

    #[test]
    fn example_resolves_with_its_schedules() {
        let d = resolve(&example(), "img:1").unwrap();
        assert_eq!(d.namespace, "fleet");
        assert_eq!(d.image, "img:1");
        let pos = d
            .jobs
            .iter()
            .find(|j| j.kind == JobKind::Positions)
            .unwrap();
        assert_eq!(pos.schedule, "*/2 * * * *");
        assert_eq!(pos.time_zone, "Africa/Nairobi");
        assert_eq!(pos.concurrency_policy, ConcurrencyPolicy::Forbid);
        assert_eq!(d.config.retention.ingestion_log_seconds, 90 * 86_400);
        assert_eq!(d.config.event_time_guard.max_future_seconds, 48 * 3_600);
        assert_eq!(
            d.config.targets[0].credentials_dir,
            "/var/run/secrets/fleet/targets/hk"
        );
    }

    #[test]
    fn minimal_spec_takes_every_default() {
        let spec: FleetPipelineSpec = serde_json::from_value(serde_json::json!({
            "database": {"host": "db", "name": "fleet", "schema": "t", "adminSecretRef": {"name": "a"}},
            "targets": [{"name": "hk", "endpoint": "https://x/route/rest", "credentialsSecretRef": {"name": "c"}}]
        }))
        .unwrap();
        let mut fp = FleetPipeline::new("p", spec);
        fp.metadata.namespace = Some("ns".into());
        let d = resolve(&fp, "img").unwrap();
        assert_eq!(d.jobs.len(), JobKind::ALL.len());
        for j in &d.jobs {
            assert_eq!(j.schedule, j.kind.default_schedule());
            assert_eq!(j.time_zone, "UTC");
            assert!(!j.suspend);
        }
        assert_eq!(d.webhook, None);
        assert_eq!(d.config.database.port, 5432);
        assert_eq!(d.config.database.ssl_mode, "prefer");
        assert_eq!(d.config.event_time_guard.not_before, DEFAULT_NOT_BEFORE);
    }

    #[test]
    fn disabled_jobs_are_left_out_and_suspend_reaches_every_job() {
        let mut fp = example();
        fp.spec.jobs.as_mut().unwrap().trips = Some(JobSpec {
            enabled: Some(false),
            ..Default::default()
        });
        fp.spec.suspend = Some(true);
        let d = resolve(&fp, "img").unwrap();
        assert!(d.jobs.iter().all(|j| j.kind != JobKind::Trips));
        assert!(d.jobs.iter().all(|j| j.suspend));
    }

    #[test]
    fn bad_values_name_their_field() {
        let mut fp = example();
        fp.spec.retention.as_mut().unwrap().positions = Some("forever".into());
        let err = resolve(&fp, "img").unwrap_err();
        assert_eq!(err.field, "retention.positions");

        let mut fp = example();
        fp.spec.webhook.as_mut().unwrap().token_secret_ref = None;
        let err = resolve(&fp, "img").unwrap_err();
        assert_eq!(err.field, "webhook.tokenSecretRef");

        let mut fp = example();
        fp.spec.event_time_guard.as_mut().unwrap().not_before = Some("yesterday".into());
        assert_eq!(
            resolve(&fp, "img").unwrap_err().field,
            "eventTimeGuard.notBefore"
        );
    }
}
