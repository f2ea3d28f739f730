//! The Tracksolid token cached in PostgreSQL (`api_token`): instants survive
//! any session time zone (the old stack's BUG-P9), invalidation only removes
//! the token it names, and clients that share the database share one login
//! against the simulator.

use anyhow::{Result, ensure};
use fleet_e2e::TestDb;
use fleet_workloads::store::token::PgTokenStore;
use fleet_workloads::store::{connect, schema};
use fleet_workloads::tracksolid::{
    CachedToken, ClientConfig, Credentials, RetryPolicy, TokenStore, TracksolidClient, UserPassword,
};
use jiff::Timestamp;
use sqlx::postgres::PgPoolOptions;
use std::time::Duration;
use tracksolid_sim::{SimConfig, SimServer};

const SCHEMA: &str = "fleet_tokens";

async fn pool_in_zone(db: &TestDb, zone: &str) -> Result<sqlx::PgPool> {
    let opts = connect::from_url(&db.url(), SCHEMA)?.options([("TimeZone", zone)]);
    Ok(PgPoolOptions::new()
        .max_connections(2)
        .connect_with(opts)
        .await?)
}

#[tokio::test]
async fn expiry_is_an_instant_whatever_the_session_time_zone() -> Result<()> {
    let db = TestDb::create("tokens").await?;
    let setup = connect::pool(connect::from_url(&db.url(), SCHEMA)?, 1).await?;
    schema::migrate(&setup, SCHEMA).await?;

    let east = PgTokenStore::new(pool_in_zone(&db, "Pacific/Kiritimati").await?); // UTC+14
    let west = PgTokenStore::new(pool_in_zone(&db, "America/Adak").await?); // UTC-10
    let token = CachedToken {
        access_token: "tok-1".into(),
        refresh_token: Some("ref-1".into()),
        obtained_at: "2026-11-28T06:00:00.123456Z".parse::<Timestamp>()?,
        expires_at: "2026-11-28T07:55:00Z".parse::<Timestamp>()?,
    };
    east.put("hk", &token).await?;
    let read = west.get("hk").await?;
    ensure!(
        read.as_ref() == Some(&token),
        "round trip across zones: {read:?}"
    );
    ensure!(west.get("eu").await?.is_none());

    // Invalidate only removes the token it names.
    east.put(
        "hk",
        &CachedToken {
            access_token: "tok-2".into(),
            ..token.clone()
        },
    )
    .await?;
    west.invalidate("hk", "tok-1").await?;
    ensure!(west.get("hk").await?.map(|t| t.access_token) == Some("tok-2".into()));
    west.invalidate("hk", "tok-2").await?;
    ensure!(west.get("hk").await?.is_none());

    setup.close().await;
    db.drop_db().await;
    Ok(())
}

#[tokio::test]
async fn clients_sharing_the_database_share_one_login() -> Result<()> {
    let db = TestDb::create("tokens_sim").await?;
    let setup = connect::pool(connect::from_url(&db.url(), SCHEMA)?, 1).await?;
    schema::migrate(&setup, SCHEMA).await?;
    let sim = SimServer::start(SimConfig::for_tests(5, 11)).await?;
    let account = sim.state().accounts()[0].clone();
    let mut cfg = ClientConfig::new(
        "hk",
        sim.endpoint(),
        Credentials {
            app_key: account.app_key.clone(),
            app_secret: account.app_secret.clone(),
            user_id: account.user_id.clone(),
            password: UserPassword::Plain(account.password.clone()),
        },
    );
    cfg.retry = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(10),
        rate_limit_base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        jitter: 0.5,
    };
    // Two "runs", each with its own pool, like two CronJob pods.
    for zone in ["Africa/Nairobi", "America/Adak"] {
        let store = PgTokenStore::new(pool_in_zone(&db, zone).await?);
        let client = TracksolidClient::new(cfg.clone(), store)?;
        let devices = client.device_list().await?;
        ensure!(devices.len() == 5, "{} devices", devices.len());
    }
    ensure!(
        sim.state().stats().logins == 1,
        "logins: {}",
        sim.state().stats().logins
    );
    setup.close().await;
    db.drop_db().await;
    Ok(())
}
