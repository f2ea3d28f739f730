//! The Helm chart (charts/fleet-operator) with the real `helm`, built from the
//! helm.sh/helm/v3 Go module by tests/helm-tool/build.sh:
//!
//! - `helm lint --strict`, default and non-default values;
//! - the chart's copies of the CRD and of the minimal RBAC equal their sources,
//!   and render to the same rules / schema;
//! - `helm template` equals the committed golden output
//!   (`UPDATE_GOLDEN=1 cargo test -p fleet-e2e --test helm` rewrites it);
//! - bad values fail at template/install time, naming the value;
//! - every rendered object passes the apiserver's strict server-side validation;
//! - the dashboards' SQL runs in PostgreSQL as a read-only role;
//! - `helm install` into the test apiserver, the operator binary then running
//!   as the chart's ServiceAccount with the chart's arguments and reconciling
//!   the example to Ready; `helm upgrade` with a changed CRD schema reaches the
//!   apiserver; `helm uninstall` keeps the CRD and the FleetPipelines.
//!
//! Pods never run here (no kubelet), so the installed Deployment's container
//! is run as a local process, with its args and env (downward API values
//! filled in as the kubelet would) and a token of its ServiceAccount.

use anyhow::{Context as _, Result, anyhow, bail, ensure};
use fleet_e2e::{
    Output, audit_mark, audit_writes_since, example_in, harness, kubectl, kubectl_stdin, repo_root,
    wait_for,
};
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

const CHART: &str = "charts/fleet-operator";
const CRD: &str = "fleetpipelines.fleetops.dev";
const PIPELINE: &str = "kenya-fleet";

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
}

/// The helm binary; tests/helm-tool/build.sh is a no-op when it is current.
fn helm_bin() -> Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let status = Command::new("bash")
                .arg(repo_root().join("tests/helm-tool/build.sh"))
                .status()
                .map_err(|e| format!("running tests/helm-tool/build.sh: {e}"))?;
            if !status.success() {
                return Err(format!("tests/helm-tool/build.sh failed ({status})"));
            }
            Ok(target_dir().join("control-plane/bin/helm"))
        })
        .clone()
        .map_err(|e| anyhow!(e))
}

/// Run helm in the repository root. Cluster commands get `--kubeconfig`.
fn helm(args: &[&str]) -> Result<Output> {
    let mut cmd = Command::new(helm_bin()?);
    cmd.current_dir(repo_root()).args(args);
    if matches!(
        args.first(),
        Some(&("install" | "upgrade" | "uninstall" | "status" | "history" | "get" | "list"))
    ) {
        cmd.arg("--kubeconfig").arg(harness()?.kubeconfig()?);
    }
    // Keep helm's cache/config out of $HOME and shared between runs.
    let home = target_dir().join("helm-home");
    cmd.env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"));
    let out = cmd.stdin(Stdio::null()).output().context("running helm")?;
    Ok(Output {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

fn helm_ok(args: &[&str]) -> Result<String> {
    let out = helm(args)?;
    ensure!(
        out.success,
        "helm {} failed:\n{}\n{}",
        args.join(" "),
        out.stdout,
        out.stderr
    );
    Ok(out.stdout)
}

fn kubectl_ok(args: &[&str]) -> Result<String> {
    let out = kubectl(args)?;
    ensure!(
        out.success,
        "kubectl {} failed: {}",
        args.join(" "),
        out.stderr
    );
    Ok(out.stdout)
}

fn kubectl_json(args: &[&str]) -> Result<Json> {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    Ok(serde_json::from_str(&kubectl_ok(&all)?)?)
}

/// The documents of a multi-document YAML stream (empty ones dropped).
fn documents(text: &str) -> Result<Vec<Yaml>> {
    use serde::Deserialize;
    let mut docs = Vec::new();
    for de in serde_yaml::Deserializer::from_str(text) {
        let doc = Yaml::deserialize(de)?;
        if !doc.is_null() {
            docs.push(doc);
        }
    }
    Ok(docs)
}

fn find<'a>(docs: &'a [Yaml], kind: &str) -> Result<&'a Yaml> {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind))
        .ok_or_else(|| anyhow!("no {kind} rendered"))
}

/// Numbers as f64: Helm's toYaml writes the CRD's `minimum: 0.0` as `0`,
/// which is the same JSON number to the apiserver.
fn numbers_as_floats(value: Yaml) -> Yaml {
    match value {
        Yaml::Number(n) => Yaml::Number(n.as_f64().unwrap_or(f64::NAN).into()),
        Yaml::Sequence(items) => Yaml::Sequence(items.into_iter().map(numbers_as_floats).collect()),
        Yaml::Mapping(map) => Yaml::Mapping(
            map.into_iter()
                .map(|(k, v)| (k, numbers_as_floats(v)))
                .collect(),
        ),
        other => other,
    }
}

fn remove_key(map: &mut Yaml, key: &str) {
    if let Some(m) = map.as_mapping_mut() {
        m.remove(key);
    }
}

// --- Offline: lint, copies, golden output, schema ---------------------------

#[test]
fn chart_lints_clean() -> Result<()> {
    for extra in [
        &[][..],
        &["-f", "charts/fleet-operator/tests/custom-values.yaml"][..],
    ] {
        let mut args = vec!["lint", "--strict", CHART];
        args.extend_from_slice(extra);
        let out = helm_ok(&args)?;
        ensure!(
            !out.contains("[WARNING]") && !out.contains("[ERROR]"),
            "helm lint {extra:?}:\n{out}"
        );
        ensure!(
            out.contains("1 chart(s) linted, 0 chart(s) failed"),
            "{out}"
        );
    }
    Ok(())
}

#[test]
fn chart_copies_match_their_sources() -> Result<()> {
    let root = repo_root();
    for (copy, source) in [
        ("files/fleetpipeline.crd.yaml", "crds/fleetpipeline.yaml"),
        ("files/operator-rbac.yaml", "charts/rbac/operator-rbac.yaml"),
    ] {
        let a = std::fs::read_to_string(root.join(CHART).join(copy))?;
        let b = std::fs::read_to_string(root.join(source))?;
        ensure!(
            a == b,
            "{CHART}/{copy} differs from {source}: run charts/fleet-operator/sync.sh"
        );
    }

    // What the chart renders from them: the same CRD (plus Helm's labels and
    // the keep policy) and exactly the same rules.
    let docs = documents(&helm_ok(&[
        "template",
        "fleet-operator",
        CHART,
        "-n",
        "fleet-system",
    ])?)?;
    let mut crd = find(&docs, "CustomResourceDefinition")?.clone();
    ensure!(
        crd["metadata"]["annotations"]["helm.sh/resource-policy"].as_str() == Some("keep"),
        "the CRD must be kept on uninstall"
    );
    remove_key(&mut crd["metadata"], "annotations");
    remove_key(&mut crd["metadata"], "labels");
    let source: Yaml = serde_yaml::from_str(&std::fs::read_to_string(
        root.join("crds/fleetpipeline.yaml"),
    )?)?;
    ensure!(
        numbers_as_floats(crd) == numbers_as_floats(source),
        "the rendered CRD differs from crds/fleetpipeline.yaml"
    );

    let rbac = documents(&std::fs::read_to_string(
        root.join("charts/rbac/operator-rbac.yaml"),
    )?)?;
    for kind in ["ClusterRole", "Role"] {
        ensure!(
            find(&docs, kind)?["rules"] == find(&rbac, kind)?["rules"],
            "the chart's {kind} rules differ from charts/rbac/operator-rbac.yaml"
        );
    }
    // No other rights anywhere in the chart.
    let roles = docs
        .iter()
        .filter(|d| matches!(d["kind"].as_str(), Some("ClusterRole" | "Role")))
        .count();
    ensure!(
        roles == 2,
        "expected one ClusterRole and one Role, got {roles}"
    );
    Ok(())
}

/// `helm template` output, with the CRD's 1700-line schema replaced by a
/// pointer: the chart renders crds/fleetpipeline.yaml unchanged (checked by
/// `chart_copies_match_their_sources`), so a CRD change need not touch the
/// golden files.
fn normalized_template(release: &str, values: Option<&str>) -> Result<String> {
    let mut args = vec!["template", release, CHART, "--namespace", "fleet-system"];
    if let Some(v) = values {
        args.extend(["-f", v]);
    }
    let text = helm_ok(&args)?;
    let mut out = String::new();
    for doc in text.split("\n---\n") {
        if doc.contains("\nkind: CustomResourceDefinition\n") {
            let head = doc.split_once("\nspec:\n").map(|(h, _)| h).unwrap_or(doc);
            out.push_str(head);
            out.push_str(
                "\nspec: {} # crds/fleetpipeline.yaml, see chart_copies_match_their_sources\n",
            );
        } else {
            out.push_str(doc);
            if !doc.ends_with('\n') {
                out.push('\n');
            }
        }
        out.push_str("---\n");
    }
    Ok(out)
}

#[test]
fn template_matches_golden_output() -> Result<()> {
    let golden_dir = repo_root().join(CHART).join("tests/golden");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for (name, release, values) in [
        ("default.yaml", "fleet-operator", None),
        (
            "custom.yaml",
            "fleet",
            Some("charts/fleet-operator/tests/custom-values.yaml"),
        ),
    ] {
        let rendered = normalized_template(release, values)?;
        let path = golden_dir.join(name);
        if update {
            std::fs::create_dir_all(&golden_dir)?;
            std::fs::write(&path, &rendered)?;
            println!("wrote {}", path.display());
            continue;
        }
        let golden = std::fs::read_to_string(&path)
            .with_context(|| format!("{} missing: run with UPDATE_GOLDEN=1", path.display()))?;
        if golden != rendered {
            let line = golden
                .lines()
                .zip(rendered.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| golden.lines().count().min(rendered.lines().count()));
            stale.push(format!(
                "{name}: first difference at line {}:\n  golden:   {:?}\n  rendered: {:?}",
                line + 1,
                golden.lines().nth(line),
                rendered.lines().nth(line)
            ));
        }
    }
    ensure!(
        stale.is_empty(),
        "helm template differs from charts/fleet-operator/tests/golden (review, then \
         UPDATE_GOLDEN=1 cargo test -p fleet-e2e --test helm template_matches_golden_output):\n{}",
        stale.join("\n")
    );
    Ok(())
}

#[test]
fn bad_values_are_rejected_naming_the_value() -> Result<()> {
    let cases: &[(&[&str], &str)] = &[
        (&["--set", "replicas=0"], "/replicas"),
        (&["--set", "replicas=two"], "/replicas"),
        (
            &["--set", "image.pullPolicy=Sometimes"],
            "/image/pullPolicy",
        ),
        (&["--set", "replica=2"], "'replica' not allowed"),
        (&["--set", "crds.install=yes"], "/crds/install"),
        (
            &["--set", "leaderElection.enabled=maybe"],
            "/leaderElection/enabled",
        ),
        (&["--set", "watchNamespace=Fleet_NS"], "/watchNamespace"),
        (&["--set", "metricsPort=80"], "/metricsPort"),
        (&["--set", "resyncSeconds=1"], "/resyncSeconds"),
        (&["--set", "service.type=Ingress"], "/service/type"),
        (
            &["--set", "resources.requests.cpu=lots"],
            "/resources/requests/cpu",
        ),
        (
            &["--set", "serviceMonitor.interval=30"],
            "/serviceMonitor/interval",
        ),
        (&["--set", "networkPolicy.apiServer.cidrs=null"], "cidrs"),
        (
            &["--set-json", "networkPolicy.apiServer.cidrs=[]"],
            "/networkPolicy/apiServer/cidrs",
        ),
        (
            &["--set", "networkPolicy.database.ports[0]=70000"],
            "/networkPolicy/database/ports/0",
        ),
        (
            &["--set", "dashboards.schema=Bad-Schema"],
            "/dashboards/schema",
        ),
        (
            &["--set", "dashboards.datasource=say \"hi\""],
            "/dashboards/datasource",
        ),
    ];
    let mut wrong = Vec::new();
    for (set, expected) in cases {
        let mut args = vec!["template", "x", CHART];
        args.extend_from_slice(set);
        let out = helm(&args)?;
        if out.success || !out.stderr.contains(expected) {
            wrong.push(format!(
                "{set:?}: success={} stderr={:?} (expected it to name {expected:?})",
                out.success, out.stderr
            ));
        }
    }
    ensure!(wrong.is_empty(), "{}", wrong.join("\n"));
    Ok(())
}

// --- Against the test apiserver and PostgreSQL ------------------------------

#[test]
fn every_rendered_object_passes_strict_server_side_validation() -> Result<()> {
    // The non-default values (NetworkPolicy, affinity, tolerations, dashboards,
    // RoleBinding) in a throwaway namespace; the ServiceMonitor needs the
    // Prometheus Operator's CRD, which this apiserver does not have.
    let ns = format!("e2e-helm-dry-{}", std::process::id());
    kubectl_ok(&["create", "namespace", &ns])?;
    let set = format!("watchNamespace={ns},dashboards.namespace={ns}");
    let text = helm_ok(&[
        "template",
        "fleet-dry",
        CHART,
        "-n",
        &ns,
        "-f",
        "charts/fleet-operator/tests/custom-values.yaml",
        "--set",
        &set,
        "--set",
        "serviceMonitor.enabled=false",
    ])?;
    let docs = documents(&text)?;
    ensure!(docs.len() >= 10, "only {} objects rendered", docs.len());
    let out = kubectl_stdin(
        &["apply", "--dry-run=server", "--validate=strict", "-f", "-"],
        &text,
    );
    let _ = kubectl(&["delete", "namespace", &ns, "--wait=false"]);
    let out = out?;
    ensure!(out.success, "server-side dry run failed: {}", out.stderr);
    ensure!(
        !out.stderr.to_lowercase().contains("warning"),
        "warnings: {}",
        out.stderr
    );
    Ok(())
}

/// Grafana's macros, expanded the way its PostgreSQL datasource does.
fn expand_grafana_sql(sql: &str, schema: &str) -> String {
    let mut s = sql
        .replace("${schema}", schema)
        .replace("$__interval", "'1m'");
    let from = "'2026-01-01T00:00:00Z'";
    let to = "'2026-01-02T00:00:00Z'";
    while let Some(start) = s.find("$__timeGroupAlias(") {
        let rest = &s[start + "$__timeGroupAlias(".len()..];
        let end = rest.find(')').unwrap_or(rest.len());
        let column = rest[..end]
            .split(',')
            .next()
            .unwrap_or("")
            .trim()
            .to_owned();
        let expansion =
            format!("to_timestamp(floor(extract(epoch FROM {column})/60)*60) AS \"time\"");
        s = format!(
            "{}{}{}",
            &s[..start],
            expansion,
            &rest[(end + 1).min(rest.len())..]
        );
    }
    while let Some(start) = s.find("$__timeFilter(") {
        let rest = &s[start + "$__timeFilter(".len()..];
        let end = rest.find(')').unwrap_or(rest.len());
        let column = rest[..end].trim().to_owned();
        let expansion = format!("{column} BETWEEN {from} AND {to}");
        s = format!(
            "{}{}{}",
            &s[..start],
            expansion,
            &rest[(end + 1).min(rest.len())..]
        );
    }
    s
}

fn psql(url: &str, sql: &str) -> Result<Output> {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-X", "-q", "-c", sql])
        .stdin(Stdio::null())
        .output()
        .context("running psql")?;
    Ok(Output {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

#[test]
fn dashboards_use_the_named_datasource_and_their_sql_runs_read_only() -> Result<()> {
    let text = helm_ok(&[
        "template",
        "fleet",
        CHART,
        "-f",
        "charts/fleet-operator/tests/custom-values.yaml",
    ])?;
    let dashboards: Vec<(String, Json)> = documents(&text)?
        .into_iter()
        .filter(|d| d["kind"].as_str() == Some("ConfigMap"))
        .filter(|d| d["metadata"]["labels"]["grafana_dashboard"].as_str() == Some("1"))
        .flat_map(|d| {
            d["data"]
                .as_mapping()
                .into_iter()
                .flatten()
                .map(|(k, v)| {
                    let name = k.as_str().unwrap_or_default().to_owned();
                    let json = serde_json::from_str(v.as_str().unwrap_or_default())
                        .with_context(|| format!("{name} is not JSON"));
                    json.map(|j| (name, j))
                })
                .collect::<Vec<_>>()
        })
        .collect::<Result<_>>()?;
    let mut names: Vec<&str> = dashboards.iter().map(|(n, _)| n.as_str()).collect();
    names.sort();
    ensure!(
        names
            == [
                "fleet-alarms.json",
                "fleet-positions.json",
                "ingest-health.json"
            ],
        "{names:?}"
    );

    // The contract the dashboards rely on (issue 4's migrations create these
    // in each pipeline's schema); a read-only role like `<pipeline>_reader`.
    let env = harness()?;
    let url = env.database_url()?;
    let id = std::process::id();
    let schema = format!("e2e_dash_{id}");
    let reader = format!("e2e_dash_reader_{id}");
    let setup = format!(
        "CREATE SCHEMA {schema};
         CREATE TABLE {schema}.positions (imei text, gps_time timestamptz, lat double precision, lng double precision, speed double precision);
         CREATE VIEW {schema}.latest_positions AS SELECT DISTINCT ON (imei) * FROM {schema}.positions ORDER BY imei, gps_time DESC;
         CREATE TABLE {schema}.alarms (imei text, alarm_type text, alarm_time timestamptz);
         CREATE TABLE {schema}.ingestion_log (endpoint text, target text, started_at timestamptz, finished_at timestamptz, rows_inserted integer, status text, error text);
         CREATE VIEW {schema}.v_ingest_health AS SELECT endpoint, max(finished_at) AS last_success FROM {schema}.ingestion_log WHERE error IS NULL GROUP BY endpoint;
         INSERT INTO {schema}.positions VALUES ('860000000000001', '2026-01-01T10:00:00Z', -1.29, 36.82, 42);
         INSERT INTO {schema}.alarms VALUES ('860000000000001', 'SOS', '2026-01-01T10:01:00Z');
         INSERT INTO {schema}.ingestion_log VALUES ('positions', 'hk', '2026-01-01T10:00:00Z', '2026-01-01T10:00:02Z', 1, 'ok', NULL);
         CREATE ROLE {reader} LOGIN PASSWORD 'reader';
         GRANT USAGE ON SCHEMA {schema} TO {reader};
         GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {reader};"
    );
    let out = psql(url, &setup)?;
    ensure!(out.success, "fixture: {}", out.stderr);
    // Same server, logged in as the reader.
    let reader_url = {
        let (scheme_user, rest) = url
            .split_once('@')
            .ok_or_else(|| anyhow!("DATABASE_URL without credentials"))?;
        let scheme = scheme_user.split("//").next().unwrap_or("postgres:");
        format!("{scheme}//{reader}:reader@{rest}")
    };

    let mut failures = Vec::new();
    let mut queries = 0;
    for (name, dash) in &dashboards {
        let vars = dash["templating"]["list"]
            .as_array()
            .ok_or_else(|| anyhow!("{name}: no variables"))?;
        let var = |n: &str| vars.iter().find(|v| v["name"] == n).cloned();
        let ds = var("datasource").ok_or_else(|| anyhow!("{name}: no datasource variable"))?;
        ensure!(
            ds["current"]["value"] == "Fleet PostgreSQL (reader)"
                && ds["query"] == "grafana-postgresql-datasource",
            "{name}: datasource variable {ds}"
        );
        let sch = var("schema").ok_or_else(|| anyhow!("{name}: no schema variable"))?;
        ensure!(
            sch["query"] == "kenya_fleet",
            "{name}: schema variable {sch}"
        );
        ensure!(
            !serde_json::to_string(dash)?.contains("__FLEET_"),
            "{name}: placeholder left"
        );
        for panel in dash["panels"].as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or("?");
            for target in panel["targets"].as_array().into_iter().flatten() {
                if target["datasource"]["uid"] != "${datasource}"
                    || panel["datasource"]["uid"] != "${datasource}"
                {
                    failures.push(format!("{name} / {title}: not on ${{datasource}}"));
                }
                let sql = target["rawSql"].as_str().unwrap_or_default();
                let expanded = expand_grafana_sql(sql, &schema);
                if expanded.contains('$') {
                    failures.push(format!("{name} / {title}: unexpanded macro in {expanded}"));
                    continue;
                }
                queries += 1;
                let out = psql(&reader_url, &expanded)?;
                if !out.success {
                    failures.push(format!(
                        "{name} / {title}: {}\n{expanded}",
                        out.stderr.trim()
                    ));
                }
            }
        }
    }
    let _ = psql(
        url,
        &format!("DROP SCHEMA {schema} CASCADE; DROP ROLE {reader};"),
    );
    ensure!(failures.is_empty(), "{}", failures.join("\n"));
    ensure!(queries >= 20, "only {queries} queries");
    println!("{queries} dashboard queries ran as a read-only role");
    Ok(())
}

// --- install / upgrade / uninstall ------------------------------------------

/// The Deployment's container, run as a local process.
struct LocalOperator {
    child: Mutex<Child>,
    log: PathBuf,
}

impl LocalOperator {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
    /// Fails when the process has exited (it should run until stopped).
    fn check_running(&self) -> Result<()> {
        let mut child = self.child.lock().map_err(|_| anyhow!("poisoned"))?;
        match child.try_wait()? {
            Some(status) => bail!("the operator exited ({status}):\n{}", self.log()),
            None => Ok(()),
        }
    }
    /// SIGTERM, as the kubelet would.
    fn stop(&self) {
        if let Ok(mut child) = self.child.lock() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }
}

impl Drop for LocalOperator {
    fn drop(&mut self) {
        if let Ok(child) = self.child.get_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Uninstalls the release and deletes the test's namespaces when the test
/// ends, also when it fails half-way (the ClusterRole would otherwise stay).
struct Cleanup {
    release: String,
    namespaces: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(ns) = self.namespaces.first() {
            let _ = helm(&["uninstall", &self.release, "-n", ns, "--ignore-not-found"]);
        }
        let mut args = vec!["delete", "namespace", "--ignore-not-found", "--wait=false"];
        args.extend(self.namespaces.iter().map(String::as_str));
        let _ = kubectl(&args);
    }
}

/// What the kubelet would do with the installed Deployment's pod template,
/// minus the container runtime: the same args and env (downward API filled
/// in), the ServiceAccount's token, and --metrics-addr on loopback.
fn run_installed_operator(
    release_ns: &str,
    deployment: &str,
    pod_name: &str,
    metrics_addr: &str,
) -> Result<LocalOperator> {
    let bin = target_dir().join("debug/fleet-operator");
    ensure!(
        bin.exists(),
        "{} not built: run `cargo build -p fleet-operator` (tests/run.sh does)",
        bin.display()
    );
    let deploy = kubectl_json(&["-n", release_ns, "get", "deployment", deployment])?;
    let pod = &deploy["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let sa = pod["serviceAccountName"]
        .as_str()
        .ok_or_else(|| anyhow!("no serviceAccountName"))?;

    let mut args: Vec<String> = container["args"]
        .as_array()
        .ok_or_else(|| anyhow!("no args"))?
        .iter()
        .map(|a| a.as_str().unwrap_or_default().to_owned())
        .collect();
    let at = args
        .iter()
        .position(|a| a.starts_with("--metrics-addr="))
        .ok_or_else(|| anyhow!("no --metrics-addr in {args:?}"))?;
    args[at] = format!("--metrics-addr={metrics_addr}");

    let mut env: Vec<(String, String)> = Vec::new();
    for var in container["env"].as_array().into_iter().flatten() {
        let name = var["name"].as_str().unwrap_or_default().to_owned();
        let value = match (
            &var["value"],
            var["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
        ) {
            (Json::String(v), _) => v.clone(),
            (_, Some("metadata.name")) => pod_name.to_owned(),
            (_, Some("metadata.namespace")) => release_ns.to_owned(),
            _ => bail!("env {name}: cannot resolve {var}"),
        };
        env.push((name, value));
    }

    // Authenticate exactly as the pod would: a token of its ServiceAccount.
    let token = kubectl_ok(&["-n", release_ns, "create", "token", sa, "--duration=1h"])?;
    let h = harness()?;
    let kubeconfig = std::env::temp_dir().join(format!("helm-e2e-{release_ns}.kubeconfig"));
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\n    certificate-authority: {}\n\
             users:\n- name: {sa}\n  user:\n    token: {}\ncontexts:\n- name: sa\n  context: {{cluster: test, user: {sa}}}\ncurrent-context: sa\n",
            h.get("FP_APISERVER_URL")?,
            h.get("FP_CA_FILE")?,
            token.trim()
        ),
    )?;
    let log = std::env::temp_dir().join(format!("helm-e2e-{release_ns}-operator.log"));
    let out = std::fs::File::create(&log)?;
    let child = Command::new(bin)
        .args(&args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env)
        .env("KUBECONFIG", &kubeconfig)
        .stdout(out.try_clone()?)
        .stderr(out)
        .stdin(Stdio::null())
        .spawn()
        .context("starting fleet-operator")?;
    Ok(LocalOperator {
        child: Mutex::new(child),
        log,
    })
}

fn free_loopback_port() -> Result<String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.to_string())
}

fn http_status(addr: &str, path: &str) -> Result<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow!("no status line in {text:?}"))
}

/// Ready=True at the current generation, read with kubectl; fails at once
/// if the operator process exits.
async fn wait_pipeline_ready(ns: &str, op: &LocalOperator) -> Result<Json> {
    wait_for(
        "the pipeline Ready=True",
        Duration::from_secs(90),
        || async {
            if let Err(e) = op.check_running() {
                return Ok(Some(Err(e)));
            }
            let fp = kubectl_json(&["-n", ns, "get", "fleetpipeline", PIPELINE])?;
            let ready = fp["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            let current = fp["status"]["observedGeneration"] == fp["metadata"]["generation"];
            Ok((ready && current).then_some(Ok(fp)))
        },
    )
    .await
    .map_err(|e| anyhow!("{e:#}\noperator log:\n{}", op.log()))?
}

/// A copy of the chart whose CRD has one more optional field, as the next
/// chart version with a CRD schema change would.
fn chart_with_crd_change(dir: &Path) -> Result<()> {
    fn copy(from: &Path, to: &Path) -> Result<()> {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            let target = to.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                copy(&entry.path(), &target)?;
            } else {
                std::fs::copy(entry.path(), &target)?;
            }
        }
        Ok(())
    }
    let _ = std::fs::remove_dir_all(dir);
    copy(&repo_root().join(CHART), dir)?;
    let crd_path = dir.join("files/fleetpipeline.crd.yaml");
    let mut crd: Yaml = serde_yaml::from_str(&std::fs::read_to_string(&crd_path)?)?;
    let spec_props = &mut crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        ["properties"];
    let map = spec_props
        .as_mapping_mut()
        .ok_or_else(|| anyhow!("CRD without spec properties"))?;
    map.insert(
        "upgradeProbe".into(),
        serde_yaml::from_str("{type: string, description: added by the helm upgrade test}")?,
    );
    std::fs::write(&crd_path, serde_yaml::to_string(&crd)?)?;
    let chart_path = dir.join("Chart.yaml");
    let chart = std::fs::read_to_string(&chart_path)?.replace("version: 0.1.0", "version: 0.1.1");
    std::fs::write(chart_path, chart)?;
    Ok(())
}

fn crd_has_upgrade_probe() -> Result<bool> {
    let crd = kubectl_json(&["get", "crd", CRD])?;
    Ok(!crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        ["properties"]["upgradeProbe"]
        .is_null())
}

#[tokio::test]
async fn install_reconcile_upgrade_crd_and_uninstall_keeping_data() -> Result<()> {
    let id = std::process::id();
    let release = format!("fp-helm-{id}");
    let release = release.as_str();
    let release_ns = format!("e2e-helm-system-{id}");
    let fleet_ns = format!("e2e-helm-fleet-{id}");
    let _cleanup = Cleanup {
        release: release.to_owned(),
        namespaces: vec![release_ns.clone(), fleet_ns.clone()],
    };
    kubectl_ok(&["create", "namespace", &fleet_ns])?;

    // Install with two replicas (so leader election is on) watching one
    // namespace. --take-ownership: the test harness applied the same CRD with
    // kubectl before, as a cluster that had it before Helm would.
    let set = format!("watchNamespace={fleet_ns},replicas=2");
    let out = helm_ok(&[
        "install",
        release,
        CHART,
        "-n",
        &release_ns,
        "--create-namespace",
        "--take-ownership",
        "--set",
        &set,
    ])?;
    ensure!(out.contains("STATUS: deployed"), "{out}");
    ensure!(
        out.contains(&format!(
            "watches FleetPipelines in namespace {fleet_ns} only"
        )),
        "NOTES: {out}"
    );
    let crd = kubectl_json(&["get", "crd", CRD])?;
    ensure!(crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep");
    ensure!(crd["metadata"]["annotations"]["meta.helm.sh/release-name"] == release);

    let fullname = format!("{release}-fleet-operator");
    let user = format!("system:serviceaccount:{release_ns}:{fullname}");
    // The RoleBinding scopes the operator to its namespace.
    for (ns, verb, resource, expected) in [
        (
            fleet_ns.as_str(),
            "list",
            "fleetpipelines.fleetops.dev",
            "yes",
        ),
        (fleet_ns.as_str(), "patch", "cronjobs.batch", "yes"),
        ("default", "list", "fleetpipelines.fleetops.dev", "no"),
        (
            fleet_ns.as_str(),
            "delete",
            "fleetpipelines.fleetops.dev",
            "no",
        ),
        // Its own login Secrets: create and patch, never delete.
        (fleet_ns.as_str(), "create", "secrets", "yes"),
        (fleet_ns.as_str(), "delete", "secrets", "no"),
        ("default", "create", "secrets", "no"),
        (
            release_ns.as_str(),
            "create",
            "leases.coordination.k8s.io",
            "yes",
        ),
    ] {
        let out = kubectl(&["auth", "can-i", verb, resource, "-n", ns, "--as", &user])?;
        ensure!(
            out.stdout.trim() == expected,
            "can-i {verb} {resource} -n {ns}: {} (expected {expected})",
            out.stdout.trim()
        );
    }

    // The Secrets and the example pipeline.
    let db_password_arg = format!("--from-literal=password={}", fleet_e2e::db_password()?);
    for args in [
        vec![
            "create",
            "secret",
            "generic",
            "tracksolid-hk",
            "--from-literal=appKey=k",
            "--from-literal=appSecret=s",
            "--from-literal=userId=u",
            "--from-literal=userPassword=p",
        ],
        vec![
            "create",
            "secret",
            "generic",
            "fleet-db-admin",
            "--from-literal=username=postgres",
            &db_password_arg,
        ],
        vec![
            "create",
            "secret",
            "generic",
            "jimi-push",
            "--from-literal=token=push-token",
        ],
    ] {
        let mut all = vec!["-n", fleet_ns.as_str()];
        all.extend(args);
        kubectl_ok(&all)?;
    }
    let out = kubectl_stdin(&["apply", "-f", "-"], &example_in(&fleet_ns)?)?;
    ensure!(out.success, "{}", out.stderr);

    // The installed operator, as its pod would run.
    let mark = audit_mark()?;
    let addr = free_loopback_port()?;
    let pod = format!("{fullname}-7d9f8b6c4-x2x5q");
    let op = run_installed_operator(&release_ns, &fullname, &pod, &addr)?;
    let fp = wait_pipeline_ready(&fleet_ns, &op).await?;
    ensure!(fp["status"]["targets"] == 1, "{}", fp["status"]);
    kubectl_ok(&[
        "-n",
        &fleet_ns,
        "get",
        "configmap",
        &format!("{PIPELINE}-config"),
    ])?;
    kubectl_ok(&[
        "-n",
        &fleet_ns,
        "get",
        "cronjob",
        &format!("{PIPELINE}-positions"),
    ])?;
    // The probes the Deployment declares answer on the metrics port.
    let deploy = kubectl_json(&["-n", &release_ns, "get", "deployment", &fullname])?;
    let c = &deploy["spec"]["template"]["spec"]["containers"][0];
    for probe in ["livenessProbe", "readinessProbe"] {
        let path = c[probe]["httpGet"]["path"]
            .as_str()
            .unwrap_or("?")
            .to_owned();
        let code = wait_for(
            &format!("{probe} {path} 200"),
            Duration::from_secs(30),
            || {
                let (addr, path) = (addr.clone(), path.clone());
                async move { Ok(http_status(&addr, &path).ok().filter(|c| *c == 200)) }
            },
        )
        .await?;
        ensure!(code == 200);
    }
    // Leader election on (replicas: 2): the Lease in the release namespace.
    let holder = kubectl_ok(&[
        "-n",
        &release_ns,
        "get",
        "lease",
        &format!("{fullname}-leader"),
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ])?;
    ensure!(holder == pod, "lease holder {holder:?}");
    // The operator wrote as the chart's ServiceAccount (the audit log names it).
    let writes = audit_writes_since(mark, &user)?;
    ensure!(writes.len() >= 16, "only {} writes by {user}", writes.len());
    println!(
        "installed; the operator as {user} made {} writes, Lease held by {holder}",
        writes.len()
    );

    // helm upgrade with a CRD schema change: the apiserver serves it.
    let mut probe: Yaml = serde_yaml::from_str(&example_in(&fleet_ns)?)?;
    probe["spec"]["upgradeProbe"] = "hello".into();
    let probe_fp = serde_yaml::to_string(&probe)?;
    let strict = ["apply", "--dry-run=server", "--validate=strict", "-f", "-"];
    let before = kubectl_stdin(&strict, &probe_fp)?;
    ensure!(
        !before.success && before.stderr.contains("upgradeProbe"),
        "before the upgrade the field must be unknown: {before:?}"
    );
    let changed = std::env::temp_dir().join(format!("helm-e2e-chart-{id}"));
    chart_with_crd_change(&changed)?;
    let changed_path = changed.to_string_lossy().into_owned();
    let out = helm_ok(&[
        "upgrade",
        release,
        &changed_path,
        "-n",
        &release_ns,
        "--reuse-values",
    ])?;
    ensure!(out.contains("REVISION: 2"), "{out}");
    ensure!(
        crd_has_upgrade_probe()?,
        "the CRD did not get the new field"
    );
    println!("upgraded to a chart whose CRD adds spec.upgradeProbe: the apiserver has it");
    kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "--timeout=30s",
        &format!("crd/{CRD}"),
    ])?;
    wait_for(
        "the new field accepted by strict validation",
        Duration::from_secs(30),
        || async {
            let after = kubectl_stdin(&strict, &probe_fp)?;
            Ok(after.success.then_some(()))
        },
    )
    .await?;
    // The operator keeps working across the upgrade.
    kubectl_ok(&[
        "-n",
        &fleet_ns,
        "patch",
        "fp",
        PIPELINE,
        "--type=merge",
        "-p",
        r#"{"spec":{"jobs":{"alarms":{"schedule":"*/7 * * * *"}}}}"#,
    ])?;
    wait_pipeline_ready(&fleet_ns, &op).await?;
    wait_for(
        "the alarms CronJob follows",
        Duration::from_secs(30),
        || async {
            let s = kubectl_ok(&[
                "-n",
                &fleet_ns,
                "get",
                "cronjob",
                &format!("{PIPELINE}-alarms"),
                "-o",
                "jsonpath={.spec.schedule}",
            ])?;
            Ok((s == "*/7 * * * *").then_some(()))
        },
    )
    .await?;

    // Back to this chart: the field goes again (and the shared CRD is as
    // crds/fleetpipeline.yaml for the other tests).
    let out = helm_ok(&[
        "upgrade",
        release,
        CHART,
        "-n",
        &release_ns,
        "--reuse-values",
    ])?;
    ensure!(out.contains("REVISION: 3"), "{out}");
    ensure!(!crd_has_upgrade_probe()?, "the CRD kept the removed field");
    let _ = std::fs::remove_dir_all(&changed);

    // Uninstall (the pod would be stopped with it): the CRD and the pipeline
    // stay; everything else the chart installed goes.
    op.stop();
    let out = helm(&["uninstall", release, "-n", &release_ns])?;
    ensure!(out.success, "{}", out.stderr);
    ensure!(
        format!("{}{}", out.stdout, out.stderr).contains("kept due to the resource policy"),
        "uninstall should say the CRD is kept: {out:?}"
    );
    kubectl_ok(&["get", "crd", CRD])?;
    println!("uninstalled: {}", out.stdout.trim().replace('\n', " | "));
    let fp = kubectl_json(&["-n", &fleet_ns, "get", "fleetpipeline", PIPELINE])?;
    ensure!(fp["metadata"]["deletionTimestamp"].is_null());
    kubectl_ok(&[
        "-n",
        &fleet_ns,
        "get",
        "configmap",
        &format!("{PIPELINE}-config"),
    ])?;
    for (ns, what) in [
        (Some(release_ns.as_str()), "deployment"),
        (Some(release_ns.as_str()), "serviceaccount"),
        (Some(fleet_ns.as_str()), "rolebinding"),
        (None, "clusterrole"),
    ] {
        let mut args = vec![
            "get",
            what,
            fullname.as_str(),
            "--ignore-not-found",
            "-o",
            "name",
        ];
        if let Some(ns) = ns {
            args.extend(["-n", ns]);
        }
        let left = kubectl_ok(&args)?;
        ensure!(
            left.trim().is_empty(),
            "{what} {fullname} left after uninstall: {left}"
        );
    }

    let _ = kubectl(&[
        "delete",
        "namespace",
        &fleet_ns,
        &release_ns,
        "--wait=false",
    ]);
    Ok(())
}
