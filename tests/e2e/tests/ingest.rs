//! `fleet-ingest positions`, the real binary, against the Tracksolid
//! simulator and a real PostgreSQL: exact counts in `ingestion_log` (never
//! negative), clock garbage and (0,0) fixes rejected and counted, a target
//! that is down fails alone (non-zero exit) without touching the others.

use anyhow::{Context as _, Result, ensure};
use fleet_e2e::{TestDb, workspace_binary, write_target_credentials};
use fleet_workloads::config::TargetConfig;
use fleet_workloads::store::{connect, schema};
use std::process::Command;
use tracksolid_sim::{SimConfig, SimServer};

const SCHEMA: &str = "fleet_ingest";

// Multi-threaded: the simulator runs in this process while the test blocks
// on the child process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_are_counted_exactly_and_a_down_target_fails_alone() -> Result<()> {
    let db = TestDb::create("ingest").await?;
    let pool = connect::pool(connect::from_url(&db.url(), SCHEMA)?, 2).await?;
    schema::migrate(&pool, SCHEMA).await?;

    let mut sim_cfg = SimConfig::for_tests(30, 5);
    sim_cfg.faults.zero_fix_devices = 2;
    sim_cfg.faults.clock_2019_devices = 3;
    sim_cfg.faults.future_clock_devices = 1;
    let sim = SimServer::start(sim_cfg).await?;
    let account = sim.state().accounts()[0].clone();

    let dir = std::env::temp_dir().join(format!("fleet-ingest-e2e-{}", std::process::id()));
    let good = dir.join("targets/hk");
    write_target_credentials(
        &good,
        &account.app_key,
        &account.app_secret,
        &account.user_id,
        &account.password,
    )?;
    let down = dir.join("targets/eu");
    write_target_credentials(&down, "k", "s", "u", "p")?;
    let mut config = fleet_e2e::workload_config(&db.name, SCHEMA);
    config.targets = vec![
        TargetConfig {
            name: "hk".into(),
            endpoint: sim.endpoint(),
            credentials_dir: good.display().to_string(),
            protocol: Default::default(),
        },
        TargetConfig {
            name: "eu".into(),
            // Nothing listens on port 9 of loopback.
            endpoint: "http://127.0.0.1:9/route/rest".into(),
            credentials_dir: down.display().to_string(),
            protocol: Default::default(),
        },
    ];
    let config_path = dir.join("config.json");
    std::fs::write(&config_path, config.to_json())?;

    let run = || -> Result<std::process::Output> {
        Command::new(workspace_binary("fleet-ingest")?)
            .arg("positions")
            .arg("--config")
            .arg(&config_path)
            .args(["--database-url", &db.url()])
            .env("RUST_LOG", "info")
            .output()
            .context("running fleet-ingest")
    };
    let out = run()?;
    ensure!(
        out.status.code() == Some(1),
        "one target down: exit 1, got {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );

    let (inserted, rejected): (i64, i64) = sqlx::query_as(
        "SELECT rows_inserted, rows_rejected FROM ingestion_log WHERE target = 'hk' AND endpoint = 'positions'",
    )
    .fetch_one(&pool)
    .await?;
    let (stored,): (i64,) = sqlx::query_as("SELECT count(*) FROM positions")
        .fetch_one(&pool)
        .await?;
    ensure!(
        inserted == stored,
        "ingestion_log says {inserted}, table has {stored}"
    );
    ensure!(
        rejected == 6,
        "2 zero fixes + 3 clocks in 2019 + 1 in the future rejected, got {rejected}"
    );
    ensure!(
        inserted == 24,
        "30 devices - 6 rejected = 24, got {inserted}"
    );
    let (bad,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM positions WHERE gps_time < '2020-01-01' OR gps_time > now() + interval '48 hours' OR (lat = 0 AND lng = 0)",
    )
    .fetch_one(&pool)
    .await?;
    ensure!(bad == 0, "{bad} garbage rows stored");
    let (status, error): (String, Option<String>) =
        sqlx::query_as("SELECT status, error FROM ingestion_log WHERE target = 'eu'")
            .fetch_one(&pool)
            .await?;
    ensure!(
        status == "failed" && error.is_some(),
        "the down target is logged as failed"
    );
    ensure!(
        !String::from_utf8_lossy(&out.stderr).contains(&account.app_secret),
        "no secret in logs"
    );
    let (token_rows,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM api_token WHERE target = 'hk'")
            .fetch_one(&pool)
            .await?;
    ensure!(token_rows == 1, "the token is cached for the next run");

    // A second run: counts stay exact, logins are not repeated.
    let logins = sim.state().stats().logins;
    run()?;
    let (sum,): (i64,) =
        sqlx::query_as("SELECT sum(rows_inserted)::bigint FROM ingestion_log WHERE target = 'hk'")
            .fetch_one(&pool)
            .await?;
    let (stored,): (i64,) = sqlx::query_as("SELECT count(*) FROM positions")
        .fetch_one(&pool)
        .await?;
    ensure!(
        sum == stored,
        "after two runs: logged {sum}, stored {stored}"
    );
    ensure!(
        sim.state().stats().logins == logins,
        "the cached token was reused"
    );
    let (negative,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM ingestion_log WHERE rows_inserted < 0")
            .fetch_one(&pool)
            .await?;
    ensure!(negative == 0);

    pool.close().await;
    db.drop_db().await;
    Ok(())
}
