//! Operator scale: N pipelines created at once, time to all Ready, writes vs
//! the minimum, idle writes, peak RSS.

use anyhow::{Context as _, Result, anyhow, ensure};
use fleet_e2e::{
    audit_mark, audit_writes_since, example_in, harness, kubectl, kubectl_stdin, repo_root,
};
use fleet_operator::crd::FleetPipeline;
use kube::Api;
use kube::api::ListParams;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Objects the example pipeline owns: 2 ServiceAccounts, 1 ConfigMap,
/// 3 NetworkPolicies, 7 CronJobs, Deployment, Service, PodDisruptionBudget,
/// and 4 database login Secrets.
const CHILDREN_PER_PIPELINE: u64 = 20;
/// Writes to the pipeline itself: adding the finalizer, one status.
const OWN_WRITES_PER_PIPELINE: u64 = 2;

#[derive(clap::Args)]
pub struct Args {
    /// Pipeline counts to measure, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "100,500")]
    pipelines: Vec<usize>,
    /// The operator's resync period; the idle window is two of them.
    #[arg(long, default_value_t = 15)]
    resync_seconds: u64,
    /// Give up waiting for Ready after this long.
    #[arg(long, default_value_t = 600)]
    timeout_seconds: u64,
}

struct Row {
    pipelines: usize,
    ready_after: Duration,
    writes: u64,
    minimum: u64,
    events: u64,
    idle_writes: u64,
    idle_reconciles_window: Duration,
    peak_rss_kib: u64,
}

fn operator_binary() -> Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    for profile in ["release", "debug"] {
        let bin = target.join(profile).join("fleet-operator");
        if bin.exists() {
            return Ok(bin);
        }
    }
    Err(anyhow!(
        "build the operator first: cargo build --release -p fleet-operator"
    ))
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// A namespace with the example's Secrets, the operator's ServiceAccount
/// bound to the minimal RBAC, and a kubeconfig for its token.
fn prepare(ns: &str) -> Result<(String, PathBuf)> {
    let ok = |out: fleet_e2e::Output| -> Result<()> {
        ensure!(out.success, "{}", out.stderr);
        Ok(())
    };
    ok(kubectl(&["create", "namespace", ns])?)?;
    ok(kubectl(&[
        "-n",
        ns,
        "create",
        "secret",
        "generic",
        "tracksolid-hk",
        "--from-literal=appKey=k",
        "--from-literal=appSecret=s",
        "--from-literal=userId=u",
        "--from-literal=userPassword=p",
    ])?)?;
    ok(kubectl(&[
        "-n",
        ns,
        "create",
        "secret",
        "generic",
        "fleet-db-admin",
        "--from-literal=username=postgres",
        &format!("--from-literal=password={}", fleet_e2e::db_password()?),
    ])?)?;
    ok(kubectl(&[
        "-n",
        ns,
        "create",
        "secret",
        "generic",
        "jimi-push",
        "--from-literal=token=t",
    ])?)?;
    ok(kubectl(&[
        "-n",
        ns,
        "create",
        "serviceaccount",
        "fleet-operator",
    ])?)?;
    let rbac = std::fs::read_to_string(repo_root().join("charts/rbac/operator-rbac.yaml"))?;
    ok(kubectl_stdin(&["-n", ns, "apply", "-f", "-"], &rbac)?)?;
    ok(kubectl(&[
        "create",
        "clusterrolebinding",
        &format!("fleet-operator-{ns}"),
        "--clusterrole=fleet-operator",
        &format!("--serviceaccount={ns}:fleet-operator"),
    ])?)?;
    let token = kubectl(&[
        "-n",
        ns,
        "create",
        "token",
        "fleet-operator",
        "--duration=2h",
    ])?;
    ensure!(token.success, "{}", token.stderr);
    let env = harness()?;
    let kubeconfig = std::env::temp_dir().join(format!("fleet-bench-{ns}.kubeconfig"));
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: bench\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: operator\n  user:\n    token: {}\ncontexts:\n- name: bench\n  context: {{cluster: bench, user: operator}}\ncurrent-context: bench\n",
        env.get("FP_APISERVER_URL")?,
        env.get("FP_CA_FILE")?,
        token.stdout.trim()
    );
    std::fs::write(&kubeconfig, text)?;
    Ok((
        format!("system:serviceaccount:{ns}:fleet-operator"),
        kubeconfig,
    ))
}

fn start_operator(ns: &str, kubeconfig: &PathBuf, resync: u64) -> Result<Child> {
    let log = std::fs::File::create(std::env::temp_dir().join(format!("fleet-bench-{ns}.log")))?;
    Command::new(operator_binary()?)
        .args(["run", "--namespace", ns, "--metrics-addr", "127.0.0.1:0"])
        .args(["--resync-seconds", &resync.to_string()])
        .env("KUBECONFIG", kubeconfig)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting fleet-operator")
}

async fn measure(n: usize, args: &Args) -> Result<Row> {
    let ns = format!("bench-{n}-{}", std::process::id());
    let (user, kubeconfig) = prepare(&ns)?;
    let mut operator = start_operator(&ns, &kubeconfig, args.resync_seconds)?;
    // Let it sync its caches before the load arrives.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let example: serde_json::Value = serde_yaml::from_str(&example_in(&ns)?)?;
    let items: Vec<_> = (0..n)
        .map(|i| {
            let mut m = example.clone();
            m["metadata"]["name"] = format!("fleet-{i}").into();
            m["spec"]["database"]["schema"] = format!("fleet_{i}").into();
            m
        })
        .collect();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
    let mark = audit_mark()?;
    let started = Instant::now();
    let out = kubectl_stdin(
        &["-n", &ns, "apply", "-f", "-"],
        &serde_json::to_string(&list)?,
    )?;
    ensure!(out.success, "{}", out.stderr);

    let client = fleet_e2e::client().await?;
    let api: Api<FleetPipeline> = Api::namespaced(client, &ns);
    let deadline = started + Duration::from_secs(args.timeout_seconds);
    let ready_after = loop {
        let items = api.list(&ListParams::default()).await?.items;
        let ready = items
            .iter()
            .filter(|fp| {
                let s = fp.status.clone().unwrap_or_default();
                s.observed_generation == fp.metadata.generation
                    && s.conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
            })
            .count();
        if ready == n {
            break started.elapsed();
        }
        ensure!(
            Instant::now() < deadline,
            "only {ready}/{n} Ready after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // Settle: the last status writes trigger one more reconcile each.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let writes = audit_writes_since(mark, &user)?;
    let events = writes
        .iter()
        .filter(|e| {
            e.object_ref
                .as_ref()
                .is_some_and(|o| o.resource == "events")
        })
        .count() as u64;

    let idle_mark = audit_mark()?;
    let window = Duration::from_secs(args.resync_seconds * 2 + 3);
    tokio::time::sleep(window).await;
    let idle_writes = audit_writes_since(idle_mark, &user)?.len() as u64;
    let peak = peak_rss_kib(operator.id());

    // Delete the pipelines while the operator runs, so its finalizer drops
    // their database roles (the harness PostgreSQL is shared).
    let deleting = Instant::now();
    let _ = kubectl(&[
        "-n",
        &ns,
        "delete",
        "fleetpipelines",
        "--all",
        "--wait=false",
    ]);
    while !api.list(&ListParams::default()).await?.items.is_empty()
        && Instant::now() < deleting + Duration::from_secs(args.timeout_seconds)
    {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "{n} pipelines deleted (roles dropped) in {:?}",
        deleting.elapsed()
    );

    let _ = Command::new("kill").arg(operator.id().to_string()).status();
    let _ = operator.wait();
    let _ = kubectl(&[
        "delete",
        "clusterrolebinding",
        &format!("fleet-operator-{ns}"),
    ]);
    let _ = kubectl(&["delete", "namespace", &ns, "--wait=false"]);
    Ok(Row {
        pipelines: n,
        ready_after,
        writes: writes.len() as u64 - events,
        minimum: n as u64 * (CHILDREN_PER_PIPELINE + OWN_WRITES_PER_PIPELINE),
        events,
        idle_writes,
        idle_reconciles_window: window,
        peak_rss_kib: peak,
    })
}

pub async fn run(args: Args) -> Result<()> {
    harness()?;
    let mut rows = Vec::new();
    for &n in &args.pipelines {
        eprintln!("measuring {n} pipelines...");
        rows.push(measure(n, &args).await?);
    }
    println!();
    println!(
        "Operator scale ({} s resync; writes counted in the apiserver audit log, by the operator's ServiceAccount)",
        args.resync_seconds
    );
    println!();
    println!(
        "| pipelines | all Ready after | per pipeline | writes (excl. Events) | minimum | writes / minimum | Events | writes in idle window | idle window | peak RSS |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {:.1} s | {:.1} ms | {} | {} | {:.2} | {} | {} | {} s | {:.1} MiB |",
            r.pipelines,
            r.ready_after.as_secs_f64(),
            r.ready_after.as_secs_f64() * 1000.0 / r.pipelines as f64,
            r.writes,
            r.minimum,
            r.writes as f64 / r.minimum as f64,
            r.events,
            r.idle_writes,
            r.idle_reconciles_window.as_secs(),
            r.peak_rss_kib as f64 / 1024.0
        );
    }
    if let [first, .., last] = rows.as_slice() {
        println!();
        println!(
            "time per pipeline, {} vs {}: ratio {:.2}",
            last.pipelines,
            first.pipelines,
            (last.ready_after.as_secs_f64() / last.pipelines as f64)
                / (first.ready_after.as_secs_f64() / first.pipelines as f64)
        );
    }
    Ok(())
}
