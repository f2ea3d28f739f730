//! Webhook throughput: the real `fleet-webhook` binary on loopback into the
//! harness PostgreSQL, `/pushgps` and `/pushalarm` batches at rising
//! concurrency; events/s and p50/p99 latency per level. In the same run, the
//! raw limit: the same rows inserted by one client with one multi-row INSERT
//! per batch. Reported as ratios.

use anyhow::{Context as _, Result, anyhow, ensure};
use fleet_e2e::{TestDb, http, repo_root, urlencode};
use fleet_workloads::store::{connect, schema};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SCHEMA: &str = "bench";
const TOKEN: &str = "bench-token";

#[derive(clap::Args)]
pub struct Args {
    /// Concurrency levels.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16,64")]
    concurrency: Vec<usize>,
    /// Requests per level.
    #[arg(long, default_value_t = 400)]
    requests: usize,
    /// Items per request (JIMI sends up to about 50).
    #[arg(long, default_value_t = 50)]
    batch: usize,
}

fn binary() -> Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    for profile in ["release", "debug"] {
        let bin = target.join(profile).join("fleet-webhook");
        if bin.exists() {
            return Ok(bin);
        }
    }
    Err(anyhow!(
        "build it first: cargo build --release -p fleet-workloads"
    ))
}

/// Request `n` of a level: GPS on even, alarms on odd, all rows distinct.
fn body(level: usize, n: usize, batch: usize) -> (String, String) {
    let second = |i: usize| {
        let t = (level * 1_000_000 + n * batch + i) % (86_400 * 300);
        format!(
            "2026-{:02}-{:02} {:02}:{:02}:{:02}",
            1 + (t / 86_400) / 28 % 12,
            1 + (t / 86_400) % 28,
            (t / 3600) % 24,
            (t / 60) % 60,
            t % 60
        )
    };
    if n.is_multiple_of(2) {
        let items: Vec<String> = (0..batch)
            .map(|i| format!(r#"{{"deviceImei":"8600000{:08}","gpsTime":"{}","lat":-1.29,"lng":36.82,"gpsSpeed":40,"direction":90,"gpsMode":0}}"#, i, second(i)))
            .collect();
        ("/pushgps".to_owned(), format!("[{}]", items.join(",")))
    } else {
        let items: Vec<String> = (0..batch)
            .map(|i| format!(r#"{{"imei":"8600000{:08}","msgClass":0,"gateTime":"{t}","msg":{{"alertType":212,"alarmTime":"{t}","lat":-1.29,"lng":36.82}}}}"#, i, t = second(i)))
            .collect();
        ("/pushalarm".to_owned(), format!("[{}]", items.join(",")))
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub async fn run(args: Args) -> Result<()> {
    let db = TestDb::create("bench_webhook").await?;
    let pool = connect::pool(connect::from_url(&db.url(), SCHEMA)?, 2).await?;
    schema::migrate(&pool, SCHEMA).await?;

    let dir = std::env::temp_dir().join(format!("fleet-bench-webhook-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("token"), TOKEN)?;
    let mut cfg = fleet_e2e::workload_config(&db.name, SCHEMA);
    cfg.event_time_guard.max_future_seconds = 86_400;
    cfg.event_time_guard.not_before = "2025-01-01T00:00:00Z".into();
    std::fs::write(dir.join("config.json"), cfg.to_json())?;
    let addr = "127.0.0.1:18499".to_owned();
    let mut child = Command::new(binary()?)
        .arg("--config")
        .arg(dir.join("config.json"))
        .arg("--token-file")
        .arg(dir.join("token"))
        .args([
            "--listen",
            &addr,
            "--database-url",
            &db.url(),
            "--db-connections",
            "8",
        ])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .context("starting fleet-webhook")?;
    for _ in 0..100 {
        if matches!(http(&addr, "GET", "/readyz", None, b""), Ok((200, _))) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    println!();
    println!(
        "Webhook: {} requests per level, {} items each, /pushgps and /pushalarm alternating",
        args.requests, args.batch
    );
    println!();
    println!("| concurrency | events/s | p50 | p99 | raw INSERT events/s | ours / raw |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for (level, &conc) in args.concurrency.iter().enumerate() {
        let bodies: Arc<Vec<(String, Vec<u8>)>> = Arc::new(
            (0..args.requests)
                .map(|n| {
                    let (path, list) = body(level, n, args.batch);
                    (
                        path,
                        format!("token={TOKEN}&data_list={}", urlencode(&list)).into_bytes(),
                    )
                })
                .collect(),
        );
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..conc {
            let (bodies, next, addr) = (bodies.clone(), next.clone(), addr.clone());
            tasks.push(tokio::task::spawn_blocking(
                move || -> Result<Vec<Duration>> {
                    let mut lat = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let Some((path, body)) = bodies.get(i) else {
                            break;
                        };
                        let t = Instant::now();
                        let (code, text) = http(
                            &addr,
                            "POST",
                            path,
                            Some("application/x-www-form-urlencoded"),
                            body,
                        )?;
                        ensure!(code == 200, "{code}: {text}");
                        lat.push(t.elapsed());
                    }
                    Ok(lat)
                },
            ));
        }
        let mut latencies = Vec::new();
        for t in tasks {
            latencies.extend(t.await??);
        }
        let elapsed = started.elapsed();
        latencies.sort();
        let events = (args.requests * args.batch) as f64;
        let ours = events / elapsed.as_secs_f64();

        // The raw limit: the same rows, one client, one INSERT per batch.
        let raw_started = Instant::now();
        for n in 0..args.requests {
            let (path, list) = body(level + 100, n, args.batch);
            let table = if path == "/pushgps" { "gps" } else { "alarm" };
            let rows: serde_json::Value = serde_json::from_str(&list)?;
            let sql = if table == "gps" {
                "INSERT INTO positions (imei, gps_time, lat, lng, speed, direction, gps_mode, source)
                 SELECT r.\"deviceImei\", (r.\"gpsTime\" || 'Z')::timestamptz, r.lat, r.lng, r.\"gpsSpeed\", r.direction, r.\"gpsMode\", 'raw'
                 FROM jsonb_to_recordset($1::jsonb) AS r(\"deviceImei\" text, \"gpsTime\" text, lat float8, lng float8, \"gpsSpeed\" real, direction smallint, \"gpsMode\" smallint)
                 ON CONFLICT DO NOTHING"
            } else {
                "INSERT INTO alarms (imei, alarm_type, alarm_time, lat, lng, source)
                 SELECT r.imei, (r.msg->>'alertType'), ((r.msg->>'alarmTime') || 'Z')::timestamptz, (r.msg->>'lat')::float8, (r.msg->>'lng')::float8, 'raw'
                 FROM jsonb_to_recordset($1::jsonb) AS r(imei text, msg jsonb)
                 ON CONFLICT DO NOTHING"
            };
            sqlx::query(sql).bind(rows).execute(&pool).await?;
        }
        let raw = events / raw_started.elapsed().as_secs_f64();
        println!(
            "| {conc} | {ours:.0} | {:.1} ms | {:.1} ms | {raw:.0} | {:.2} |",
            percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
            percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
            ours / raw
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    pool.close().await;
    db.drop_db().await;
    Ok(())
}
