//! `fleet-ingest trips` and `fleet-ingest housekeeping`, the real binary,
//! against the Tracksolid simulator, the fake Nominatim and a real
//! PostgreSQL:
//!
//! - trips are counted exactly against the simulator's own story, refused
//!   ones (2019 clocks) counted, a re-run inserts nothing and asks nothing;
//! - the geocoder is asked once per distinct point, never faster than the
//!   configured rate, never twice at once, with the configured User-Agent;
//!   cached points are never asked again;
//! - while the geocoder is answering, the job holds no database connection
//!   (pg_stat_activity, by the job's application_name);
//! - a geocoder outage leaves addresses for the next run; a 5xx burst and a
//!   token rejected mid-run still give exact counts;
//! - housekeeping deletes exactly what is past retention, keeps the rest,
//!   logs the refresh and refreshes the reporting view.

use anyhow::{Context as _, Result, ensure};
use fleet_e2e::{TestDb, workspace_binary, write_account_credentials};
use fleet_workloads::config::{GeocodingConfig, PipelineConfig, TargetConfig};
use fleet_workloads::geocode::CacheKey;
use fleet_workloads::store::{connect, schema};
use sqlx::PgPool;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};
use tracksolid_sim::nominatim::address_for;
use tracksolid_sim::{
    DeviceQuirk, FakeNominatim, FakeNominatimConfig, FaultsPatch, SimConfig, SimServer,
};

const SCHEMA: &str = "fleet_trips";

/// Trips by `(imei, start)` in epoch seconds.
type TripKeys = BTreeSet<(String, i64)>;
const USER_AGENT: &str = "fleetpipeline-e2e/1 (trips test)";
const LOOKBACK_HOURS: i64 = 24;

/// A database, the simulator, the fake geocoder and a config file.
struct Fixture {
    db: TestDb,
    pool: PgPool,
    sim: SimServer,
    geo: FakeNominatim,
    dir: PathBuf,
    config: PipelineConfig,
}

impl Fixture {
    async fn start(name: &str, sim_cfg: SimConfig, requests_per_second: u32) -> Result<Self> {
        let db = TestDb::create(name).await?;
        let pool = connect::pool(connect::from_url(&db.url(), SCHEMA)?, 2).await?;
        schema::migrate(&pool, SCHEMA).await?;
        let sim = SimServer::start(sim_cfg).await?;
        let geo = FakeNominatim::start(FakeNominatimConfig::default()).await?;
        let dir = std::env::temp_dir().join(format!("fleet-{name}-e2e-{}", std::process::id()));
        let creds = dir.join("targets/hk");
        write_account_credentials(&creds, &sim.state().accounts()[0])?;
        let mut config = fleet_e2e::workload_config(&db.name, SCHEMA);
        config.targets = vec![TargetConfig {
            name: "hk".into(),
            endpoint: sim.endpoint(),
            credentials_dir: creds.display().to_string(),
            protocol: Default::default(),
        }];
        config.geocoding = Some(GeocodingConfig {
            url: geo.base_url(),
            requests_per_second,
            user_agent: None,
        });
        let f = Fixture {
            db,
            pool,
            sim,
            geo,
            dir,
            config,
        };
        f.write_config()?;
        Ok(f)
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    fn write_config(&self) -> Result<()> {
        std::fs::write(self.config_path(), self.config.to_json())?;
        Ok(())
    }

    fn command(&self, job: &str) -> Result<tokio::process::Command> {
        let mut cmd = tokio::process::Command::new(workspace_binary("fleet-ingest")?);
        cmd.arg(job)
            .arg("--config")
            .arg(self.config_path())
            .args(["--database-url", &self.db.url()])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .env("FLEET_TRIPS_LOOKBACK_HOURS", LOOKBACK_HOURS.to_string())
            .env("FLEET_GEOCODER_USER_AGENT", USER_AGENT)
            .kill_on_drop(true);
        Ok(cmd)
    }

    /// Starts a job in the background (its output discarded).
    fn spawn(&self, job: &str) -> Result<tokio::process::Child> {
        Ok(self
            .command(job)?
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?)
    }

    /// Runs a job to completion (bounded).
    async fn run(&self, job: &str) -> Result<Output> {
        let out = tokio::time::timeout(Duration::from_secs(60), self.command(job)?.output())
            .await
            .context("fleet-ingest did not finish within 60 s")??;
        Ok(out)
    }

    async fn count(&self, sql: &str) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.pool)
            .await
            .with_context(|| sql.to_owned())?;
        Ok(n)
    }

    /// (rows_inserted, rows_rejected, status) of the latest trips log row.
    async fn last_log(&self) -> Result<(i64, i64, String)> {
        Ok(sqlx::query_as(
            "SELECT rows_inserted, rows_rejected, status FROM ingestion_log
             WHERE endpoint = 'trips' AND target = 'hk' ORDER BY id DESC LIMIT 1",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// The simulator's trips of every device, as `(imei, start)`, that start
    /// in `[b, e]` and have ended by `now` (epoch seconds), split into those
    /// of well-behaved devices and those with 2019 clocks.
    fn truth(&self, b: i64, e: i64, now: i64) -> (TripKeys, TripKeys) {
        let st = self.sim.state();
        let mut good = BTreeSet::new();
        let mut bad = BTreeSet::new();
        if let Some(fleet) = st.account_fleet(0) {
            for d in &fleet.devices {
                let set = if st.quirk(d.index) == DeviceQuirk::Clock2019 {
                    &mut bad
                } else {
                    &mut good
                };
                for t in st.fleet.trips(d, b, e, now) {
                    set.insert((d.imei.clone(), t.start));
                }
            }
        }
        (good, bad)
    }

    async fn stored_trips(&self) -> Result<BTreeSet<(String, i64)>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT imei, extract(epoch FROM start_time)::bigint FROM trips")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().collect())
    }

    /// Distinct cache keys (rounded points) of the stored trips.
    async fn distinct_points(&self) -> Result<i64> {
        let points: Vec<(Option<f64>, Option<f64>)> = sqlx::query_as(
            "SELECT start_lat, start_lng FROM trips UNION ALL SELECT end_lat, end_lng FROM trips",
        )
        .fetch_all(&self.pool)
        .await?;
        let keys: BTreeSet<CacheKey> = points
            .into_iter()
            .filter_map(|(lat, lng)| CacheKey::from_opt(lat, lng))
            .collect();
        Ok(keys.len() as i64)
    }

    async fn cleanup(self) {
        self.pool.close().await;
        self.db.drop_db().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn epoch_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn ok(out: &Output) -> Result<()> {
    ensure!(
        out.status.success(),
        "fleet-ingest failed: {:?}\n{}",
        out.status,
        logs(out)
    );
    Ok(())
}

/// The job's own logs (the fmt subscriber writes to stdout).
fn logs(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trips_are_exact_geocoded_at_the_rate_and_cached() -> Result<()> {
    let mut sim_cfg = SimConfig::for_tests(6, 11);
    sim_cfg.faults.clock_2019_devices = 1;
    // 8 requests per second: starts at least 125 ms apart.
    let f = Fixture::start("trips", sim_cfg, 8).await?;
    let interval = Duration::from_millis(125);

    let t0 = epoch_now();
    let out = f.run("trips").await?;
    let t1 = epoch_now();
    ok(&out)?;

    // Exact against the simulator: every trip that surely falls in the
    // window is stored, nothing outside the widest possible window is.
    let lookback = LOOKBACK_HOURS * 3600;
    let (core, core_bad) = f.truth(t1 - lookback + 1, t0, t0);
    let (widest, widest_bad) = f.truth(t0 - lookback - 1, t1, t1);
    let stored = f.stored_trips().await?;
    ensure!(!core.is_empty(), "the simulator drove no trips in a day");
    ensure!(
        core.is_subset(&stored) && stored.is_subset(&widest),
        "stored trips {stored:?} not between {core:?} and {widest:?}"
    );
    let (inserted, rejected, status) = f.last_log().await?;
    ensure!(status == "ok");
    ensure!(
        inserted == stored.len() as i64,
        "ingestion_log says {inserted}, the table has {}",
        stored.len()
    );
    ensure!(
        (core_bad.len() as i64..=widest_bad.len() as i64).contains(&rejected),
        "the 2019-clock device's trips are refused and counted: {rejected} vs {}..{}",
        core_bad.len(),
        widest_bad.len()
    );
    ensure!(
        f.count("SELECT count(*) FROM trips WHERE start_time < '2020-01-01'")
            .await?
            == 0
    );
    let (distance_ok,): (bool,) = sqlx::query_as(
        "SELECT bool_and(distance_m > 0 AND duration_s > 0 AND end_time > start_time) FROM trips",
    )
    .fetch_one(&f.pool)
    .await?;
    ensure!(distance_ok, "distances in metres and durations are stored");

    // One request per distinct point, all cached, every address filled with
    // the fake's answer for exactly the rounded point.
    let points = f.distinct_points().await?;
    let requests = f.geo.state().requests();
    ensure!(
        requests.len() as i64 == points,
        "{} geocoder requests for {points} distinct points",
        requests.len()
    );
    ensure!(f.count("SELECT count(*) FROM geocode_cache").await? == points);
    let rows: Vec<(f64, f64, Option<String>)> =
        sqlx::query_as("SELECT start_lat, start_lng, start_address FROM trips")
            .fetch_all(&f.pool)
            .await?;
    for (lat, lng, address) in rows {
        let key = CacheKey::from_degrees(lat, lng).context("a trip without a start point")?;
        let expected = address_for(&key.lat_param(), &key.lng_param());
        ensure!(
            address.as_deref() == Some(expected.as_str()),
            "start ({lat},{lng}): {address:?}, expected {expected:?}"
        );
    }
    ensure!(
        f.count("SELECT count(*) FROM trips WHERE end_address IS NULL")
            .await?
            == 0
    );
    ensure!(
        requests
            .iter()
            .all(|r| r.user_agent.as_deref() == Some(USER_AGENT))
    );
    ensure!(f.geo.state().max_in_flight() == 1, "one request at a time");

    // The rate, measured at the fake's end, where arrival times jitter by
    // up to hundreds of ms on a loaded machine (connection set-up,
    // scheduling; seen in CI): on average no faster than the rate, and no
    // run of requests ever ahead of the schedule by more than one interval
    // (a late request may be followed closely by the next one on schedule,
    // but never a burst). Exact spacing is the limiter's unit test, on a
    // paused clock.
    ensure!(requests.len() >= 5, "enough requests to measure a rate");
    let n = requests.len();
    let span = requests[n - 1].at - requests[0].at;
    // One interval of slack, as below: the first arrival may be the late one.
    let ratio = (span + interval).as_secs_f64() / (interval.as_secs_f64() * (n - 1) as f64);
    ensure!(
        ratio >= 1.0,
        "{n} requests in {span:?}: {ratio:.2} of the spacing the rate allows"
    );
    let jitter = interval;
    for i in 0..n {
        for j in i + 1..n {
            let took = requests[j].at - requests[i].at;
            let allowed = interval * u32::try_from(j - i)?;
            ensure!(
                took + jitter >= allowed,
                "requests {i}..{j} came {took:?} apart, the rate allows no less than {allowed:?}"
            );
        }
    }
    ensure!(span < Duration::from_secs(30), "and not absurdly slow");

    // A re-run: nothing new unless a trip ended between the runs.
    let before = stored.len() as i64;
    f.geo.state().reset();
    let cached = f.count("SELECT count(*) FROM geocode_cache").await?;
    ok(&f.run("trips").await?)?;
    let t3 = epoch_now();
    let after = f.count("SELECT count(*) FROM trips").await?;
    let (inserted, _, _) = f.last_log().await?;
    ensure!(
        inserted == after - before,
        "second run logged {inserted}, added {}",
        after - before
    );
    // Trips that ended after the first run fetched can be new, no others.
    let ended_by_t3 = f.truth(t0 - lookback - 1, t3, t3).0.len() as i64;
    let ended_by_t0 = f.truth(t0 - lookback - 1, t3, t0).0.len() as i64;
    ensure!(
        inserted <= ended_by_t3 - ended_by_t0,
        "the re-run inserted {inserted} trips, only {} ended since the first run",
        ended_by_t3 - ended_by_t0
    );
    // Each request is for a point the cache did not know.
    let asked = f.geo.state().request_count() as i64;
    let new_cached = f.count("SELECT count(*) FROM geocode_cache").await? - cached;
    ensure!(
        asked == new_cached && asked <= 2 * inserted,
        "the re-run asked the geocoder {asked} times ({new_cached} new points, {inserted} new trips)"
    );

    // Cache hits: the trips are gone, the cache is not: every trip comes back
    // with its addresses and the geocoder is not asked at all.
    sqlx::query("DELETE FROM trips").execute(&f.pool).await?;
    f.geo.state().reset();
    let cached = f.count("SELECT count(*) FROM geocode_cache").await?;
    ok(&f.run("trips").await?)?;
    let (inserted, _, _) = f.last_log().await?;
    let now_stored = f.count("SELECT count(*) FROM trips").await?;
    ensure!(inserted == now_stored && inserted > 0);
    let asked = f.geo.state().request_count() as i64;
    let new_cached = f.count("SELECT count(*) FROM geocode_cache").await? - cached;
    ensure!(
        asked == new_cached,
        "cached points were asked again: {asked} requests, {new_cached} new points"
    );
    ensure!(
        asked <= 2 * (now_stored - before).max(0),
        "{asked} requests for {now_stored} trips that were all geocoded before"
    );
    ensure!(
        f.count("SELECT count(*) FROM trips WHERE start_address IS NULL OR end_address IS NULL")
            .await?
            == 0,
        "addresses come from the cache"
    );
    let (negative,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM ingestion_log WHERE rows_inserted < 0")
            .fetch_one(&f.pool)
            .await?;
    ensure!(negative == 0);
    f.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn geocoding_holds_no_database_connection() -> Result<()> {
    let f = Fixture::start("trips_conn", SimConfig::for_tests(3, 23), 10).await?;
    f.geo.state().set_latency_ms(250);
    let app = "fleet-ingest trips";
    let probe = || async {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
        )
        .bind(&f.db.name)
        .bind(app)
        .fetch_one(&f.pool)
        .await?;
        Ok::<_, anyhow::Error>(n)
    };

    // The probe sees a connection with the job's application_name.
    {
        use sqlx::Connection;
        let opts = connect::from_url(&f.db.url(), SCHEMA)?.application_name(app);
        let conn = sqlx::PgConnection::connect_with(&opts).await?;
        ensure!(
            probe().await? == 1,
            "the probe does not see a job connection"
        );
        conn.close().await?;
        let probe = &probe;
        fleet_e2e::wait_for(
            "the control connection to go",
            Duration::from_secs(5),
            || async move { Ok((probe().await? == 0).then_some(())) },
        )
        .await?;
    }

    let mut child = f.spawn("trips")?;
    let started = Instant::now();
    let mut samples = 0;
    let mut held = Vec::new();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        ensure!(
            started.elapsed() < Duration::from_secs(60),
            "fleet-ingest trips did not finish"
        );
        // Sample only while a geocoder request is in flight before and after
        // the probe: then the job is inside the geocoding phase.
        if f.geo.state().in_flight() > 0 {
            let n = probe().await?;
            if f.geo.state().in_flight() > 0 {
                samples += 1;
                if n > 0 {
                    held.push(n);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    ensure!(status.success(), "fleet-ingest trips failed: {status:?}");
    let requests = f.geo.state().request_count();
    ensure!(requests >= 3, "only {requests} geocoder requests");
    ensure!(
        samples >= 5,
        "only {samples} samples during {requests} geocoder requests"
    );
    ensure!(
        held.is_empty(),
        "the job held database connections while geocoding: {held:?} in {samples} samples"
    );
    let (inserted, _, status) = f.last_log().await?;
    ensure!(status == "ok" && inserted == f.count("SELECT count(*) FROM trips").await?);
    f.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_geocoder_outage_leaves_addresses_for_the_next_run() -> Result<()> {
    let f = Fixture::start("trips_geo_down", SimConfig::for_tests(3, 31), 20).await?;
    f.geo.state().fail_next(1_000);
    let out = f.run("trips").await?;
    ok(&out)?;
    let trips = f.count("SELECT count(*) FROM trips").await?;
    ensure!(trips > 0);
    let (inserted, _, status) = f.last_log().await?;
    ensure!(
        status == "ok" && inserted == trips,
        "trips are stored without addresses"
    );
    ensure!(
        f.geo.state().request_count() == 3,
        "gives up after 3 failures in a row, asked {}",
        f.geo.state().request_count()
    );
    ensure!(
        f.count(
            "SELECT count(*) FROM trips WHERE start_address IS NOT NULL OR end_address IS NOT NULL"
        )
        .await?
            == 0
    );
    ensure!(
        f.count("SELECT count(*) FROM geocode_cache").await? == 0,
        "failures are not cached"
    );

    // The geocoder is back: the stored trips get their addresses, nothing is
    // inserted twice.
    f.geo.state().reset();
    ok(&f.run("trips").await?)?;
    let after = f.count("SELECT count(*) FROM trips").await?;
    let (inserted, _, _) = f.last_log().await?;
    ensure!(inserted == after - trips);
    ensure!(
        f.count("SELECT count(*) FROM trips WHERE start_address IS NULL OR end_address IS NULL")
            .await?
            == 0,
        "addresses filled by the next run"
    );
    ensure!(f.geo.state().request_count() as i64 == f.distinct_points().await?);
    f.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trips_survive_a_5xx_burst_and_a_token_rejected_mid_run() -> Result<()> {
    let mut f = Fixture::start("trips_faults", SimConfig::for_tests(4, 41), 1).await?;
    // No geocoder: addresses come from the (empty) cache only.
    f.config.geocoding = None;
    f.write_config()?;

    // Stored positions during one trip: its top speed comes from them.
    let now = epoch_now();
    let (truth, _) = f.truth(now - LOOKBACK_HOURS * 3600 + 600, now - 600, now - 600);
    let (imei, start) = truth.first().cloned().context("no trip in the last day")?;
    sqlx::query(
        "INSERT INTO positions (imei, gps_time, lat, lng, speed, source)
         SELECT $1, to_timestamp($2) + s.o * interval '1 second', -1.3, 36.8, s.v, 'poll'
         FROM (VALUES (1, 12.0::real), (30, 55.5::real), (60, 31.0::real)) AS s(o, v)",
    )
    .bind(&imei)
    .bind(start as f64)
    .execute(&f.pool)
    .await?;

    // Three HTTP 500s in a row: retried with back-off, the run succeeds.
    f.sim.state().patch_faults(&FaultsPatch {
        fail_next: Some(3),
        ..FaultsPatch::default()
    });
    ok(&f.run("trips").await?)?;
    ensure!(f.sim.state().stats().outcome("http500") == 3);
    let first = f.count("SELECT count(*) FROM trips").await?;
    let (inserted, _, status) = f.last_log().await?;
    ensure!(status == "ok" && inserted == first && first > 0);
    ensure!(
        f.count("SELECT count(*) FROM trips WHERE start_address IS NOT NULL")
            .await?
            == 0
    );
    let (max_speed,): (Option<f32>,) = sqlx::query_as(
        "SELECT max_speed FROM trips WHERE imei = $1 AND start_time = to_timestamp($2)",
    )
    .bind(&imei)
    .bind(start as f64)
    .fetch_one(&f.pool)
    .await?;
    ensure!(
        max_speed == Some(55.5),
        "top speed from the stored positions: {max_speed:?}"
    );

    // The token is refused in the middle of the run (while the device list
    // is in flight): one new login, the run succeeds, counts stay exact.
    sqlx::query("DELETE FROM trips").execute(&f.pool).await?;
    f.sim.state().reset_stats();
    f.sim.state().patch_faults(&FaultsPatch {
        latency_ms: Some(1000),
        ..FaultsPatch::default()
    });
    let mut child = f.spawn("trips")?;
    let sim = &f.sim;
    fleet_e2e::wait_for("the device list request", Duration::from_secs(20), || async move {
        Ok((sim.state().stats().method("jimi.user.device.list") >= 1).then_some(()))
    })
    .await?;
    f.sim.state().invalidate_tokens();
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .context("fleet-ingest did not finish")??;
    ensure!(status.success(), "fleet-ingest trips failed: {status:?}");
    let stats = f.sim.state().stats();
    ensure!(
        stats.outcome("1004") >= 1 && stats.logins == 1,
        "one 1004, one new login: {stats:?}"
    );
    let again = f.count("SELECT count(*) FROM trips").await?;
    let (inserted, _, status) = f.last_log().await?;
    ensure!(status == "ok" && inserted == again && again >= first);
    f.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn housekeeping_deletes_exactly_what_is_past_retention() -> Result<()> {
    // Retention is one day for everything in the test config.
    let mut f = Fixture::start("housekeeping", SimConfig::for_tests(1, 1), 1).await?;
    let old = "now() - interval '2 days'";
    let recent = "now() - interval '2 hours'";
    for (when, n) in [(old, 3), (recent, 2)] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO ingestion_log (endpoint, target, started_at, finished_at, rows_inserted, status)
             SELECT 'positions', 'hk', {when}, {when}, 1, 'ok' FROM generate_series(1, {n})"
        )))
        .execute(&f.pool)
        .await?;
    }
    for (when, n) in [(old, 2), (recent, 1)] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO refresh_log (object, started_at, finished_at, status)
             SELECT 'mv_trips_per_day', {when}, {when}, 'ok' FROM generate_series(1, {n})"
        )))
        .execute(&f.pool)
        .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO push_events (received_at, kind, payload, payload_hash)
             SELECT {when}, 'gps', '{{}}'::jsonb, md5(random()::text) FROM generate_series(1, {n})"
        )))
        .execute(&f.pool)
        .await?;
    }
    for (when, n) in [("now() - interval '3 days'", 4), (recent, 3)] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO positions (imei, gps_time, lat, lng, source)
             SELECT '86000000000000' || g, {when} - g * interval '1 second', -1.29, 36.82, 'poll'
             FROM generate_series(1, {n}) g"
        )))
        .execute(&f.pool)
        .await?;
    }
    sqlx::query(
        "INSERT INTO trips (imei, start_time, end_time, distance_m, duration_s)
         VALUES ('860000000000001', now() - interval '5 hours', now() - interval '4 hours', 1000, 3600),
                ('860000000000001', now() - interval '3 hours', now() - interval '2 hours', 2500, 3600)",
    )
    .execute(&f.pool)
    .await?;
    ensure!(f.count("SELECT count(*) FROM mv_trips_per_day").await? == 0);

    let out = f.run("housekeeping").await?;
    ok(&out)?;
    let log = logs(&out);
    for expected in [
        "step=ingestion_log deleted=3",
        "step=push_events deleted=2",
        "step=refresh_log deleted=2",
        "step=positions deleted=4",
    ] {
        ensure!(log.contains(expected), "{expected:?} not logged:\n{log}");
    }
    ensure!(
        f.count("SELECT count(*) FROM ingestion_log WHERE endpoint = 'positions'")
            .await?
            == 2
    );
    ensure!(f.count("SELECT count(*) FROM push_events").await? == 1);
    ensure!(f.count("SELECT count(*) FROM positions").await? == 3);
    ensure!(
        f.count("SELECT count(*) FROM positions WHERE gps_time < now() - interval '1 day'")
            .await?
            == 0
    );
    // The old refresh_log rows are gone; the recent one and this run's are there.
    ensure!(
        f.count("SELECT count(*) FROM refresh_log WHERE finished_at < now() - interval '1 day'")
            .await?
            == 0
    );
    ensure!(
        f.count(
            "SELECT count(*) FROM refresh_log WHERE object = 'mv_trips_per_day' AND status = 'ok'
             AND finished_at > now() - interval '1 minute'"
        )
        .await?
            == 1,
        "the refresh is logged"
    );
    ensure!(f.count("SELECT count(*) FROM refresh_log").await? == 2);
    let (trips, distance): (i64, i64) =
        sqlx::query_as("SELECT sum(trips)::bigint, sum(distance_m)::bigint FROM mv_trips_per_day")
            .fetch_one(&f.pool)
            .await?;
    ensure!(
        (trips, distance) == (2, 3500),
        "the reporting view is refreshed: {trips} trips, {distance} m"
    );
    let (status, target, inserted): (String, Option<String>, i64) = sqlx::query_as(
        "SELECT status, target, rows_inserted FROM ingestion_log
         WHERE endpoint = 'housekeeping' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&f.pool)
    .await?;
    ensure!(status == "ok" && target.is_none() && inserted == 0);

    // Again: nothing left to delete.
    let out = f.run("housekeeping").await?;
    ok(&out)?;
    let log = logs(&out);
    ensure!(
        log.contains("step=ingestion_log deleted=0") && log.contains("step=positions deleted=0")
    );
    ensure!(f.count("SELECT count(*) FROM positions").await? == 3);

    // A retention shorter than a day is refused; the other steps still run,
    // and the run fails (exit 1, a failed ingestion_log row).
    f.config.retention.positions_seconds = 3600;
    f.write_config()?;
    let out = f.run("housekeeping").await?;
    ensure!(out.status.code() == Some(1), "exit 1, got {:?}", out.status);
    ensure!(f.count("SELECT count(*) FROM positions").await? == 3);
    let (status, error): (String, Option<String>) = sqlx::query_as(
        "SELECT status, error FROM ingestion_log
         WHERE endpoint = 'housekeeping' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&f.pool)
    .await?;
    ensure!(
        status == "failed" && error.as_deref().is_some_and(|e| e.contains("positions")),
        "{status} {error:?}"
    );
    ensure!(
        f.count("SELECT count(*) FROM refresh_log WHERE finished_at > now() - interval '1 minute'")
            .await?
            == 3,
        "the refresh ran in every run"
    );
    f.cleanup().await;
    Ok(())
}
