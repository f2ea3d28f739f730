//! `fleet-ingest track|alarms|parking|devices`, the real binary, against
//! the Tracksolid simulator and a real PostgreSQL: exact counts against
//! what the simulator generated (its fleet is deterministic, so the tests
//! compute the expected rows from the same story), a re-run over the same
//! window inserts nothing, alarm paging past the 1000-row cap, devices with
//! 2019 or future clocks refused and counted, the client's recovery from
//! 5xx bursts, a token lost mid-run, rate limiting and slow answers, and
//! the `devices` job disabling nothing while a target is down.
//!
//! Windows are fixed (`--from`/`--to`) and in the past, so every run asks
//! about the same, finished, part of the simulated story.

use anyhow::{Context as _, Result, ensure};
use fleet_e2e::{TestDb, workspace_binary, write_account_credentials};
use fleet_workloads::config::TargetConfig;
use fleet_workloads::store::{connect, schema};
use jiff::Timestamp;
use sqlx::PgPool;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output};
use tracksolid_sim::fleet::TrackOptions;
use tracksolid_sim::{AccountConfig, DeviceQuirk, FaultsPatch, SimConfig, SimServer};

const SCHEMA: &str = "fleet_jobs";
const HOUR: i64 = 3600;

/// A window in the past, `[now - 54 h, now - 42 h]` on whole hours: the
/// simulated stops that start in it have all ended, buffered points have
/// arrived, and a device clock 3 days fast puts its events beyond the
/// guard's 1-hour tolerance.
fn past_window() -> (i64, i64) {
    let h = Timestamp::now().as_second().div_euclid(HOUR) * HOUR;
    (h - 54 * HOUR, h - 42 * HOUR)
}

fn rfc3339(secs: i64) -> Result<String> {
    Ok(Timestamp::from_second(secs)?.to_string())
}

/// One simulator, one database, one target per simulator account
/// (`t1`, `t2`, …), and the config file the binary reads.
struct Rig {
    db: TestDb,
    pool: PgPool,
    sim: SimServer,
    dir: PathBuf,
    config: PathBuf,
}

impl Rig {
    async fn start(prefix: &str, sim_cfg: SimConfig) -> Result<Rig> {
        let db = TestDb::create(prefix).await?;
        let pool = connect::pool(connect::from_url(&db.url(), SCHEMA)?, 2).await?;
        schema::migrate(&pool, SCHEMA).await?;
        let sim = SimServer::start(sim_cfg).await?;
        let dir = std::env::temp_dir().join(format!("fleet-jobs-e2e-{}", db.name));
        let mut config = fleet_e2e::workload_config(&db.name, SCHEMA);
        config.event_time_guard.max_future_seconds = 3600;
        config.targets = Vec::new();
        for (i, account) in sim.state().accounts().iter().enumerate() {
            let name = format!("t{}", i + 1);
            let creds = dir.join("targets").join(&name);
            write_account_credentials(&creds, account)?;
            config.targets.push(TargetConfig {
                name,
                endpoint: sim.endpoint(),
                credentials_dir: creds.display().to_string(),
                protocol: Default::default(),
            });
        }
        let config_path = dir.join("config.json");
        std::fs::write(&config_path, config.to_json())?;
        Ok(Rig {
            db,
            pool,
            sim,
            dir,
            config: config_path,
        })
    }

    /// Runs `fleet-ingest <args>` to completion.
    fn run(&self, args: &[&str]) -> Result<Output> {
        let out = Command::new(workspace_binary("fleet-ingest")?)
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .args(["--database-url", &self.db.url()])
            .env("RUST_LOG", "info")
            .output()
            .context("running fleet-ingest")?;
        Ok(out)
    }

    /// Runs `fleet-ingest <job> --from b --to e` and expects `exit`.
    fn run_window(&self, job: &str, (b, e): (i64, i64), exit: i32) -> Result<Output> {
        let (from, to) = (rfc3339(b)?, rfc3339(e)?);
        let out = self.run(&[job, "--from", &from, "--to", &to])?;
        ensure!(
            out.status.code() == Some(exit),
            "{job}: expected exit {exit}, got {:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(out)
    }

    /// `(target, rows_inserted, rows_rejected, status)` of `endpoint`, oldest first.
    async fn log(&self, endpoint: &str) -> Result<Vec<(String, i64, i64, String)>> {
        Ok(sqlx::query_as(
            "SELECT target, rows_inserted, rows_rejected, status FROM ingestion_log
             WHERE endpoint = $1 ORDER BY id",
        )
        .bind(endpoint)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn count(&self, sql: &str) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    fn account_imeis(&self, account: usize) -> Vec<String> {
        self.sim.state().fleet.accounts[account]
            .devices
            .iter()
            .map(|d| d.imei.clone())
            .collect()
    }

    /// Expected `(inserted, rejected)` of a window, summed over the
    /// devices of every account: `count(quirk, device)` gives the rows the
    /// simulator answers for a device; devices with bad clocks (and, where
    /// `zero_fix_rejected`, those at (0,0)) have every row refused.
    fn expect<F>(&self, zero_fix_rejected: bool, mut count: F) -> (i64, i64)
    where
        F: FnMut(&tracksolid_sim::fleet::DeviceSpec) -> (usize, usize),
    {
        let st = self.sim.state();
        let (mut ins, mut rej) = (0, 0);
        for account in &st.fleet.accounts {
            for d in &account.devices {
                let (distinct, answered) = count(d);
                let refused = match st.quirk(d.index) {
                    DeviceQuirk::None => false,
                    DeviceQuirk::ZeroFix => zero_fix_rejected,
                    DeviceQuirk::Clock2019 | DeviceQuirk::FutureClock => true,
                };
                if refused {
                    rej += answered as i64;
                } else {
                    ins += distinct as i64;
                }
            }
        }
        (ins, rej)
    }

    async fn finish(self) {
        self.pool.close().await;
        self.db.drop_db().await;
        let _ = self.sim.stop().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn quirky(devices: usize, seed: u64) -> SimConfig {
    let mut cfg = SimConfig::for_tests(devices, seed);
    cfg.faults.zero_fix_devices = 2;
    cfg.faults.clock_2019_devices = 2;
    cfg.faults.future_clock_devices = 1;
    cfg
}

fn now_secs() -> i64 {
    Timestamp::now().as_second()
}

/// The run's one log row per target: exact, never negative, and equal to
/// what the table gained.
async fn check_log(
    rig: &Rig,
    endpoint: &str,
    runs: usize,
    last: (i64, i64),
    table_count: i64,
) -> Result<()> {
    let log = rig.log(endpoint).await?;
    ensure!(
        log.len() == runs,
        "one {endpoint} log row per run and target: {log:?}"
    );
    let Some((_, ins, rej, status)) = log.last() else {
        anyhow::bail!("no {endpoint} log row");
    };
    ensure!(status == "ok", "{endpoint}: {log:?}");
    ensure!(
        (*ins, *rej) == last,
        "{endpoint}: logged (inserted, rejected) = ({ins}, {rej}), expected {last:?}"
    );
    let sum: i64 = log.iter().map(|r| r.1).sum();
    ensure!(
        sum == table_count,
        "{endpoint}: the log says {sum} rows in all, the table has {table_count}"
    );
    ensure!(log.iter().all(|r| r.1 >= 0 && r.2 >= 0));
    Ok(())
}

// Multi-threaded: the simulator runs in this process while the test blocks
// on the child process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn track_counts_exactly_keeps_latest_positions_and_reruns_insert_nothing() -> Result<()> {
    let mut cfg = quirky(12, 11);
    cfg.faults.duplicate_points = true;
    cfg.faults.late_points = true;
    let rig = Rig::start("jobs_track", cfg).await?;

    // Latest positions first: the track of two days ago must not move them back.
    let out = rig.run(&["positions"])?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before: Vec<(String, i64)> = sqlx::query_as(
        "SELECT imei, extract(epoch FROM gps_time)::bigint FROM latest_positions ORDER BY imei",
    )
    .fetch_all(&rig.pool)
    .await?;
    ensure!(before.len() == 7, "12 devices - 5 quirky: {before:?}");

    let w = past_window();
    rig.run_window("track", w, 0)?;
    let opts = TrackOptions {
        duplicates: true,
        late_points: true,
    };
    let now = now_secs();
    let expected = rig.expect(true, |d| {
        let pts = rig.sim.state().fleet.track(d, w.0, w.1, now, opts);
        let distinct: BTreeSet<i64> = pts.iter().map(|p| p.t).collect();
        (distinct.len(), pts.len())
    });
    ensure!(expected.0 > 500 && expected.1 > 0, "{expected:?}");
    let stored = rig.count("SELECT count(*) FROM positions").await?;
    let from_positions = i64::try_from(before.len())?;
    ensure!(
        stored == expected.0 + from_positions,
        "positions: {stored} stored, {} expected from the track + {from_positions} latest",
        expected.0
    );
    let track_log = rig.log("track").await?;
    ensure!(
        track_log.len() == 1 && (track_log[0].1, track_log[0].2) == expected,
        "track log {track_log:?}, expected {expected:?}"
    );
    let bad = rig
        .count(
            "SELECT count(*) FROM positions WHERE gps_time < '2020-01-01' \
             OR gps_time > now() + interval '1 hour' OR (lat = 0 AND lng = 0)",
        )
        .await?;
    ensure!(bad == 0, "{bad} garbage rows stored");
    let buffered = rig
        .count("SELECT count(*) FROM positions WHERE gps_mode = 1")
        .await?;
    ensure!(
        buffered > 0,
        "retransmitted points are stored with gps_mode 1"
    );

    let after: Vec<(String, i64)> = sqlx::query_as(
        "SELECT imei, extract(epoch FROM gps_time)::bigint FROM latest_positions ORDER BY imei",
    )
    .fetch_all(&rig.pool)
    .await?;
    ensure!(
        after == before,
        "latest_positions moved:\nbefore {before:?}\nafter {after:?}"
    );

    // The same window again: nothing new.
    rig.run_window("track", w, 0)?;
    check_log(&rig, "track", 2, (0, expected.1), stored - from_positions).await?;
    rig.finish().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_count_exactly_refuse_bad_clocks_and_reruns_insert_nothing() -> Result<()> {
    let rig = Rig::start("jobs_alarms", quirky(15, 12)).await?;
    let w = past_window();
    rig.run_window("alarms", w, 0)?;
    let now = now_secs();
    // Alarms of devices at (0,0) are kept, without coordinates.
    let expected = rig.expect(false, |d| {
        let n = rig.sim.state().fleet.alarms(d, w.0, w.1, now).len();
        (n, n)
    });
    ensure!(expected.0 > 20 && expected.1 > 0, "{expected:?}");
    let stored = rig.count("SELECT count(*) FROM alarms").await?;
    ensure!(
        stored == expected.0,
        "{stored} stored, expected {expected:?}"
    );
    check_log(&rig, "alarms", 1, expected, stored).await?;
    let polled = rig
        .count("SELECT count(*) FROM alarms WHERE source = 'poll' AND alarm_name IS NOT NULL")
        .await?;
    ensure!(polled == stored);
    let zero = rig
        .count("SELECT count(*) FROM alarms WHERE lat = 0 AND lng = 0")
        .await?;
    ensure!(zero == 0, "(0,0) stored as a position");

    rig.run_window("alarms", w, 0)?;
    check_log(&rig, "alarms", 2, (0, expected.1), stored).await?;
    rig.finish().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parking_counts_exactly_both_kinds_and_reruns_insert_nothing() -> Result<()> {
    let rig = Rig::start("jobs_parking", quirky(14, 13)).await?;
    let w = past_window();
    rig.run_window("parking", w, 0)?;
    let now = now_secs();
    let expected = rig.expect(false, |d| {
        let n = rig.sim.state().fleet.stops(d, w.0, w.1, now).len();
        (n, n)
    });
    let idling: usize = rig
        .sim
        .state()
        .fleet
        .accounts
        .iter()
        .flat_map(|a| a.devices.iter())
        .filter(|d| rig.sim.state().quirk(d.index) == DeviceQuirk::None)
        .map(|d| {
            rig.sim
                .state()
                .fleet
                .stops(d, w.0, w.1, now)
                .iter()
                .filter(|s| s.idling)
                .count()
        })
        .sum();
    ensure!(expected.0 > 10 && expected.1 > 0, "{expected:?}");
    let stored = rig.count("SELECT count(*) FROM parking").await?;
    ensure!(
        stored == expected.0,
        "{stored} stored, expected {expected:?}"
    );
    check_log(&rig, "parking", 1, expected, stored).await?;
    let idled = rig
        .count(
            "SELECT count(*) FROM parking WHERE kind = 'idling' AND lat IS NOT NULL \
             AND end_time > start_time AND duration_s > 0",
        )
        .await?;
    ensure!(
        idled == i64::try_from(idling)?,
        "idling periods of sound devices: {idled} stored, {idling} generated"
    );

    // A period first seen while still going on (cut short here) is
    // lengthened by the next run; nothing is inserted twice.
    let cut = rig
        .count(
            "WITH one AS (SELECT imei, kind, start_time FROM parking ORDER BY imei, start_time LIMIT 1)
             UPDATE parking p SET end_time = p.start_time + interval '1 minute', duration_s = 60
             FROM one WHERE (p.imei, p.kind, p.start_time) = (one.imei, one.kind, one.start_time)
             RETURNING 1::bigint",
        )
        .await?;
    ensure!(cut == 1);
    rig.run_window("parking", w, 0)?;
    check_log(&rig, "parking", 2, (0, expected.1), stored).await?;
    let short = rig
        .count("SELECT count(*) FROM parking WHERE duration_s = 60")
        .await?;
    ensure!(short == 0, "the cut period got its real end back");
    rig.finish().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_page_past_the_1000_row_cap_in_imei_batches() -> Result<()> {
    let rig = Rig::start("jobs_alarm_pages", SimConfig::for_tests(130, 14)).await?;
    // Three days of 130 devices: two IMEI batches (100 + 30), thousands of
    // alarms, windows halved until each is under the cap.
    let h = now_secs().div_euclid(HOUR) * HOUR;
    let w = (h - 80 * HOUR, h - 8 * HOUR);
    rig.run_window("alarms", w, 0)?;
    let now = now_secs();
    let st = rig.sim.state();
    let first_batch: usize = st.fleet.accounts[0].devices[..100]
        .iter()
        .map(|d| st.fleet.alarms(d, w.0, w.1, now).len())
        .sum();
    ensure!(
        first_batch > 1000,
        "the first batch alone must pass the cap: {first_batch}"
    );
    let expected = rig.expect(false, |d| {
        let n = st.fleet.alarms(d, w.0, w.1, now).len();
        (n, n)
    });
    let stored = rig.count("SELECT count(*) FROM alarms").await?;
    ensure!(
        stored == expected.0,
        "{stored} stored, expected {expected:?}"
    );
    check_log(&rig, "alarms", 1, (expected.0, 0), stored).await?;
    let calls = st.stats().method("jimi.device.alarm.list");
    ensure!(calls > 30, "paged and split: {calls} alarm.list calls");
    ensure!(
        st.stats().outcome("1001") == 0,
        "no call broke a limit (window, page size, IMEIs)"
    );
    rig.finish().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_are_disabled_only_when_every_target_answered() -> Result<()> {
    let mut cfg = SimConfig::for_tests(0, 15);
    cfg.accounts = vec![
        AccountConfig {
            devices: Some(8),
            ..AccountConfig::numbered(1)
        },
        AccountConfig {
            devices: Some(6),
            ..AccountConfig::numbered(2)
        },
    ];
    let rig = Rig::start("jobs_devices", cfg).await?;
    let enabled = "SELECT count(*) FROM devices WHERE enabled AND disabled_at IS NULL";
    let last_two = |log: &[(String, i64, i64, String)]| -> Vec<(String, i64, String)> {
        log[log.len().saturating_sub(2)..]
            .iter()
            .map(|(t, i, _, s)| (t.clone(), *i, s.clone()))
            .collect()
    };

    // Both answer: every device stored, per target.
    let out = rig.run(&["devices"])?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(rig.count(enabled).await? == 14);
    ensure!(
        last_two(&rig.log("devices").await?)
            == vec![("t1".into(), 8, "ok".into()), ("t2".into(), 6, "ok".into())]
    );
    let named = rig
        .count(
            "SELECT count(*) FROM devices WHERE name IS NOT NULL AND model IS NOT NULL \
             AND attributes ? 'sim' AND target IN ('t1', 't2')",
        )
        .await?;
    ensure!(named == 14, "names, models and attributes stored");
    let out = rig.run(&["devices"])?;
    ensure!(out.status.success());
    ensure!(
        last_two(&rig.log("devices").await?)
            == vec![("t1".into(), 0, "ok".into()), ("t2".into(), 0, "ok".into())],
        "a re-run inserts nothing"
    );

    // Two devices leave t1 while t2 is down: nothing is disabled, exit 1.
    let gone: BTreeSet<String> = rig.account_imeis(0).into_iter().take(2).collect();
    let t2_key = rig.sim.state().accounts()[1].app_key.clone();
    rig.sim.state().patch_faults(&FaultsPatch {
        hidden_devices: Some(gone.clone()),
        down_accounts: Some([t2_key].into()),
        ..FaultsPatch::default()
    });
    let out = rig.run(&["devices"])?;
    ensure!(
        out.status.code() == Some(1),
        "a target down: exit 1, got {:?}",
        out.status
    );
    ensure!(
        rig.count(enabled).await? == 14,
        "a partial outage disables nothing"
    );
    ensure!(
        last_two(&rig.log("devices").await?)
            == vec![
                ("t1".into(), 0, "ok".into()),
                ("t2".into(), 0, "failed".into())
            ]
    );

    // Both answer again: the two that left are disabled.
    rig.sim.state().patch_faults(&FaultsPatch {
        down_accounts: Some(BTreeSet::new()),
        ..FaultsPatch::default()
    });
    let out = rig.run(&["devices"])?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(rig.count(enabled).await? == 12);
    let disabled: Vec<(String,)> = sqlx::query_as(
        "SELECT imei FROM devices WHERE NOT enabled AND disabled_at IS NOT NULL ORDER BY imei",
    )
    .fetch_all(&rig.pool)
    .await?;
    let disabled: BTreeSet<String> = disabled.into_iter().map(|(i,)| i).collect();
    ensure!(disabled == gone, "disabled {disabled:?}, expected {gone:?}");

    // They come back: re-enabled.
    rig.sim.state().patch_faults(&FaultsPatch {
        hidden_devices: Some(BTreeSet::new()),
        ..FaultsPatch::default()
    });
    ensure!(rig.run(&["devices"])?.status.success());
    ensure!(
        rig.count(enabled).await? == 14,
        "returning devices re-enabled"
    );

    // Every account answers empty: nothing is disabled either.
    let all: BTreeSet<String> = rig
        .account_imeis(0)
        .into_iter()
        .chain(rig.account_imeis(1))
        .collect();
    rig.sim.state().patch_faults(&FaultsPatch {
        hidden_devices: Some(all),
        ..FaultsPatch::default()
    });
    ensure!(rig.run(&["devices"])?.status.success());
    ensure!(
        rig.count(enabled).await? == 14,
        "an empty union disables nothing"
    );
    let negative = rig
        .count("SELECT count(*) FROM ingestion_log WHERE rows_inserted < 0")
        .await?;
    ensure!(negative == 0);
    rig.finish().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn track_recovers_from_a_token_lost_mid_run_and_rate_limiting() -> Result<()> {
    let mut cfg = SimConfig::for_tests(8, 16);
    // The 5th request (the third track call) finds its token gone; and no
    // more than 3 requests a second are answered.
    cfg.faults.expire_tokens_after = Some(5);
    cfg.faults.rate_limit_per_sec = Some(3);
    let rig = Rig::start("jobs_track_faults", cfg).await?;
    let w = past_window();
    rig.run_window("track", w, 0)?;
    let now = now_secs();
    let expected = rig.expect(true, |d| {
        let pts = rig
            .sim
            .state()
            .fleet
            .track(d, w.0, w.1, now, TrackOptions::default());
        let distinct: BTreeSet<i64> = pts.iter().map(|p| p.t).collect();
        (distinct.len(), pts.len())
    });
    let stored = rig.count("SELECT count(*) FROM positions").await?;
    ensure!(
        stored == expected.0,
        "{stored} stored, expected {expected:?}"
    );
    check_log(&rig, "track", 1, expected, stored).await?;
    let stats = rig.sim.state().stats();
    ensure!(stats.outcome("1004") >= 1, "a token was refused: {stats:?}");
    ensure!(
        stats.logins == 2,
        "one login, one after the 1004: {stats:?}"
    );
    ensure!(stats.outcome("1006") >= 1, "rate limited: {stats:?}");
    rig.finish().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_recover_from_a_5xx_burst_and_slow_answers() -> Result<()> {
    let mut cfg = quirky(10, 17);
    cfg.faults.fail_next = 3;
    cfg.faults.fail_status = Some(502);
    cfg.faults.latency_ms = 300;
    let rig = Rig::start("jobs_alarm_faults", cfg).await?;
    let w = past_window();
    rig.run_window("alarms", w, 0)?;
    let now = now_secs();
    let expected = rig.expect(false, |d| {
        let n = rig.sim.state().fleet.alarms(d, w.0, w.1, now).len();
        (n, n)
    });
    let stored = rig.count("SELECT count(*) FROM alarms").await?;
    ensure!(
        stored == expected.0,
        "{stored} stored, expected {expected:?}"
    );
    check_log(&rig, "alarms", 1, expected, stored).await?;
    ensure!(rig.sim.state().stats().outcome("http502") == 3);
    rig.finish().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parking_backs_off_on_1006_and_completes() -> Result<()> {
    let mut cfg = SimConfig::for_tests(6, 18);
    cfg.faults.rate_limit_next = 2;
    let rig = Rig::start("jobs_parking_1006", cfg).await?;
    let w = past_window();
    rig.run_window("parking", w, 0)?;
    let now = now_secs();
    let expected = rig.expect(false, |d| {
        let n = rig.sim.state().fleet.stops(d, w.0, w.1, now).len();
        (n, n)
    });
    let stored = rig.count("SELECT count(*) FROM parking").await?;
    ensure!(
        stored == expected.0,
        "{stored} stored, expected {expected:?}"
    );
    check_log(&rig, "parking", 1, expected, stored).await?;
    ensure!(rig.sim.state().stats().outcome("1006") == 2);
    rig.finish().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_without_a_window_look_back_and_log_what_they_store() -> Result<()> {
    let mut cfg = SimConfig::for_tests(10, 19);
    cfg.accounts = vec![AccountConfig::numbered(1), AccountConfig::numbered(2)];
    let rig = Rig::start("jobs_lookback", cfg).await?;
    // The second target fails at first: a wrong password (refused at once,
    // no retries).
    let password = rig.dir.join("targets/t2/userPassword");
    let right = std::fs::read_to_string(&password)?;
    std::fs::write(&password, "wrong")?;
    for job in ["track", "alarms", "parking"] {
        let out = rig.run(&[job])?;
        ensure!(
            out.status.code() == Some(1),
            "{job} with a target failing: exit 1, got {:?}",
            out.status
        );
    }
    std::fs::write(&password, right)?;
    for job in ["track", "alarms", "parking"] {
        let out = rig.run(&[job, "--lookback-seconds", "7200"])?;
        ensure!(
            out.status.success(),
            "{job}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for (job, table) in [
        ("track", "positions"),
        ("alarms", "alarms"),
        ("parking", "parking"),
    ] {
        let log = rig.log(job).await?;
        let statuses: Vec<(&str, &str)> = log
            .iter()
            .map(|(t, _, _, s)| (t.as_str(), s.as_str()))
            .collect();
        ensure!(
            statuses == [("t1", "ok"), ("t2", "failed"), ("t1", "ok"), ("t2", "ok")],
            "{job}: {statuses:?}"
        );
        let sum: i64 = log.iter().map(|r| r.1).sum();
        let stored = rig.count(&format!("SELECT count(*) FROM {table}")).await?;
        ensure!(sum == stored, "{job}: logged {sum}, stored {stored}");
    }
    ensure!(
        rig.count("SELECT count(*) FROM positions").await? > 0,
        "two hours of track of 20 devices is not empty"
    );
    rig.finish().await;
    Ok(())
}
