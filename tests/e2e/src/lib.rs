//! Test harness for end-to-end tests against a real kube-apiserver, etcd,
//! kube-controller-manager and PostgreSQL, started by `tests/harness/up.sh`.
//!
//! Every test gets a throwaway namespace and an in-process operator scoped to
//! it, so tests run in parallel against one control plane without seeing each
//! other. The control plane is started once (if not already running) and left
//! running; `tests/run.sh` stops it at the end.

pub mod local_runner;
pub mod netpol;

use anyhow::{Context as _, Result, anyhow, bail, ensure};
use fleet_operator::controller::{self, Settings};
use fleet_operator::crd::FleetPipeline;
use fleet_operator::metrics::Metrics;
use fleet_operator::resources::OperatorIdentity;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config, ResourceExt};
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Where the shared control plane keeps its state: `$FP_STATE_DIR` or
/// `/tmp/fleetpipeline/e2e-state` (as tests/run.sh). Under /tmp because, run
/// as root, PostgreSQL runs as the postgres user, which cannot enter /root.
pub fn state_dir() -> PathBuf {
    std::env::var_os("FP_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/fleetpipeline/e2e-state"))
}

/// The variables `up.sh` wrote to `STATE_DIR/env`.
#[derive(Clone, Debug)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    pub fn get(&self, key: &str) -> Result<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| anyhow!("{key} missing from the harness env file"))
    }
    pub fn kubeconfig(&self) -> Result<&str> {
        self.get("KUBECONFIG")
    }
    pub fn database_url(&self) -> Result<&str> {
        self.get("DATABASE_URL")
    }
}

fn read_env(path: &Path) -> Result<Env> {
    let text = std::fs::read_to_string(path)?;
    let vars = text
        .lines()
        .filter_map(|l| {
            let l = l.trim().strip_prefix("export ").unwrap_or(l.trim());
            let (k, v) = l.split_once('=')?;
            (!k.starts_with('#')).then(|| {
                let v = v.trim_matches(|c| c == '"' || c == '\'');
                (k.to_owned(), v.to_owned())
            })
        })
        .collect();
    Ok(Env { vars })
}

fn apiserver_ready(env: &Env) -> bool {
    let Ok(kc) = env.kubeconfig() else {
        return false;
    };
    Command::new("kubectl")
        .args(["--kubeconfig", kc, "get", "--raw", "/readyz"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

static HARNESS: OnceLock<Result<Env, String>> = OnceLock::new();

/// The running control plane: started by `up.sh` unless already up, with the
/// FleetPipeline CRD installed and established.
pub fn harness() -> Result<Env> {
    HARNESS
        .get_or_init(|| start_harness().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!("test control plane unavailable: {e}"))
}

fn start_harness() -> Result<Env> {
    let state = state_dir();
    let env_file = state.join("env");
    let existing = read_env(&env_file).ok().filter(apiserver_ready);
    let env = match existing {
        Some(env) => env,
        None => {
            let up = repo_root().join("tests/harness/up.sh");
            // A stale state dir (processes gone) is replaced.
            let down = repo_root().join("tests/harness/down.sh");
            let _ = Command::new("bash").arg(&down).arg(&state).status();
            let status = Command::new("bash")
                .arg(&up)
                .arg(&state)
                .status()
                .context("running tests/harness/up.sh")?;
            if !status.success() {
                bail!("tests/harness/up.sh {} failed ({status})", state.display());
            }
            read_env(&env_file)?
        }
    };
    let crd = repo_root().join("crds/fleetpipeline.yaml");
    let out = kubectl_with(
        &env,
        &["apply", "--server-side", "--force-conflicts", "-f"],
        Some(&crd),
        None,
    )?;
    if !out.success {
        bail!("installing the CRD failed: {}", out.stderr);
    }
    // Poll rather than `kubectl wait`: right after creation the CRD has no
    // status.conditions yet and `kubectl wait` fails instead of waiting.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let out = kubectl_with(
            &env,
            &[
                "get",
                "crd/fleetpipelines.fleetops.dev",
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Established\")].status}",
            ],
            None,
            None,
        )?;
        if out.success && out.stdout.trim() == "True" {
            break;
        }
        if std::time::Instant::now() > deadline {
            bail!(
                "CRD not established after 60 s: {} {}",
                out.stdout,
                out.stderr
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(env)
}

/// Result of one `kubectl` run.
#[derive(Debug)]
pub struct Output {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

fn kubectl_with(
    env: &Env,
    args: &[&str],
    file: Option<&Path>,
    stdin: Option<&str>,
) -> Result<Output> {
    let mut cmd = Command::new("kubectl");
    cmd.env("KUBECONFIG", env.kubeconfig()?).args(args);
    if let Some(f) = file {
        cmd.arg(f);
    }
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().context("starting kubectl")?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    Ok(Output {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Run the real `kubectl` against the test control plane.
pub fn kubectl(args: &[&str]) -> Result<Output> {
    kubectl_with(&harness()?, args, None, None)
}

/// Run `kubectl` with `input` on stdin (e.g. `apply -f -`).
pub fn kubectl_stdin(args: &[&str], input: &str) -> Result<Output> {
    kubectl_with(&harness()?, args, None, Some(input))
}

/// An admin client for the test control plane.
pub async fn client() -> Result<Client> {
    let env = harness()?;
    let kc = Kubeconfig::read_from(env.kubeconfig()?)?;
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

/// The harness PostgreSQL: (host, port, superuser, password).
pub fn database() -> Result<(String, u16, String, String)> {
    let env = harness()?;
    let url = env.database_url()?;
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .ok_or_else(|| anyhow!("DATABASE_URL is not a postgres:// URL"))?;
    let (auth, hostpart) = rest
        .split_once('@')
        .ok_or_else(|| anyhow!("DATABASE_URL has no user"))?;
    let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
    let hostport = hostpart.split('/').next().unwrap_or(hostpart);
    let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, "5432"));
    Ok((
        host.to_owned(),
        port.parse()?,
        user.to_owned(),
        password.to_owned(),
    ))
}

/// The superuser password of the harness PostgreSQL (for admin Secrets).
pub fn db_password() -> Result<String> {
    Ok(database()?.3)
}

/// The database a namespace's pipelines use: `fp_<namespace>`, created on
/// first use, so tests never claim each other's schemas.
pub fn database_for(namespace: &str) -> Result<String> {
    let name = format!("fp_{}", namespace.replace('-', "_"));
    let env = harness()?;
    let out = Command::new("psql")
        .arg(env.database_url()?)
        .args(["-v", "ON_ERROR_STOP=1", "-qAt", "-c"])
        .arg(format!(
            "SELECT 1 FROM pg_database WHERE datname = '{name}'"
        ))
        .output()?;
    if String::from_utf8_lossy(&out.stdout).trim() != "1" {
        let out = Command::new("psql")
            .arg(env.database_url()?)
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-c"])
            .arg(format!("CREATE DATABASE \"{name}\""))
            .output()?;
        let err = String::from_utf8_lossy(&out.stderr);
        ensure!(
            out.status.success() || err.contains("already exists"),
            "CREATE DATABASE {name}: {err}"
        );
    }
    Ok(name)
}

/// The example manifest, moved into `namespace` and pointed at the harness
/// PostgreSQL (database `fp_<namespace>`).
pub fn example_in(namespace: &str) -> Result<String> {
    let text = std::fs::read_to_string(repo_root().join("examples/fleetpipeline.yaml"))?;
    let mut value: serde_yaml::Value = serde_yaml::from_str(&text)?;
    value["metadata"]["namespace"] = serde_yaml::Value::String(namespace.to_owned());
    let (host, port, _, _) = database()?;
    let db = &mut value["spec"]["database"];
    db["host"] = serde_yaml::Value::String(host);
    db["port"] = serde_yaml::Value::Number(port.into());
    db["name"] = serde_yaml::Value::String(database_for(namespace)?);
    db["sslMode"] = serde_yaml::Value::String("disable".to_owned());
    Ok(serde_yaml::to_string(&value)?)
}

static NS_COUNTER: AtomicU32 = AtomicU32::new(0);

/// A throwaway namespace with an operator scoped to it.
pub struct TestEnv {
    pub client: Client,
    pub namespace: String,
    pub writes: Metrics,
    operator: tokio::task::JoinHandle<()>,
}

impl TestEnv {
    /// Create a namespace named after the test and start an operator on it,
    /// as cluster-admin.
    pub async fn start(test: &str) -> Result<Self> {
        let admin = client().await?;
        Self::start_as(test, admin.clone(), admin, OperatorIdentity::default()).await
    }

    /// Same, with the operator using `operator_client` (e.g. a ServiceAccount
    /// token under the minimal RBAC).
    pub async fn start_as(
        test: &str,
        client: Client,
        operator_client: Client,
        identity: OperatorIdentity,
    ) -> Result<Self> {
        let n = NS_COUNTER.fetch_add(1, Ordering::SeqCst);
        let namespace = format!("e2e-{test}-{}-{n}", std::process::id());
        let ns_api: Api<Namespace> = Api::all(client.clone());
        let mut ns = Namespace::default();
        ns.metadata.name = Some(namespace.clone());
        ns_api.create(&PostParams::default(), &ns).await?;

        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        let settings = Settings {
            workload_image: "registry.invalid/fleet-workloads:e2e".to_owned(),
            namespace: Some(namespace.clone()),
            resync: Duration::from_secs(2),
            retry: Duration::from_secs(1),
            identity,
            reporter: format!("e2e-{test}"),
        };
        let op_client = operator_client;
        let op_metrics = metrics.clone();
        let operator = tokio::spawn(async move {
            let ready = Arc::new(AtomicBool::new(false));
            let never = std::future::pending::<()>();
            if let Err(e) = controller::run(op_client, settings, op_metrics, ready, never).await {
                eprintln!("operator failed to start: {e}");
            }
        });
        Ok(TestEnv {
            client,
            namespace,
            writes: metrics,
            operator,
        })
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    pub fn pipelines(&self) -> Api<FleetPipeline> {
        self.api()
    }

    /// `kubectl -n <namespace> ...`
    pub fn kubectl(&self, args: &[&str]) -> Result<Output> {
        let mut all = vec!["-n", self.namespace.as_str()];
        all.extend_from_slice(args);
        kubectl(&all)
    }

    /// `kubectl -n <namespace> apply -f -` with `manifest`.
    pub fn apply(&self, manifest: &str) -> Result<Output> {
        kubectl_stdin(&["-n", &self.namespace, "apply", "-f", "-"], manifest)
    }

    /// Create a Secret with string data.
    pub async fn secret(&self, name: &str, data: &[(&str, &str)]) -> Result<()> {
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(name.to_owned()),
                ..Default::default()
            },
            string_data: Some(
                data.iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..Default::default()
        };
        self.api::<Secret>()
            .create(&PostParams::default(), &secret)
            .await?;
        Ok(())
    }

    /// The Secrets examples/fleetpipeline.yaml references.
    pub async fn example_secrets(&self) -> Result<()> {
        let (_, _, user, password) = database()?;
        self.secret(
            "tracksolid-hk",
            &[
                ("appKey", "k"),
                ("appSecret", "s"),
                ("userId", "u"),
                ("userPassword", "p"),
            ],
        )
        .await?;
        self.secret(
            "fleet-db-admin",
            &[("username", &user), ("password", &password)],
        )
        .await?;
        self.secret("jimi-push", &[("token", "push-token")]).await
    }

    /// Total writes the operator sent (applies, deletes, status patches).
    pub fn operator_writes(&self) -> u64 {
        [
            "ServiceAccount",
            "ConfigMap",
            "CronJob",
            "FleetPipelineStatus",
        ]
        .iter()
        .map(|kind| {
            self.writes
                .writes
                .get_or_create(&fleet_operator::metrics::WriteLabels {
                    kind: (*kind).to_owned(),
                })
                .get()
        })
        .sum()
    }

    /// Stop the operator and delete the namespace.
    pub async fn cleanup(self) {
        // Pipelines first, while the operator runs: its finalizer drops
        // their database roles. Whatever is left after a while (a test
        // that broke the database on purpose) has its finalizer removed so
        // the namespace can go.
        let pipelines = self.pipelines();
        let _ = pipelines
            .delete_collection(&DeleteParams::default(), &Default::default())
            .await;
        let gone = wait_for("pipelines deleted", Duration::from_secs(20), || async {
            Ok(pipelines
                .list(&Default::default())
                .await?
                .items
                .is_empty()
                .then_some(()))
        })
        .await;
        if gone.is_err() {
            for fp in pipelines
                .list(&Default::default())
                .await
                .map(|l| l.items)
                .unwrap_or_default()
            {
                let _ = pipelines
                    .patch(
                        &fp.name_any(),
                        &kube::api::PatchParams::default(),
                        &kube::api::Patch::Merge(serde_json::json!({
                            "metadata": {"finalizers": null}
                        })),
                    )
                    .await;
            }
        }
        self.operator.abort();
        let ns_api: Api<Namespace> = Api::all(self.client.clone());
        let _ = ns_api
            .delete(&self.namespace, &DeleteParams::default())
            .await;
    }
}

/// `(status, reason, message)` of the condition `type_`, if set.
pub fn condition(fp: &FleetPipeline, type_: &str) -> Option<(String, String, String)> {
    fp.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Wait until the pipeline `name` is gone (its finalizer done). Delete with
/// `--wait=false`: a blocking `kubectl delete --wait` would stall the test's
/// runtime, on which the operator runs.
pub async fn wait_deleted(env: &TestEnv, name: &str) -> Result<()> {
    wait_for(
        &format!("{name} deleted"),
        Duration::from_secs(60),
        || async { Ok(env.pipelines().get_opt(name).await?.is_none().then_some(())) },
    )
    .await
}

/// Wait until the pipeline `name` is Ready=True at its current generation.
pub async fn wait_ready(env: &TestEnv, name: &str) -> Result<FleetPipeline> {
    wait_for(
        "Ready=True at the current generation",
        Duration::from_secs(60),
        || async {
            let fp = env.pipelines().get(name).await?;
            let status = fp.status.clone().unwrap_or_default();
            let ok = status
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            Ok((ok && status.observed_generation == fp.metadata.generation).then_some(fp))
        },
    )
    .await
}

/// A client authenticating with a bearer `token` (e.g. from `kubectl create token`).
pub async fn client_with_token(token: &str) -> Result<Client> {
    let env = harness()?;
    let mut config = Config::new(env.get("FP_APISERVER_URL")?.parse()?);
    let ca = std::fs::read(env.get("FP_CA_FILE")?)?;
    let ders = rustls_pemfile_certs(&ca)?;
    config.root_cert = Some(ders);
    config.auth_info.token = Some(token.to_owned().into());
    Ok(Client::try_from(config)?)
}

/// DER certificates from a PEM bundle (base64 between BEGIN/END lines).
fn rustls_pemfile_certs(pem: &[u8]) -> Result<Vec<Vec<u8>>> {
    use base64::Engine;
    let text = std::str::from_utf8(pem)?;
    let mut certs = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line.starts_with("-----BEGIN CERTIFICATE") {
            current = Some(String::new());
        } else if line.starts_with("-----END CERTIFICATE") {
            if let Some(b64) = current.take() {
                certs.push(base64::engine::general_purpose::STANDARD.decode(b64.trim())?);
            }
        } else if let Some(buf) = current.as_mut() {
            buf.push_str(line.trim());
        }
    }
    ensure!(!certs.is_empty(), "no certificate in the CA file");
    Ok(certs)
}

/// One write request recorded in the apiserver's audit log.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub verb: String,
    #[serde(rename = "requestURI")]
    pub request_uri: String,
    pub user: AuditUser,
    pub stage: String,
    #[serde(default)]
    pub object_ref: Option<AuditObjectRef>,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct AuditUser {
    pub username: String,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct AuditObjectRef {
    #[serde(default)]
    pub resource: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub subresource: Option<String>,
}

/// Position in the audit log, to count only what happens after it.
pub fn audit_mark() -> Result<u64> {
    let env = harness()?;
    Ok(std::fs::metadata(env.get("FP_AUDIT_LOG")?)
        .map(|m| m.len())
        .unwrap_or(0))
}

/// Write requests by `username` recorded after `mark` (audit policy: writes only).
pub fn audit_writes_since(mark: u64, username: &str) -> Result<Vec<AuditEvent>> {
    use std::io::{Read, Seek, SeekFrom};
    let env = harness()?;
    let mut file = std::fs::File::open(env.get("FP_AUDIT_LOG")?)?;
    // The apiserver rotates its log by size (--audit-log-maxsize in
    // tests/harness/up.sh); a shorter file than the mark means it did.
    ensure!(
        file.metadata()?.len() >= mark,
        "the audit log was rotated since the mark; counts would be wrong"
    );
    file.seek(SeekFrom::Start(mark))?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<AuditEvent>(l).ok())
        .filter(|e| e.stage == "ResponseComplete" && e.user.username == username)
        .collect())
}

/// A plain HTTP/1.0 request on loopback: (status code, body).
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(ct) = content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow!("no status line in {text:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((code, body))
}

/// A rendered pipeline config for workload tests: `schema` in database
/// `db`, no targets or jobs, a one-day retention and a wide time guard.
pub fn workload_config(db: &str, schema: &str) -> fleet_workloads::config::PipelineConfig {
    use fleet_workloads::config::{
        DatabaseConfig, EventTimeGuardConfig, PipelineConfig, RetentionConfig,
    };
    PipelineConfig {
        pipeline: format!("e2e/{schema}"),
        database: DatabaseConfig {
            host: "127.0.0.1".into(),
            port: 5432,
            name: db.to_owned(),
            schema: schema.to_owned(),
            ssl_mode: "disable".into(),
        },
        targets: vec![],
        jobs: Default::default(),
        geocoding: None,
        retention: RetentionConfig {
            ingestion_log_seconds: 86_400,
            refresh_log_seconds: 86_400,
            positions_seconds: 86_400,
        },
        event_time_guard: EventTimeGuardConfig {
            max_future_seconds: 48 * 3600,
            not_before: "2020-01-01T00:00:00Z".into(),
        },
    }
}

/// `application/x-www-form-urlencoded` escaping of one value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A fresh database on the harness's PostgreSQL, dropped by [`TestDb::drop_db`].
pub struct TestDb {
    pub name: String,
    pub admin_url: String,
}

impl TestDb {
    pub async fn create(prefix: &str) -> Result<Self> {
        use sqlx::Connection;
        let env = harness()?;
        let admin_url = env.database_url()?.to_owned();
        let n = NS_COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("{prefix}_{}_{n}", std::process::id());
        let mut conn = sqlx::PgConnection::connect(&admin_url).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await?;
        Ok(TestDb { name, admin_url })
    }

    /// URL of this database as the superuser.
    pub fn url(&self) -> String {
        match self.admin_url.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{}", self.name),
            None => self.admin_url.clone(),
        }
    }

    pub async fn drop_db(self) {
        use sqlx::Connection;
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin_url).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            )))
            .execute(&mut conn)
            .await;
        }
    }
}

/// Poll `check` until it returns `Some`, or fail after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_err = None;
    loop {
        match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(match last_err {
                Some(e) => e.context(format!("timed out waiting for {what}")),
                None => anyhow!("timed out after {timeout:?} waiting for {what}"),
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The debug build of a workspace binary (`fleet-ingest`, `fleet-webhook`),
/// which `tests/run.sh` builds before the tests.
pub fn workspace_binary(name: &str) -> Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let bin = target.join("debug").join(name);
    ensure!(
        bin.exists(),
        "{} not built (cargo build --workspace --bins)",
        bin.display()
    );
    Ok(bin)
}

/// A target's credentials directory, as the CronJob mounts it: one file per key.
pub fn write_target_credentials(
    dir: &Path,
    app_key: &str,
    app_secret: &str,
    user_id: &str,
    user_password: &str,
) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for (k, v) in [
        ("appKey", app_key),
        ("appSecret", app_secret),
        ("userId", user_id),
        ("userPassword", user_password),
    ] {
        std::fs::write(dir.join(k), v)?;
    }
    Ok(())
}

/// The same, for one of the simulator's accounts.
pub fn write_account_credentials(
    dir: &Path,
    account: &tracksolid_sim::AccountConfig,
) -> Result<()> {
    write_target_credentials(
        dir,
        &account.app_key,
        &account.app_secret,
        &account.user_id,
        &account.password,
    )
}

/// A rendered pipeline config in `dir` with one target, `hk`, on the
/// simulator's first account (its credentials written under
/// `dir/targets/hk`), storing into `schema` of database `db`. Returns the
/// config file's path.
pub fn write_sim_config(
    dir: &Path,
    db: &str,
    schema: &str,
    sim: &tracksolid_sim::SimServer,
) -> Result<PathBuf> {
    let account = sim
        .state()
        .accounts()
        .first()
        .cloned()
        .ok_or_else(|| anyhow!("the simulator has no accounts"))?;
    let creds = dir.join("targets/hk");
    write_account_credentials(&creds, &account)?;
    let mut config = workload_config(db, schema);
    config.targets = vec![fleet_workloads::config::TargetConfig {
        name: "hk".into(),
        endpoint: sim.endpoint(),
        credentials_dir: creds.display().to_string(),
        protocol: Default::default(),
    }];
    let path = dir.join("config.json");
    std::fs::write(&path, config.to_json())?;
    Ok(path)
}
