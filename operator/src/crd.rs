//! The `FleetPipeline` custom resource (`fleetops.dev/v1alpha1`).
//!
//! Validation lives in the schema (patterns, enums, bounds and CEL rules) so
//! the apiserver rejects a bad object, naming the field, before the controller
//! sees it. The schema carries no defaults: every default is applied in memory
//! by [`crate::defaults`], never written back to `spec`, so GitOps tools see no
//! drift.

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::api::networking::v1::{IPBlock, NetworkPolicyIngressRule, NetworkPolicyPeer};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// The API group of every resource this operator defines.
pub const GROUP: &str = "fleetops.dev";

/// Longest pipeline name: CronJob names are `<pipeline>-<job>` and must stay
/// within 52 characters (`housekeeping` is the longest job name).
pub const MAX_NAME_LEN: usize = 39;

const DNS_LABEL: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
const DNS_SUBDOMAIN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
const SECRET_KEY: &str = r"^[-._a-zA-Z0-9]+$";
/// Five cron fields (minute hour day-of-month month day-of-week); no `TZ=`
/// prefix (the time zone is `jobs.timeZone`).
const CRON_RULE: &str = "self.matches('^[0-9A-Za-z*/,?-]+( +[0-9A-Za-z*/,?-]+){4}$')";
/// Our duration grammar, mirrored by [`crate::duration::parse`]: days, hours,
/// minutes, seconds in that order, at least one non-zero.
const DURATION_RULE: &str =
    "self.matches('^([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?$') && self.matches('[1-9]')";
const DURATION_MESSAGE: &str =
    "must be a duration such as 90d, 48h, 1d12h or 30m (units d, h, m, s in that order)";
const URL_RULE: &str =
    "isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''";

/// A fleet data pipeline: Tracksolid Pro / Jimi IoT accounts into one
/// PostgreSQL schema, with the CronJobs, webhook, roles and policies it needs.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "fleetops.dev",
    version = "v1alpha1",
    kind = "FleetPipeline",
    namespaced,
    shortname = "fp",
    category = "fleetops",
    status = "FleetPipelineStatus",
    derive = "PartialEq",
    doc = "A GPS-fleet data pipeline from the Tracksolid Pro / Jimi IoT cloud into PostgreSQL",
    validation = Rule::new("self.metadata.name.size() <= 39").message("metadata.name must be at most 39 characters: CronJob names are <name>-<job> and Kubernetes limits them to 52"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Targets", type_ = "integer", json_path = ".status.targets"),
    printcolumn(name = "Webhook", type_ = "string", json_path = ".status.webhook.summary"),
    printcolumn(name = "Ingest", type_ = "string", json_path = ".status.ingest"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].reason", priority = 1)
)]
#[serde(rename_all = "camelCase")]
pub struct FleetPipelineSpec {
    /// Suspend every CronJob and scale the webhook to zero. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,

    /// Workload image for the CronJobs and the webhook. Default: the image the
    /// operator was started with (`--workload-image`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub image: Option<String>,

    /// The PostgreSQL database and schema the pipeline writes to.
    pub database: DatabaseSpec,

    /// Tracksolid accounts to poll. Names are unique DNS labels.
    #[schemars(length(min = 1, max = 16))]
    #[x_kube(validation = Rule::new("self.all(t, self.exists_one(u, u.name == t.name))").message("target names must be unique"))]
    pub targets: Vec<TargetSpec>,

    /// The periodic jobs; each enabled job becomes a CronJob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<JobsSpec>,

    /// The push receiver for JIMI push messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookSpec>,

    /// Reverse geocoding of trips through a Nominatim-compatible service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geocoding: Option<GeocodingSpec>,

    /// How long the housekeeping job keeps data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<RetentionSpec>,

    /// Events stamped outside this window are rejected and counted, not stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time_guard: Option<EventTimeGuardSpec>,

    /// Egress peers for the NetworkPolicies (the pipeline's pods deny all by
    /// default and may reach only DNS, the database, Tracksolid and the geocoder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_policy: Option<NetworkPolicySpec>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseSpec {
    /// Host name or IP address of the PostgreSQL server.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[A-Za-z0-9:]([A-Za-z0-9.:-]*[A-Za-z0-9])?$")
    )]
    pub host: String,

    /// TCP port. Default 5432.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,

    /// Database name.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,

    /// The schema this pipeline owns: a lower-case SQL identifier. A second
    /// pipeline claiming the same database and schema is refused.
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z_][a-z0-9_]*$"))]
    #[x_kube(validation = Rule::new("!self.startsWith('pg_') && !(self in ['public', 'information_schema'])").message("schema must not be public, information_schema or start with pg_"))]
    pub schema: String,

    /// libpq sslmode. Default prefer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_mode: Option<SslMode>,

    /// Secret (kubernetes.io/basic-auth: username, password) of a role that may
    /// create roles and the schema. Read by the operator only, never copied.
    pub admin_secret_ref: SecretRef,

    /// Delete (default) drops the pipeline's roles when it is deleted; Retain
    /// keeps roles and data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,

    /// Where the database runs, for NetworkPolicy egress rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<DatabasePeer>,

    /// Connection limit and session settings of the pipeline's login roles
    /// (`<namespace>_<name>_ingest`, `_webhook`, `_housekeeping`, `_reader`).
    /// Unset fields keep the defaults listed in the README.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<DatabaseRolesSpec>,
}

/// Per-role overrides.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseRolesSpec {
    /// The role the ingest CronJobs log in as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingest: Option<RoleSettingsSpec>,
    /// The role the webhook receiver logs in as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<RoleSettingsSpec>,
    /// The role the housekeeping CronJob logs in as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub housekeeping: Option<RoleSettingsSpec>,
    /// The read-only role for Grafana and reporting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reader: Option<RoleSettingsSpec>,
}

/// Connection limit and session settings of one role (stored with
/// `ALTER ROLE … CONNECTION LIMIT` and `ALTER ROLE … SET`). Times are
/// PostgreSQL durations (`500ms`, `30s`, `5min`, `1h`; `0` turns a timeout off).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RoleSettingsSpec {
    /// Most concurrent connections of the role; -1 is unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = -1, max = 10000))]
    pub connection_limit: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16), regex(pattern = PG_DURATION))]
    pub statement_timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16), regex(pattern = PG_DURATION))]
    pub lock_timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16), regex(pattern = PG_DURATION))]
    pub idle_in_transaction_session_timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16), regex(pattern = PG_DURATION))]
    pub idle_session_timeout: Option<String>,
    /// Memory per sort or hash (`4MB`, `64kB`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16), regex(pattern = PG_MEMORY))]
    pub work_mem: Option<String>,
}

/// A PostgreSQL time value: digits with an optional unit.
pub const PG_DURATION: &str = r"^[0-9]{1,9}(us|ms|s|min|h|d)?$";
/// A PostgreSQL memory value: digits with an optional unit.
pub const PG_MEMORY: &str = r"^[0-9]{1,9}(B|kB|MB|GB|TB)?$";

#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeletionPolicy {
    Delete,
    Retain,
}

/// Exactly one of podSelector (database pods in the pipeline's namespace) or
/// ipBlock (a database outside the cluster).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.podSelector) != has(self.ipBlock)").message("set exactly one of podSelector or ipBlock"))]
#[x_kube(validation = Rule::new("!has(self.ingressPolicy) || !has(self.ingressPolicy.enabled) || !self.ingressPolicy.enabled || has(self.podSelector)").message("ingressPolicy needs a podSelector peer: the database must run in the pipeline's namespace").field_path(".ingressPolicy"))]
pub struct DatabasePeer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_block: Option<IPBlock>,
    /// Opt-in (podSelector only): a NetworkPolicy on the database pods that
    /// admits this pipeline's pods and the operator. NetworkPolicies only add
    /// allows: once one selects the database pods, every client not listed
    /// here is cut off (Grafana, reporting, and for CloudNativePG its operator
    /// on 8000, replication on 5432 and metrics on 9187) — list them in
    /// `extraIngress`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_policy: Option<DatabaseIngressPolicy>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseIngressPolicy {
    /// Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Further ingress rules for the database pods (other clients, operator
    /// ports, replication, metrics).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub extra_ingress: Vec<NetworkPolicyIngressRule>,
}

/// A Secret in the pipeline's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SecretRef {
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN))]
    pub name: String,
}

/// One key of a Secret in the pipeline's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SecretKeyRef {
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN))]
    pub name: String,
    /// Key in the Secret. Default `token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = SECRET_KEY))]
    pub key: Option<String>,
}

/// A Tracksolid account.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TargetSpec {
    /// A DNS label naming the target in status, logs and the database.
    #[schemars(length(min = 1, max = 63), regex(pattern = DNS_LABEL))]
    pub name: String,
    /// The region's Open API URL, e.g. https://hk-open.tracksolidpro.com/route/rest.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new(URL_RULE).message("endpoint must be an http(s) URL with a host, e.g. https://hk-open.tracksolidpro.com/route/rest"))]
    pub endpoint: String,
    /// Secret with keys appKey, appSecret, userId, userPassword.
    pub credentials_secret_ref: SecretRef,
    /// Protocol facts the public references leave uncertain, for an account
    /// that needs other values than the defaults (listed in the README).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<TargetProtocolSpec>,
}

/// Overrides of uncertain Tracksolid protocol facts. Leave unset unless the
/// API answers otherwise than the defaults assume.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TargetProtocolSpec {
    /// `map_type` for location and track calls (e.g. GOOGLE, BAIDU); unset sends none (raw WGS-84).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 16), regex(pattern = r"^[A-Z0-9_]+$"))]
    pub map_type: Option<String>,
    /// IMEIs per call for the list methods. Default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub max_imeis_per_call: Option<u32>,
    /// `page_size` of jimi.open.platform.report.parking. Default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub parking_page_size: Option<u32>,
    /// `start_row` of the parking report's first page (0 or 1). Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1))]
    pub parking_first_row: Option<u32>,
    /// Longest window of one parking report call, in days. Default 7.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 31))]
    pub parking_max_window_days: Option<u32>,
    /// `page_size` of jimi.device.track.mileage. Default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub mileage_page_size: Option<u32>,
    /// `start_row` of the first track.mileage page (0 or 1). Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1))]
    pub mileage_first_row: Option<u32>,
    /// Longest window of one track.mileage call, in days. Default 7.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 31))]
    pub mileage_max_window_days: Option<u32>,
}

/// The periodic jobs. A job left out runs on its default schedule; set
/// `enabled: false` to turn it off.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct JobsSpec {
    /// IANA time zone for every schedule, e.g. Africa/Nairobi. Default UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$")
    )]
    pub time_zone: Option<String>,
    /// Latest positions of every device. Default */2 * * * *.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positions: Option<JobSpec>,
    /// Dense trails with an overlapping look-back. Default */30 * * * *.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track: Option<JobSpec>,
    /// Alarms. Default */5 * * * *.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarms: Option<JobSpec>,
    /// Trips, reverse-geocoded. Default 15 * * * *.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trips: Option<JobSpec>,
    /// Parking and idling. Default 20 * * * *.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parking: Option<JobSpec>,
    /// Device list; disables devices gone from every account. Default 0 */6 * * *.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices: Option<JobSpec>,
    /// Retention and the reporting refresh. Default 30 2 * * *.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub housekeeping: Option<JobSpec>,
}

/// One CronJob's knobs. Unset fields take the documented defaults.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct JobSpec {
    /// Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Cron expression of five fields (minute hour day-of-month month day-of-week).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 9, max = 128))]
    #[x_kube(validation = Rule::new(CRON_RULE).message("schedule must be a cron expression of five fields (minute hour day-of-month month day-of-week), without TZ="))]
    pub schedule: Option<String>,
    /// Suspend this job only. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    /// Default Forbid: a run never overlaps the previous one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_policy: Option<ConcurrencyPolicy>,
    /// Default 60.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 86400))]
    pub starting_deadline_seconds: Option<i64>,
    /// Default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub successful_jobs_history_limit: Option<i32>,
    /// Default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub failed_jobs_history_limit: Option<i32>,
    /// Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 10))]
    pub backoff_limit: Option<i32>,
    /// Default 900.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 86400))]
    pub active_deadline_seconds: Option<i64>,
    /// Default requests cpu 50m, memory 64Mi; limits memory 256Mi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConcurrencyPolicy {
    Allow,
    Forbid,
    Replace,
}

impl ConcurrencyPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            ConcurrencyPolicy::Allow => "Allow",
            ConcurrencyPolicy::Forbid => "Forbid",
            ConcurrencyPolicy::Replace => "Replace",
        }
    }
}

/// The JIMI push receiver.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.enabled) && !self.enabled) || (has(self.requireToken) && !self.requireToken) || has(self.tokenSecretRef)").message("tokenSecretRef is required while requireToken is true (the default); set requireToken: false explicitly to accept unauthenticated pushes").field_path(".tokenSecretRef"))]
pub struct WebhookSpec {
    /// Default true when the webhook section is present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Default 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 20))]
    pub replicas: Option<i32>,
    /// The push token JIMI sends. Key default `token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_secret_ref: Option<SecretKeyRef>,
    /// Fail closed: without a token the webhook refuses to start. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_token: Option<bool>,
    /// NetworkPolicy ingress peers allowed to reach the webhook (e.g. the
    /// ingress controller's namespace). Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub allow_from: Vec<NetworkPolicyPeer>,
    /// Default requests cpu 50m, memory 64Mi; limits memory 256Mi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Optional Ingress so JIMI's servers can reach the webhook from the internet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<WebhookIngress>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WebhookIngress {
    /// IngressClass name, e.g. nginx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub class_name: Option<String>,
    /// Public host name, e.g. push.example.com.
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN))]
    pub host: String,
    /// Secret with the TLS certificate for `host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN))]
    pub tls_secret_name: Option<String>,
    /// Extra annotations for the Ingress (e.g. cert-manager issuer).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// Egress destinations for the pipeline's NetworkPolicies.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicySpec {
    /// Where the Tracksolid endpoints are. Default: anywhere (0.0.0.0/0 and
    /// ::/0) on each endpoint's port (443 for https).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub tracksolid: Vec<NetworkPolicyPeer>,
    /// Where the geocoder is. Default: anywhere on the geocoder URL's port.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub geocoder: Vec<NetworkPolicyPeer>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct GeocodingSpec {
    /// Base URL of a Nominatim-compatible reverse geocoder.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new(URL_RULE).message("url must be an http(s) URL with a host"))]
    pub url: String,
    /// Default 1 (Nominatim's usage policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub requests_per_second: Option<i32>,
    /// User-Agent sent to the geocoder; Nominatim's usage policy asks for one
    /// naming the application and a contact, e.g. "acme-fleet/1 (ops@acme.example)".
    /// Default "FleetPipeline/<version> (fleet-ingest trips)".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256), regex(pattern = r"^[ -~]+$"))]
    pub user_agent: Option<String>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RetentionSpec {
    /// Default 90d.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new(DURATION_RULE).message(DURATION_MESSAGE))]
    pub ingestion_log: Option<String>,
    /// Default 180d.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new(DURATION_RULE).message(DURATION_MESSAGE))]
    pub refresh_log: Option<String>,
    /// Default 400d.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new(DURATION_RULE).message(DURATION_MESSAGE))]
    pub positions: Option<String>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct EventTimeGuardSpec {
    /// How far ahead of now an event may be stamped. Default 48h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new(DURATION_RULE).message(DURATION_MESSAGE))]
    pub max_future: Option<String>,
    /// RFC 3339 instant; earlier events are rejected. Default 2020-01-01T00:00:00Z.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new("self.matches('^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$') && timestamp(self) >= timestamp('2000-01-01T00:00:00Z')").message("notBefore must be an RFC 3339 timestamp such as 2026-01-01T00:00:00Z, not before 2000"))]
    pub not_before: Option<String>,
}

/// Observed state, written by the operator only.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct FleetPipelineStatus {
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Progressing, Degraded, and later DatabaseReady, WebhookReady, IngestHealthy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Number of Tracksolid targets (printer column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<i32>,
    /// Summary of ingest health: Healthy, Stale, Failing, Suspended or Unknown (printer column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingest: Option<String>,
    /// Last applied database migration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<JobStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<RoleStatus>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct WebhookStatus {
    /// In-cluster URL of the push receiver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// `ready/desired`, or Disabled (printer column).
    pub summary: String,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    /// Job name: positions, track, alarms, trips, parking, devices, housekeeping.
    pub name: String,
    /// The CronJob that runs it.
    pub cron_job: String,
    /// Effective schedule.
    pub schedule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended: Option<bool>,
    /// When the last run finished, from the database's ingestion_log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rows_inserted: Option<i64>,
    /// Healthy, Stale, Failing or Unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RoleStatus {
    pub name: String,
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;

    #[test]
    fn crd_has_the_documented_names_and_columns() {
        let crd = FleetPipeline::crd();
        assert_eq!(crd.spec.group, GROUP);
        assert_eq!(
            crd.spec.names.short_names.as_deref(),
            Some(&["fp".to_string()][..])
        );
        let v = &crd.spec.versions[0];
        let cols: Vec<_> = v
            .additional_printer_columns
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            cols,
            ["Ready", "Targets", "Webhook", "Ingest", "Age", "Reason"]
        );
        assert!(v.subresources.as_ref().unwrap().status.is_some());
    }

    #[test]
    fn schema_carries_no_defaults() {
        let text = serde_json::to_string(&FleetPipeline::crd()).unwrap();
        assert!(
            !text.contains("\"default\""),
            "schema defaults cause GitOps drift"
        );
    }

    #[test]
    fn name_limit_matches_the_rule() {
        let longest = fleet_workloads::config::JobKind::ALL
            .iter()
            .map(|j| j.as_str().len())
            .max()
            .unwrap();
        assert_eq!(MAX_NAME_LEN + 1 + longest, 52);
    }
}
