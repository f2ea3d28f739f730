//! Two replicas of the real operator binary with `--leader-elect`: only the
//! Lease holder reconciles; when it stops, the other takes over.

use anyhow::{Context as _, Result, anyhow, ensure};
use fleet_e2e::{example_in, harness, kubectl, kubectl_stdin, repo_root, wait_for};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn operator_binary() -> Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let bin = target.join("debug/fleet-operator");
    ensure!(
        bin.exists(),
        "{} not built: run `cargo build -p fleet-operator` (tests/run.sh does)",
        bin.display()
    );
    Ok(bin)
}

struct Replica {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Replica {
    fn start(name: &str, namespace: &str) -> Result<Self> {
        Self::start_with(name, namespace, "127.0.0.1:0")
    }

    fn start_with(name: &str, namespace: &str, metrics_addr: &str) -> Result<Self> {
        let env = harness()?;
        let log = std::env::temp_dir().join(format!("fleet-operator-{namespace}-{name}.log"));
        let out = std::fs::File::create(&log)?;
        let child = Command::new(operator_binary()?)
            .args([
                "run",
                "--namespace",
                namespace,
                "--leader-elect",
                "--lease-namespace",
                namespace,
                "--pod-name",
                name,
                "--metrics-addr",
                metrics_addr,
                "--resync-seconds",
                "5",
            ])
            .env("KUBECONFIG", env.kubeconfig()?)
            .env("RUST_LOG", "info")
            .stdout(out.try_clone()?)
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .context("starting fleet-operator")?;
        Ok(Replica {
            name: name.to_owned(),
            child,
            log,
        })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn leads(&self) -> bool {
        self.log().contains("acquired leadership")
    }

    fn stop(&mut self) {
        // SIGTERM, as the kubelet would.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn holder(namespace: &str) -> Result<String> {
    let out = kubectl(&[
        "-n",
        namespace,
        "get",
        "lease",
        "fleet-operator-leader",
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ])?;
    Ok(out.stdout.trim().to_owned())
}

#[tokio::test]
async fn only_the_lease_holder_reconciles_and_a_standby_takes_over() -> Result<()> {
    let ns = format!("e2e-leader-{}", std::process::id());
    ensure!(kubectl(&["create", "namespace", &ns])?.success);
    let db_password_arg = format!("--from-literal=password={}", fleet_e2e::db_password()?);
    for (name, args) in [
        (
            "tracksolid-hk",
            vec![
                "--from-literal=appKey=k",
                "--from-literal=appSecret=s",
                "--from-literal=userId=u",
                "--from-literal=userPassword=p",
            ],
        ),
        (
            "fleet-db-admin",
            vec!["--from-literal=username=postgres", &db_password_arg],
        ),
        ("jimi-push", vec!["--from-literal=token=t"]),
    ] {
        let mut a = vec!["-n", ns.as_str(), "create", "secret", "generic", name];
        a.extend(args);
        ensure!(kubectl(&a)?.success);
    }

    let mut a = Replica::start("replica-a", &ns)?;
    let mut b = Replica::start("replica-b", &ns)?;
    let first = wait_for("a Lease holder", Duration::from_secs(60), || async {
        let h = holder(&ns)?;
        Ok((!h.is_empty()).then_some(h))
    })
    .await?;
    let (leader, standby) = if first == a.name {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    ensure!(leader.name == first, "holder {first} is one of ours");

    let out = kubectl_stdin(&["-n", &ns, "apply", "-f", "-"], &example_in(&ns)?)?;
    ensure!(out.success, "{}", out.stderr);
    let out = kubectl(&[
        "-n",
        &ns,
        "wait",
        "--for=condition=Ready",
        "--timeout=60s",
        "fleetpipeline/kenya-fleet",
    ])?;
    ensure!(out.success, "leader reconciled: {}", out.stderr);
    ensure!(leader.leads(), "leader log: {}", leader.log());
    ensure!(
        !standby.leads(),
        "standby must not lead while the Lease is held"
    );
    ensure!(
        !standby.log().contains("controller started"),
        "standby must not start its controller"
    );

    // The leader stops; the standby takes the Lease and reconciles a change.
    leader.stop();
    let standby_name = standby.name.clone();
    wait_for(
        "standby holds the Lease",
        Duration::from_secs(60),
        || async { Ok((holder(&ns)? == standby_name).then_some(())) },
    )
    .await?;
    let out = kubectl(&[
        "-n",
        &ns,
        "patch",
        "fleetpipeline",
        "kenya-fleet",
        "--type=merge",
        "-p",
        r#"{"spec":{"jobs":{"alarms":{"schedule":"*/11 * * * *"}}}}"#,
    ])?;
    ensure!(out.success, "{}", out.stderr);
    wait_for(
        "new leader applies the change",
        Duration::from_secs(60),
        || async {
            let out = kubectl(&[
                "-n",
                &ns,
                "get",
                "cronjob",
                "kenya-fleet-alarms",
                "-o",
                "jsonpath={.spec.schedule}",
            ])?;
            Ok((out.stdout.trim() == "*/11 * * * *").then_some(()))
        },
    )
    .await
    .map_err(|e| anyhow!("{e:#}\nstandby log:\n{}", standby.log()))?;
    ensure!(standby.leads());

    standby.stop();
    let _ = kubectl(&["delete", "namespace", &ns, "--wait=false"]);
    Ok(())
}

fn http_get(addr: &str, path: &str) -> Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow!("no status line in {text:?}"))?;
    Ok((code, text))
}

#[tokio::test]
async fn the_binary_serves_health_readiness_and_metrics() -> Result<()> {
    let ns = format!("e2e-probes-{}", std::process::id());
    ensure!(kubectl(&["create", "namespace", &ns])?.success);
    let addr = "127.0.0.1:18187";
    let mut op = Replica::start_with("probes", &ns, addr)?;
    wait_for(
        "/readyz 200 once caches synced",
        Duration::from_secs(60),
        || async { Ok(matches!(http_get(addr, "/readyz"), Ok((200, _))).then_some(())) },
    )
    .await
    .map_err(|e| anyhow!("{e:#}\n{}", op.log()))?;
    let (code, _) = http_get(addr, "/healthz")?;
    ensure!(code == 200);
    // A pipeline whose Secrets are missing: one failure by category.
    let out = kubectl_stdin(&["-n", &ns, "apply", "-f", "-"], &example_in(&ns)?)?;
    ensure!(out.success, "{}", out.stderr);
    let metrics = wait_for(
        "metrics show the failure",
        Duration::from_secs(60),
        || async {
            let (_, body) = http_get(addr, "/metrics")?;
            let all = [
                "fleet_operator_reconcile_errors_total{error=\"secret_missing\"}",
                "fleet_operator_reconciles_total",
                "fleet_operator_reconcile_duration_seconds_bucket",
                // The Degraded status was written.
                "fleet_operator_object_writes_total{kind=\"FleetPipelineStatus\"}",
            ];
            Ok(all.iter().all(|m| body.contains(m)).then_some(body))
        },
    )
    .await?;
    ensure!(metrics.contains("# TYPE fleet_operator_reconcile_duration_seconds histogram"));
    ensure!(metrics.contains("# TYPE fleet_operator_database_step_duration_seconds histogram"));
    op.stop();
    ensure!(
        op.log().contains("controller stopped"),
        "graceful shutdown: {}",
        op.log()
    );
    let _ = kubectl(&["delete", "namespace", &ns, "--wait=false"]);
    Ok(())
}
