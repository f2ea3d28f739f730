//! Webhook throughput: the real `fleet-webhook` binary on loopback into the
//! harness PostgreSQL, `/pushgps` and `/pushalarm` batches at rising
//! concurrency; events/s and p50/p99 latency per level. In the same run and
//! on the same rows, each into its own schema of one fresh database:
//!
//! - *raw*: one client, one multi-row INSERT per batch into
//!   `positions`/`alarms` only — the floor any receiver pays;
//! - *baseline*: the old-stack-style Python receiver of `bench/baseline/`
//!   (FastAPI + psycopg2, thread pool, row-by-row INSERTs) — a COMPARISON
//!   BASELINE, not product code — driven exactly like ours.
//!
//! Reported as ratios within the run.

use anyhow::{Context as _, Result, anyhow, ensure};
use fleet_e2e::{TestDb, http, repo_root, urlencode};
use fleet_workloads::store::{connect, schema};
use sqlx::PgPool;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const OURS: &str = "bench";
const RAW: &str = "bench_raw";
const BASELINE: &str = "bench_baseline";
const TOKEN: &str = "bench-token";
const OURS_ADDR: &str = "127.0.0.1:18499";
const BASELINE_ADDR: &str = "127.0.0.1:18498";

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
    /// Database connections of each receiver (ours and the baseline).
    #[arg(long, default_value_t = 8)]
    db_connections: u32,
    /// Skip the Python baseline (no venv install).
    #[arg(long)]
    no_baseline: bool,
}

pub fn release_binary(name: &str) -> Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    for profile in ["release", "debug"] {
        let bin = target.join(profile).join(name);
        if bin.exists() {
            return Ok(bin);
        }
    }
    Err(anyhow!(
        "{name} not built: cargo build --release -p fleet-workloads"
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

/// Events/s and latency percentiles of one measurement.
#[derive(Clone, Copy, Default)]
struct Measured {
    events_per_s: f64,
    p50: Duration,
    p99: Duration,
}

impl Measured {
    fn from(events: usize, elapsed: Duration, mut latencies: Vec<Duration>) -> Self {
        latencies.sort();
        Measured {
            events_per_s: events as f64 / elapsed.as_secs_f64(),
            p50: percentile(&latencies, 0.5),
            p99: percentile(&latencies, 0.99),
        }
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "–".to_owned()
    }
}

/// Posts every body to `addr` from `conc` clients; every answer must be 200.
async fn drive(
    addr: &str,
    bodies: &Arc<Vec<(String, Vec<u8>)>>,
    conc: usize,
    events: usize,
) -> Result<Measured> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (bodies, next, addr) = (bodies.clone(), next.clone(), addr.to_owned());
        tasks.push(tokio::task::spawn_blocking(
            move || -> Result<Vec<Duration>> {
                let mut lat = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
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
                    ensure!(code == 200, "{addr}{path}: {code}: {text}");
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
    Ok(Measured::from(events, started.elapsed(), latencies))
}

/// The raw limit: the same rows, one client, one INSERT per batch.
async fn raw_inserts(pool: &PgPool, lists: &[(String, String)], events: usize) -> Result<Measured> {
    let started = Instant::now();
    let mut latencies = Vec::new();
    for (path, list) in lists {
        let rows: serde_json::Value = serde_json::from_str(list)?;
        let sql = if path == "/pushgps" {
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
        let t = Instant::now();
        sqlx::query(sql).bind(rows).execute(pool).await?;
        latencies.push(t.elapsed());
    }
    Ok(Measured::from(events, started.elapsed(), latencies))
}

async fn wait_ready(addr: &str, what: &str, child: &mut Child) -> Result<()> {
    let started = Instant::now();
    while !matches!(http(addr, "GET", "/readyz", None, b""), Ok((200, _))) {
        if let Some(status) = child.try_wait()? {
            return Err(anyhow!("{what} exited: {status}"));
        }
        ensure!(
            started.elapsed() < Duration::from_secs(60),
            "{what} not ready on {addr}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Installs the baseline's venv (bench/baseline/install.sh) and starts it.
fn start_baseline(db_url: &str, connections: u32) -> Result<Child> {
    let dir = repo_root().join("bench/baseline");
    let out = Command::new("bash")
        .arg(dir.join("install.sh"))
        .stderr(Stdio::inherit())
        .output()
        .context("bench/baseline/install.sh")?;
    ensure!(out.status.success(), "bench/baseline/install.sh failed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let python = stdout
        .lines()
        .last()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| anyhow!("install.sh printed no python path"))?;
    let port = BASELINE_ADDR.rsplit_once(':').map_or("18498", |(_, p)| p);
    Command::new(python)
        .current_dir(&dir)
        .args([
            "-m",
            "uvicorn",
            "app:app",
            "--host",
            "127.0.0.1",
            "--port",
            port,
            "--log-level",
            "warning",
            "--no-access-log",
        ])
        .env("BASELINE_DATABASE_URL", db_url)
        .env("BASELINE_SCHEMA", BASELINE)
        .env("BASELINE_TOKEN", TOKEN)
        .env("BASELINE_DB_CONNECTIONS", connections.to_string())
        .stdin(Stdio::null())
        .spawn()
        .context("starting the baseline (uvicorn)")
}

async fn count_rows(pool: &PgPool) -> Result<i64> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT (SELECT count(*) FROM positions) + (SELECT count(*) FROM alarms)")
            .fetch_one(pool)
            .await?;
    Ok(n)
}

struct Row {
    conc: usize,
    ours: Measured,
    baseline: Option<Measured>,
    raw: Measured,
}

pub async fn run(args: Args) -> Result<()> {
    let db = TestDb::create("bench_webhook").await?;
    let mut pools = Vec::new();
    for s in [OURS, RAW, BASELINE] {
        let pool = connect::pool(connect::from_url(&db.url(), s)?, 2).await?;
        schema::migrate(&pool, s).await?;
        pools.push(pool);
    }

    let dir = std::env::temp_dir().join(format!("fleet-bench-webhook-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("token"), TOKEN)?;
    let mut cfg = fleet_e2e::workload_config(&db.name, OURS);
    cfg.event_time_guard.max_future_seconds = 86_400;
    cfg.event_time_guard.not_before = "2025-01-01T00:00:00Z".into();
    std::fs::write(dir.join("config.json"), cfg.to_json())?;
    let mut ours = Command::new(release_binary("fleet-webhook")?)
        .arg("--config")
        .arg(dir.join("config.json"))
        .arg("--token-file")
        .arg(dir.join("token"))
        .args(["--listen", OURS_ADDR, "--database-url", &db.url()])
        .args(["--db-connections", &args.db_connections.to_string()])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .context("starting fleet-webhook")?;
    wait_ready(OURS_ADDR, "fleet-webhook", &mut ours).await?;
    let mut baseline = if args.no_baseline {
        None
    } else {
        let mut child = start_baseline(&db.url(), args.db_connections)?;
        wait_ready(BASELINE_ADDR, "the baseline", &mut child).await?;
        Some(child)
    };

    let events = args.requests * args.batch;
    let mut rows = Vec::new();
    let result: Result<()> = async {
        for (level, &conc) in args.concurrency.iter().enumerate() {
            let lists: Vec<(String, String)> = (0..args.requests)
                .map(|n| body(level, n, args.batch))
                .collect();
            let bodies: Arc<Vec<(String, Vec<u8>)>> = Arc::new(
                lists
                    .iter()
                    .map(|(path, list)| {
                        let form = format!("token={TOKEN}&data_list={}", urlencode(list));
                        (path.clone(), form.into_bytes())
                    })
                    .collect(),
            );
            let o = drive(OURS_ADDR, &bodies, conc, events).await?;
            let b = match baseline {
                Some(_) => Some(drive(BASELINE_ADDR, &bodies, conc, events).await?),
                None => None,
            };
            let r = raw_inserts(&pools[1], &lists, events).await?;
            eprintln!("concurrency {conc}: done");
            rows.push(Row {
                conc,
                ours: o,
                baseline: b,
                raw: r,
            });
        }
        // Every event is stored once in each schema (all rows distinct).
        let expected = (events * args.concurrency.len()) as i64;
        let schemas: &[usize] = if baseline.is_some() {
            &[0, 1, 2]
        } else {
            &[0, 1]
        };
        for &i in schemas {
            let n = count_rows(&pools[i]).await?;
            ensure!(
                n == expected,
                "schema {i}: {n} rows stored, {expected} sent"
            );
        }
        Ok(())
    }
    .await;
    let _ = ours.kill();
    let _ = ours.wait();
    if let Some(b) = baseline.as_mut() {
        let _ = b.kill();
        let _ = b.wait();
    }
    result?;

    println!();
    println!(
        "Webhook: {} requests per level, {} items each ({events} events), /pushgps and /pushalarm alternating, {} DB connections per receiver",
        args.requests, args.batch, args.db_connections
    );
    println!();
    println!(
        "| concurrency | ours events/s | ours p50 | ours p99 | baseline events/s | baseline p50 | baseline p99 | raw INSERT events/s | raw statement p50 | raw statement p99 |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let b = r.baseline.unwrap_or_default();
        println!(
            "| {} | {:.0} | {} | {} | {:.0} | {} | {} | {:.0} | {} | {} |",
            r.conc,
            r.ours.events_per_s,
            ms(r.ours.p50),
            ms(r.ours.p99),
            b.events_per_s,
            ms(b.p50),
            ms(b.p99),
            r.raw.events_per_s,
            ms(r.raw.p50),
            ms(r.raw.p99),
        );
    }
    println!();
    // Latency ratios only against the baseline, which is driven exactly like
    // ours; the raw client sends one statement at a time, so its latency is
    // a statement's, with no queueing, whatever the level.
    println!(
        "Ratios (events/s: above 1 means ours is faster; p50/p99: below 1 means ours answers sooner):"
    );
    println!();
    println!(
        "| concurrency | ours / raw events/s | ours / baseline events/s | ours / baseline p50 | ours / baseline p99 |"
    );
    println!("|---:|---:|---:|---:|---:|");
    for r in &rows {
        let b = r.baseline.unwrap_or_default();
        let secs = |d: Duration| d.as_secs_f64();
        println!(
            "| {} | {} | {} | {} | {} |",
            r.conc,
            ratio(r.ours.events_per_s, r.raw.events_per_s),
            ratio(r.ours.events_per_s, b.events_per_s),
            ratio(secs(r.ours.p50), secs(b.p50)),
            ratio(secs(r.ours.p99), secs(b.p99)),
        );
    }
    for p in pools {
        p.close().await;
    }
    db.drop_db().await;
    Ok(())
}
