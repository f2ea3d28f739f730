//! Fault: PostgreSQL crashes (immediate stop) and restarts while the real
//! `fleet-webhook` is under load. While it is down the receiver answers 503;
//! afterwards every push that got a 200 is in the database, counted exactly,
//! and none that got a 503 is. (Its own test binary: it restarts the shared
//! PostgreSQL.)

use anyhow::{Context as _, Result, ensure};
use fleet_e2e::{TestDb, http, repo_root, state_dir, urlencode};
use fleet_workloads::store::{connect, schema};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const SCHEMA: &str = "fleet_fault";
const TOKEN: &str = "fault-token";

#[tokio::test]
async fn webhook_loses_nothing_across_a_postgres_crash() -> Result<()> {
    let db = TestDb::create("fault_pg").await?;
    let pool = connect::pool(connect::from_url(&db.url(), SCHEMA)?, 1).await?;
    schema::migrate(&pool, SCHEMA).await?;
    pool.close().await;

    let dir = std::env::temp_dir().join(format!("fleet-fault-pg-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("token"), TOKEN)?;
    let mut cfg = fleet_e2e::workload_config(&db.name, SCHEMA);
    cfg.event_time_guard.max_future_seconds = 86_400;
    std::fs::write(dir.join("config.json"), cfg.to_json())?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let addr = "127.0.0.1:18477".to_owned();
    let mut child = Command::new(target.join("debug/fleet-webhook"))
        .arg("--config")
        .arg(dir.join("config.json"))
        .arg("--token-file")
        .arg(dir.join("token"))
        .args([
            "--listen",
            &addr,
            "--database-url",
            &db.url(),
            "--request-timeout-seconds",
            "3",
        ])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .context("starting fleet-webhook (cargo build -p fleet-workloads)")?;
    let started = Instant::now();
    while !matches!(http(&addr, "GET", "/readyz", None, b""), Ok((200, _))) {
        ensure!(
            started.elapsed() < Duration::from_secs(30),
            "receiver not ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Two clients push distinct fixes until told to stop; each records which
    // pushes were acknowledged.
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..2u32 {
        let (stop, addr) = (stop.clone(), addr.clone());
        clients.push(std::thread::spawn(move || -> Result<(Vec<String>, u32, u32)> {
            let (mut acked, mut refused, mut other) = (Vec::new(), 0, 0);
            let mut n = 0u32;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let imei = format!("86{c}{n:012}");
                let item = format!(r#"[{{"deviceImei":"{imei}","gpsTime":"2026-03-01 10:00:00","lat":1.5,"lng":2.5}}]"#);
                let body = format!("token={TOKEN}&data_list={}", urlencode(&item));
                match http(&addr, "POST", "/pushgps", Some("application/x-www-form-urlencoded"), body.as_bytes()) {
                    Ok((200, _)) => acked.push(imei),
                    Ok((503, _)) => refused += 1,
                    _ => other += 1,
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok((acked, refused, other))
        }));
    }
    std::thread::sleep(Duration::from_secs(2));
    let status = Command::new("bash")
        .arg(repo_root().join("tests/harness/restart.sh"))
        .arg(state_dir())
        .args(["postgres", "2"])
        .status()?;
    ensure!(status.success(), "restart.sh postgres failed");
    // Keep pushing until the receiver has recovered for a while.
    let recovered = Instant::now();
    while !matches!(http(&addr, "GET", "/readyz", None, b""), Ok((200, _))) {
        ensure!(
            recovered.elapsed() < Duration::from_secs(30),
            "receiver did not recover"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::SeqCst);

    let mut acked = Vec::new();
    let (mut refused, mut other) = (0, 0);
    for c in clients {
        let (a, r, o) = c.join().map_err(|_| anyhow::anyhow!("client panicked"))??;
        acked.extend(a);
        refused += r;
        other += o;
    }
    let _ = child.kill();
    let _ = child.wait();

    let check = connect::pool(connect::from_url(&db.url(), SCHEMA)?, 1).await?;
    let stored: Vec<(String,)> = sqlx::query_as("SELECT imei FROM positions")
        .fetch_all(&check)
        .await?;
    let stored: std::collections::BTreeSet<String> = stored.into_iter().map(|r| r.0).collect();
    let acked_set: std::collections::BTreeSet<String> = acked.iter().cloned().collect();
    println!(
        "acknowledged {}, refused (503) {refused}, other {other}, stored {}",
        acked.len(),
        stored.len()
    );
    ensure!(refused > 0, "the crash must show as 503s");
    ensure!(
        acked_set.is_subset(&stored),
        "an acknowledged push is missing"
    );
    // A push whose commit raced the crash may be stored although its client
    // got a 503 (the sender retries it; inserts are idempotent): at most one
    // in flight per client.
    let extra = stored.len() - acked_set.len();
    ensure!(extra <= 2, "{extra} stored pushes were never acknowledged");
    ensure!(other == 0, "{other} pushes got neither 200 nor 503");
    check.close().await;
    db.drop_db().await;
    Ok(())
}
