//! Fault: PostgreSQL stops (immediate mode, like a crash) while
//! `fleet-ingest positions`, the real binary, waits for a slow Tracksolid
//! answer (simulator latency keeps the window wide), and stays down past the
//! write. The run fails cleanly: exit 1, the failure logged on stderr and in
//! `ingestion_log` (written once the database is back), no panic, nothing
//! half-written. The next run catches up: every device's latest fix is
//! stored, exactly as the simulator's ground truth has it, nothing twice, and
//! `ingestion_log` counts exactly what the table holds. (Its own test binary:
//! it restarts the shared PostgreSQL.)

use anyhow::{Context as _, Result, anyhow, ensure};
use fleet_e2e::{TestDb, repo_root, state_dir, workspace_binary};
use fleet_workloads::store::{connect, schema};
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tracksolid_sim::{FaultsPatch, SimConfig, SimServer};

const SCHEMA: &str = "fleet_fault_ingest";
const DEVICES: usize = 40;
/// Simulator latency during the faulty run.
const LATENCY_MS: u64 = 3_000;
/// How long PostgreSQL stays down, counted from when the simulator got the
/// request: past the answer (3 s) and the write's pool timeout (5 s).
const DOWN_SECONDS: u64 = 10;

fn now_s() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// The simulator's truth for every device: the fixes `location.list` can
/// have answered with during `[from, to]` (seconds), keyed by (imei, time).
fn truth(sim: &SimServer, from: i64, to: i64) -> Result<BTreeMap<(String, i64), (f64, f64)>> {
    let st = sim.state();
    let fleet = st.account_fleet(0).ok_or_else(|| anyhow!("no account"))?;
    let mut out = BTreeMap::new();
    for d in &fleet.devices {
        for t in from..=to {
            let l = st.fleet.location(d, t);
            out.insert((d.imei.clone(), l.gps_time), (l.pos.lat, l.pos.lng));
        }
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_run_cut_off_by_a_postgres_crash_fails_cleanly_and_the_next_catches_up()
-> Result<()> {
    let db = TestDb::create("fault_pg_ingest").await?;
    let pool = connect::pool(connect::from_url(&db.url(), SCHEMA)?, 1).await?;
    schema::migrate(&pool, SCHEMA).await?;
    pool.close().await;

    let sim = SimServer::start(SimConfig::for_tests(DEVICES, 11)).await?;
    let dir = std::env::temp_dir().join(format!("fleet-fault-ingest-{}", std::process::id()));
    let config_path = fleet_e2e::write_sim_config(&dir, &db.name, SCHEMA, &sim)?;
    let command = || -> Result<Command> {
        let mut c = Command::new(workspace_binary("fleet-ingest")?);
        c.arg("positions")
            .arg("--config")
            .arg(&config_path)
            .args(["--database-url", &db.url()])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null());
        Ok(c)
    };

    // Run 1: all well (and the token is cached in the database).
    let first_from = now_s();
    let out = command()?.output().context("running fleet-ingest")?;
    let first_to = now_s();
    ensure!(
        out.status.success(),
        "first run: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );

    // Run 2: PostgreSQL goes down while the job waits for the slow answer.
    sim.state().patch_faults(&FaultsPatch {
        latency_ms: Some(LATENCY_MS),
        ..FaultsPatch::default()
    });
    let method = "jimi.user.device.location.list";
    let asked = sim.state().stats().method(method);
    let child = command()?
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting fleet-ingest")?;
    let started = Instant::now();
    while sim.state().stats().method(method) == asked {
        ensure!(
            started.elapsed() < Duration::from_secs(30),
            "the job never asked for positions"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let restart = Command::new("bash")
        .arg(repo_root().join("tests/harness/restart.sh"))
        .arg(state_dir())
        .args(["postgres", &DOWN_SECONDS.to_string()])
        .status()?;
    ensure!(restart.success(), "restart.sh postgres failed");
    let failed = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
    // The job logs (tracing) to stdout, plain errors to stderr.
    let stderr = format!(
        "{}{}",
        String::from_utf8_lossy(&failed.stdout),
        String::from_utf8_lossy(&failed.stderr)
    );
    println!("failed run: {:?}\n{stderr}", failed.status);
    ensure!(
        failed.status.code() == Some(1),
        "a failed target exits 1, got {:?}",
        failed.status
    );
    ensure!(!stderr.contains("panicked"), "no panic");
    ensure!(stderr.contains("positions failed"), "the failure is logged");

    // Run 3: the database is back, the API fast again: it catches up.
    sim.state().patch_faults(&FaultsPatch {
        latency_ms: Some(0),
        ..FaultsPatch::default()
    });
    let third_from = now_s();
    let out = command()?.output().context("running fleet-ingest")?;
    let third_to = now_s();
    ensure!(
        out.status.success(),
        "catch-up run: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );

    let pool = connect::pool(connect::from_url(&db.url(), SCHEMA)?, 1).await?;
    let log: Vec<(String, i64, Option<String>)> = sqlx::query_as(
        "SELECT status, rows_inserted, error FROM ingestion_log
         WHERE endpoint = 'positions' AND target = 'hk' ORDER BY started_at",
    )
    .fetch_all(&pool)
    .await?;
    println!("ingestion_log: {log:?}");
    ensure!(
        log.len() == 3,
        "one row per run, the failed one too: {log:?}"
    );
    ensure!(log[0].0 == "ok" && log[2].0 == "ok", "{log:?}");
    ensure!(
        log[1].0 == "failed" && log[1].1 == 0 && log[1].2.is_some(),
        "the cut-off run is logged as failed with nothing inserted: {log:?}"
    );

    let rows: Vec<(String, i64, f64, f64)> = sqlx::query_as(
        "SELECT imei, extract(epoch FROM gps_time)::bigint, lat, lng FROM positions",
    )
    .fetch_all(&pool)
    .await?;
    let logged: i64 = log.iter().map(|r| r.1).sum();
    ensure!(
        logged == rows.len() as i64,
        "ingestion_log counts {logged}, the table holds {}",
        rows.len()
    );
    // Every stored row is a fix the simulator served in run 1 or run 3 …
    let mut served = truth(&sim, first_from, first_to)?;
    let latest = truth(&sim, third_from, third_to)?;
    served.extend(latest.clone());
    let mut keys = BTreeSet::new();
    for (imei, t, lat, lng) in &rows {
        ensure!(
            keys.insert((imei.clone(), *t)),
            "{imei} at {t} stored twice"
        );
        let (tlat, tlng) = served
            .get(&(imei.clone(), *t))
            .ok_or_else(|| anyhow!("{imei} at {t} is not a fix the simulator served"))?;
        ensure!(
            (lat - tlat).abs() < 1e-6 && (lng - tlng).abs() < 1e-6,
            "{imei} at {t}: stored ({lat}, {lng}), truth ({tlat}, {tlng})"
        );
    }
    // … and every device's latest fix as of the catch-up run is there: no gap.
    let devices: BTreeSet<&String> = latest.keys().map(|(imei, _)| imei).collect();
    ensure!(devices.len() == DEVICES);
    for imei in devices {
        let caught_up = latest
            .keys()
            .any(|(i, t)| i == imei && keys.contains(&(i.clone(), *t)));
        ensure!(
            caught_up,
            "{imei}: its latest fix is missing after the catch-up run"
        );
    }
    let (newest_ok,): (bool,) = sqlx::query_as(
        "SELECT bool_and(lp.gps_time = m.t) FROM latest_positions lp
         JOIN (SELECT imei, max(gps_time) AS t FROM positions GROUP BY imei) m USING (imei)",
    )
    .fetch_one(&pool)
    .await?;
    ensure!(newest_ok, "latest_positions holds each device's newest fix");
    let (latest_rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM latest_positions")
        .fetch_one(&pool)
        .await?;
    ensure!(
        latest_rows == DEVICES as i64,
        "{latest_rows} latest positions"
    );

    pool.close().await;
    sim.stop().await?;
    db.drop_db().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
