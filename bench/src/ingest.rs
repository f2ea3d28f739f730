//! Ingest cost: the real release `fleet-ingest positions` binary against the
//! Tracksolid simulator (in this process, on loopback) and the harness
//! PostgreSQL, for fleets of rising size. Per fleet size: rows stored per
//! second of the run's wall time, CPU time (user + system) of the job per
//! 1,000 positions, and the job's peak RSS — the last two from `wait4`'s
//! resource usage of the child, so they count the job alone, not the
//! simulator or PostgreSQL.
//!
//! Each measured run starts from empty `positions`/`latest_positions` (the
//! token is kept cached, as in production), so every run stores every
//! device's fix. A first, unmeasured run per size logs in.
//!
//! The job is started through a small spawner (`fleet-bench measure-child`,
//! this binary re-executed) that reports the job's usage: Linux carries the
//! peak RSS of the process that spawns a child over into the child's
//! `ru_maxrss` (the spawner's memory at `exec` counts as the child's), and
//! this process, which holds the simulator and its answers, is far larger
//! than the job. The spawner is a few MiB: that is the floor of the figure.

use crate::webhook::release_binary;
use anyhow::{Context as _, Result, anyhow, ensure};
use fleet_e2e::TestDb;
use fleet_workloads::store::{connect, schema};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tracksolid_sim::{SimConfig, SimServer};

#[derive(clap::Args)]
pub struct Args {
    /// Fleet sizes (devices in the one account).
    #[arg(long, value_delimiter = ',', default_value = "100,1000,10000")]
    devices: Vec<usize>,
    /// Measured runs per size (medians reported; peak RSS: the highest).
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

/// What `wait4` says about one finished child.
struct Usage {
    exit_code: Option<i32>,
    cpu: Duration,
    max_rss_kib: u64,
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
}

/// Waits for `child` and returns its own resource usage.
fn wait_with_usage(child: std::process::Child) -> Result<Usage> {
    let pid = libc::pid_t::try_from(child.id())?;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet reaped (`child` is never
    // waited on through std); both pointers are valid for the call.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    ensure!(r == pid, "wait4: {}", std::io::Error::last_os_error());
    drop(child);
    Ok(Usage {
        exit_code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        cpu: timeval(usage.ru_utime) + timeval(usage.ru_stime),
        // Linux reports ru_maxrss in KiB.
        max_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
    })
}

/// `fleet-bench measure-child -- PROGRAM ARGS…`.
#[derive(clap::Args)]
pub struct MeasureArgs {
    /// The program and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    command: Vec<String>,
}

/// Runs the command (stdin and stdout closed, stderr inherited) and prints
/// `EXIT CPU_MICROS MAX_RSS_KIB WALL_MICROS` (EXIT -1: killed by a signal).
pub fn measure_child(args: MeasureArgs) -> Result<()> {
    let (program, rest) = args
        .command
        .split_first()
        .ok_or_else(|| anyhow!("no command"))?;
    let started = Instant::now();
    let child = Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {program}"))?;
    let u = wait_with_usage(child)?;
    let wall = started.elapsed();
    println!(
        "{} {} {} {}",
        u.exit_code.unwrap_or(-1),
        u.cpu.as_micros(),
        u.max_rss_kib,
        wall.as_micros()
    );
    Ok(())
}

/// Runs `bin ARGS` through the spawner and returns its usage and wall time
/// (the child's alone, measured by the spawner).
fn run_measured(bin: &std::path::Path, args: &[&str]) -> Result<(Usage, Duration)> {
    let out = Command::new(std::env::current_exe()?)
        .arg("measure-child")
        .arg("--")
        .arg(bin)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("starting the spawner")?;
    ensure!(out.status.success(), "spawner: {}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = text.split_whitespace().collect();
    let [exit, cpu, rss, wall] = fields[..] else {
        return Err(anyhow!("spawner printed {text:?}"));
    };
    let exit: i32 = exit.parse()?;
    Ok((
        Usage {
            exit_code: (exit >= 0).then_some(exit),
            cpu: Duration::from_micros(cpu.parse()?),
            max_rss_kib: rss.parse()?,
        },
        Duration::from_micros(wall.parse()?),
    ))
}

struct Measured {
    wall: Duration,
    rows: i64,
    cpu: Duration,
    max_rss_kib: u64,
}

fn median_by<T, K: PartialOrd>(mut v: Vec<T>, key: impl Fn(&T) -> K) -> Option<T> {
    v.sort_by(|a, b| {
        key(a)
            .partial_cmp(&key(b))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mid = v.len() / 2;
    v.into_iter().nth(mid)
}

async fn one_size(devices: usize, runs: usize) -> Result<(Measured, Duration)> {
    let db = TestDb::create("bench_ingest").await?;
    let schema_name = "bench_ingest";
    let pool = connect::pool(connect::from_url(&db.url(), schema_name)?, 1).await?;
    schema::migrate(&pool, schema_name).await?;
    let sim = SimServer::start(SimConfig::for_tests(devices, 3)).await?;

    let dir = std::env::temp_dir().join(format!(
        "fleet-bench-ingest-{}-{devices}",
        std::process::id()
    ));
    let config_path = fleet_e2e::write_sim_config(&dir, &db.name, schema_name, &sim)?;
    let bin = release_binary("fleet-ingest")?;

    let mut measured = Vec::new();
    let mut cold = Duration::ZERO;
    for run in 0..=runs {
        sqlx::query("TRUNCATE positions, latest_positions")
            .execute(&pool)
            .await?;
        let config_arg = config_path.display().to_string();
        let url = db.url();
        let bin2 = bin.clone();
        let (usage, wall) = tokio::task::spawn_blocking(move || {
            run_measured(
                &bin2,
                &["positions", "--config", &config_arg, "--database-url", &url],
            )
        })
        .await??;
        ensure!(
            usage.exit_code == Some(0),
            "fleet-ingest exited {:?}",
            usage.exit_code
        );
        let (rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM positions")
            .fetch_one(&pool)
            .await?;
        ensure!(
            rows == devices as i64,
            "{devices} devices, {rows} positions stored"
        );
        if run == 0 {
            cold = wall;
            continue;
        }
        measured.push(Measured {
            wall,
            rows,
            cpu: usage.cpu,
            max_rss_kib: usage.max_rss_kib,
        });
    }
    pool.close().await;
    sim.stop().await?;
    db.drop_db().await;
    let _ = std::fs::remove_dir_all(&dir);
    // Wall and CPU: medians; peak RSS: the highest of the runs (it varies
    // with how the allocator's arenas fall, and a memory limit must fit the
    // highest).
    let max_rss_kib = measured.iter().map(|m| m.max_rss_kib).max().unwrap_or(0);
    let cpus: Vec<Duration> = measured.iter().map(|m| m.cpu).collect();
    let cpu = median_by(cpus, |c| *c).unwrap_or_default();
    let m = median_by(measured, |m| m.wall).ok_or_else(|| anyhow!("no measured run"))?;
    Ok((
        Measured {
            cpu,
            max_rss_kib,
            ..m
        },
        cold,
    ))
}

pub async fn run(args: Args) -> Result<()> {
    ensure!(args.runs >= 1, "--runs must be at least 1");
    let mut rows = Vec::new();
    for &n in &args.devices {
        let (m, cold) = one_size(n, args.runs).await?;
        eprintln!("{n} devices: done");
        rows.push((n, m, cold));
    }
    println!();
    println!(
        "Ingest: `fleet-ingest positions` (release), one account, {} runs per size (each from empty tables, token cached): wall and CPU are medians, peak RSS the highest",
        args.runs
    );
    println!();
    println!(
        "| devices | run (wall) | rows/s | CPU per 1,000 positions | CPU total | peak RSS | first run (login) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let base = rows.first().map(|(n, m, _)| (*n, m.cpu));
    for (n, m, cold) in &rows {
        println!(
            "| {n} | {:.0} ms | {:.0} | {:.1} ms | {:.0} ms | {:.1} MiB | {:.0} ms |",
            m.wall.as_secs_f64() * 1000.0,
            m.rows as f64 / m.wall.as_secs_f64(),
            m.cpu.as_secs_f64() * 1000.0 * 1000.0 / m.rows.max(1) as f64,
            m.cpu.as_secs_f64() * 1000.0,
            m.max_rss_kib as f64 / 1024.0,
            cold.as_secs_f64() * 1000.0,
        );
    }
    if let (Some((n0, cpu0)), Some((n1, m1, _))) = (base, rows.last())
        && *n1 > n0
        && !cpu0.is_zero()
    {
        println!();
        println!(
            "CPU, {n1} vs {n0} devices: ratio {:.2} for {:.0}× the positions",
            m1.cpu.as_secs_f64() / cpu0.as_secs_f64(),
            *n1 as f64 / n0 as f64
        );
    }
    Ok(())
}
