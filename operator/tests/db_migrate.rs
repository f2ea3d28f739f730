//! Migrations and schema claims against a real PostgreSQL, as the operator's
//! non-superuser login (see db_support).

mod db_support;

use db_support::{TestDb, random};
use fleet_operator::db::migrate::latest_version;
use fleet_operator::db::{self, DbError, PipelineRef, SecretString};
use sqlx::{Connection, PgConnection};
use std::time::Duration;

async fn scalar_i64(conn: &mut PgConnection, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn scalar_bool(conn: &mut PgConnection, sql: &str) -> bool {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Apply, report the version, and find everything in the pipeline schema;
/// applying again changes nothing.
#[tokio::test]
async fn migrations_apply_and_reapply_is_a_noop() {
    let t = TestDb::new().await;
    let p = t.pipeline();
    let mut conn = t.operator().await;

    let first = db::migrate(&mut conn, "tracksolid", &p)
        .await
        .expect("migrate");
    assert_eq!(first.version, latest_version());
    assert_eq!(first.applied.len(), db::migrate::MIGRATOR.iter().count());
    assert_eq!(first.adopted_from_uid, None);

    // Everything landed in the pipeline schema, sqlx's table included.
    for table in [
        "devices",
        "positions",
        "latest_positions",
        "alarms",
        "heartbeats",
        "trips",
        "parking",
        "api_token",
        "geocode_cache",
        "ingestion_log",
        "refresh_log",
        "push_events",
        "pipeline_endpoints",
        "v_ingest_health",
        "v_latest_positions",
        "mv_trips_per_day",
        "_sqlx_migrations",
        "fleetops_claim",
        "fleetops_role_state",
    ] {
        let sql = format!("SELECT to_regclass('tracksolid.{table}') IS NOT NULL");
        assert!(scalar_bool(&mut conn, &sql).await, "{table} missing");
    }
    assert!(
        !scalar_bool(
            &mut conn,
            "SELECT to_regclass('public._sqlx_migrations') IS NOT NULL"
        )
        .await
    );
    // The connection's search_path is restored.
    let path: String = sqlx::query_scalar("SELECT current_setting('search_path')")
        .fetch_one(&mut conn)
        .await
        .expect("search_path");
    assert_eq!(path, "\"$user\", public");

    // latest_positions never moves backwards (the upsert's WHERE on time).
    sqlx::raw_sql(
        "SET search_path = tracksolid;
         INSERT INTO latest_positions AS lp (imei, gps_time, lat, lng, source)
         VALUES ('1', '2026-01-02T00:00:00Z', 1, 1, 'push')
         ON CONFLICT (imei) DO UPDATE SET gps_time = excluded.gps_time
         WHERE lp.gps_time < excluded.gps_time;
         INSERT INTO latest_positions AS lp (imei, gps_time, lat, lng, source)
         VALUES ('1', '2026-01-01T00:00:00Z', 2, 2, 'push')
         ON CONFLICT (imei) DO UPDATE SET gps_time = excluded.gps_time, lat = excluded.lat
         WHERE lp.gps_time < excluded.gps_time;
         RESET search_path;",
    )
    .execute(&mut conn)
    .await
    .expect("upserts");
    assert_eq!(
        scalar_i64(
            &mut conn,
            "SELECT lat::bigint FROM tracksolid.latest_positions"
        )
        .await,
        1
    );
    // rows_inserted can never be negative.
    let neg = sqlx::raw_sql(
        "INSERT INTO tracksolid.ingestion_log (endpoint, started_at, finished_at, rows_inserted, status)
         VALUES ('positions', now(), now(), -1, 'ok')",
    )
    .execute(&mut conn)
    .await;
    assert_eq!(db_support::sqlstate(neg), "23514");

    let again = db::migrate(&mut conn, "tracksolid", &p)
        .await
        .expect("again");
    assert_eq!(again.version, first.version);
    assert!(again.applied.is_empty());
    let rows = scalar_i64(
        &mut conn,
        "SELECT count(*) FROM tracksolid._sqlx_migrations",
    )
    .await;
    assert_eq!(rows as usize, db::migrate::MIGRATOR.iter().count());
}

/// Two schemas in one database are independent pipelines, each with its own
/// objects and migration table.
#[tokio::test]
async fn each_schema_gets_its_own_objects() {
    let t = TestDb::new().await;
    let (a, b) = (t.pipeline(), t.pipeline());
    let mut conn = t.operator().await;
    db::migrate(&mut conn, "fleet_a", &a).await.expect("a");
    let rb = db::migrate(&mut conn, "fleet_b", &b).await.expect("b");
    assert_eq!(rb.applied.len(), db::migrate::MIGRATOR.iter().count());
    sqlx::raw_sql("INSERT INTO fleet_a.devices (imei) VALUES ('1')")
        .execute(&mut conn)
        .await
        .expect("insert");
    assert_eq!(
        scalar_i64(&mut conn, "SELECT count(*) FROM fleet_b.devices").await,
        0
    );
}

/// Concurrent migrate calls from two tasks serialize under the advisory
/// lock: both succeed, the migrations run once.
#[tokio::test]
async fn concurrent_migrations_serialize() {
    let t = TestDb::new().await;
    let p = t.pipeline();
    let mut c1 = t.operator().await;
    let mut c2 = t.operator().await;
    let p2 = p.clone();
    let h1 = tokio::spawn(async move { db::migrate(&mut c1, "tracksolid", &p).await });
    let h2 = tokio::spawn(async move { db::migrate(&mut c2, "tracksolid", &p2).await });
    let r1 = h1.await.expect("task 1").expect("migrate 1");
    let r2 = h2.await.expect("task 2").expect("migrate 2");
    assert_eq!(r1.version, r2.version);
    let total = db::migrate::MIGRATOR.iter().count();
    assert_eq!(
        r1.applied.len() + r2.applied.len(),
        total,
        "migrations ran once"
    );
    assert!(r1.applied.is_empty() || r2.applied.is_empty());
}

/// While another session holds the schema's lock, migrate waits — before it
/// creates or claims anything — and proceeds when the lock is released.
#[tokio::test]
async fn migrate_waits_for_the_schema_lock() {
    let t = TestDb::new().await;
    let p = t.pipeline();
    let mut holder = t.operator().await;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(db::schema_lock_key("tracksolid"))
        .execute(&mut holder)
        .await
        .expect("lock");
    let mut conn = t.operator().await;
    let task = tokio::spawn(async move { db::migrate(&mut conn, "tracksolid", &p).await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!task.is_finished(), "migrate did not wait for the lock");
    assert!(
        !scalar_bool(
            &mut holder,
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'tracksolid')"
        )
        .await,
        "nothing may be created while another session holds the lock"
    );
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(db::schema_lock_key("tracksolid"))
        .execute(&mut holder)
        .await
        .expect("unlock");
    let r = tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("migrate finished")
        .expect("task")
        .expect("migrate");
    assert_eq!(r.version, latest_version());
}

/// A second FleetPipeline claiming the same database and schema is refused
/// with SchemaClaimed and nothing changes; the owner carries on. The same
/// namespace/name with a new uid (re-created after Retain) adopts it.
#[tokio::test]
async fn second_claimant_is_refused_and_nothing_is_lost() {
    let t = TestDb::new().await;
    let owner = t.pipeline();
    let other = t.pipeline();
    let mut conn = t.operator().await;
    db::migrate(&mut conn, "tracksolid", &owner)
        .await
        .expect("owner");
    sqlx::raw_sql("INSERT INTO tracksolid.devices (imei) VALUES ('860000000000001')")
        .execute(&mut conn)
        .await
        .expect("data");
    let snapshot = "SELECT (SELECT count(*) FROM tracksolid.devices)
                         + (SELECT count(*) FROM tracksolid._sqlx_migrations) * 1000";
    let before = scalar_i64(&mut conn, snapshot).await;

    let mut conn2 = t.operator().await;
    let err = db::migrate(&mut conn2, "tracksolid", &other)
        .await
        .expect_err("second claimant");
    assert_eq!(
        err,
        DbError::SchemaClaimed {
            schema: "tracksolid".into(),
            owner: owner.to_string(),
        }
    );
    assert_eq!(err.reason(), "SchemaClaimed");
    assert!(!err.is_transient());
    assert_eq!(scalar_i64(&mut conn, snapshot).await, before);
    let claim = db::migrate::read_claim(&mut conn, "tracksolid")
        .await
        .expect("claim");
    assert_eq!(
        claim,
        Some((
            owner.namespace.clone(),
            owner.name.clone(),
            owner.uid.clone()
        ))
    );

    // The owner is unaffected.
    db::migrate(&mut conn, "tracksolid", &owner)
        .await
        .expect("owner again");

    // Re-created under the same namespace/name: adopted.
    let recreated = PipelineRef::new(&owner.namespace, &owner.name, "uid-new");
    let r = db::migrate(&mut conn, "tracksolid", &recreated)
        .await
        .expect("adopt");
    assert_eq!(r.adopted_from_uid, Some(owner.uid.clone()));
    assert_eq!(scalar_i64(&mut conn, snapshot).await, before);

    // Released (the owner deleted with Delete): another pipeline may claim.
    assert!(
        db::release_claim(&mut conn, "tracksolid", &recreated)
            .await
            .expect("release")
    );
    db::migrate(&mut conn2, "tracksolid", &other)
        .await
        .expect("new owner");
    assert_eq!(scalar_i64(&mut conn, snapshot).await, before, "data kept");
}

/// Two different pipelines racing for a new schema: exactly one wins.
#[tokio::test]
async fn racing_claimants_one_wins() {
    let t = TestDb::new().await;
    let (a, b) = (t.pipeline(), t.pipeline());
    let mut c1 = t.operator().await;
    let mut c2 = t.operator().await;
    let h1 = tokio::spawn(async move { db::migrate(&mut c1, "contested", &a).await });
    let h2 = tokio::spawn(async move { db::migrate(&mut c2, "contested", &b).await });
    let results = [h1.await.expect("task"), h2.await.expect("task")];
    let won = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(DbError::SchemaClaimed { .. })))
        .count();
    assert_eq!((won, refused), (1, 1), "{results:?}");
}

/// A schema that already holds someone else's objects is not taken over.
#[tokio::test]
async fn a_foreign_non_empty_schema_is_refused() {
    let t = TestDb::new().await;
    let p = t.pipeline();
    let mut conn = t.operator().await;
    sqlx::raw_sql("CREATE SCHEMA legacy; CREATE TABLE legacy.positions (id int)")
        .execute(&mut conn)
        .await
        .expect("legacy");
    let err = db::migrate(&mut conn, "legacy", &p)
        .await
        .expect_err("refused");
    assert_eq!(
        err,
        DbError::SchemaNotEmpty {
            schema: "legacy".into()
        }
    );
    assert!(
        !scalar_bool(
            &mut conn,
            "SELECT to_regclass('legacy.fleetops_claim') IS NOT NULL"
        )
        .await
    );
    assert!(
        !scalar_bool(
            &mut conn,
            "SELECT to_regclass('legacy._sqlx_migrations') IS NOT NULL"
        )
        .await
    );

    // An empty pre-created schema is fine.
    sqlx::raw_sql("CREATE SCHEMA precreated")
        .execute(&mut conn)
        .await
        .expect("schema");
    db::migrate(&mut conn, "precreated", &p)
        .await
        .expect("empty schema claimed");
}

/// A schema name that tries to break out of its quotes is just a strange
/// name: the objects land in exactly that schema and nothing else happens.
#[tokio::test]
async fn injection_through_the_schema_name_has_no_effect() {
    let t = TestDb::new().await;
    let p = t.pipeline();
    let mut conn = t.operator().await;
    let evil = r#"x"; DROP TABLE pg_catalog.pg_class; DROP ROLE postgres; --"#;
    let r = db::migrate(&mut conn, evil, &p).await.expect("migrate");
    assert_eq!(r.version, latest_version());
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND c.relname = 'positions'",
    )
    .bind(evil)
    .fetch_one(&mut conn)
    .await
    .expect("count");
    assert_eq!(n, 1);
    assert!(
        scalar_bool(
            &mut conn,
            "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postgres')"
        )
        .await
    );
    assert!(matches!(
        db::migrate(&mut conn, "", &p).await,
        Err(DbError::Invalid { .. })
    ));
}

/// The housekeeping functions: purge refuses a recent cut-off and deletes
/// old rows; the refresh records itself in refresh_log.
#[tokio::test]
async fn housekeeping_functions_work_on_plain_postgres() {
    let t = TestDb::new().await;
    let p = t.pipeline();
    let mut conn = t.operator().await;
    db::migrate(&mut conn, "tracksolid", &p)
        .await
        .expect("migrate");
    sqlx::raw_sql(
        "INSERT INTO tracksolid.positions (imei, gps_time, lat, lng, source) VALUES
           ('1', now() - interval '500 days', 1, 1, 'poll'),
           ('1', now() - interval '1 hour', 1, 1, 'poll');
         INSERT INTO tracksolid.trips (imei, start_time, end_time, distance_m) VALUES
           ('1', now() - interval '2 hours', now() - interval '1 hour', 1000)",
    )
    .execute(&mut conn)
    .await
    .expect("rows");
    let (chunks, rows): (i32, i64) = sqlx::query_as(
        "SELECT * FROM tracksolid.purge_time_series('positions', now() - interval '400 days')",
    )
    .fetch_one(&mut conn)
    .await
    .expect("purge");
    assert_eq!((chunks, rows), (0, 1));
    let recent = sqlx::query("SELECT * FROM tracksolid.purge_time_series('positions', now())")
        .execute(&mut conn)
        .await;
    assert_eq!(db_support::sqlstate(recent), "22023");
    let other = sqlx::query(
        "SELECT * FROM tracksolid.purge_time_series('devices', now() - interval '2 days')",
    )
    .execute(&mut conn)
    .await;
    assert_eq!(db_support::sqlstate(other), "22023");

    let (object, status): (String, String) =
        sqlx::query_as("SELECT object, status FROM tracksolid.refresh_reporting()")
            .fetch_one(&mut conn)
            .await
            .expect("refresh");
    assert_eq!(
        (object.as_str(), status.as_str()),
        ("mv_trips_per_day", "ok")
    );
    assert_eq!(
        scalar_i64(&mut conn, "SELECT trips FROM tracksolid.mv_trips_per_day").await,
        1
    );
    assert_eq!(
        scalar_i64(
            &mut conn,
            "SELECT count(*) FROM tracksolid.refresh_log WHERE status = 'ok'"
        )
        .await,
        1
    );
}

/// The TimescaleDB path: when the extension can be created in the test
/// server (installed and preloaded), positions, alarms and heartbeats become
/// hypertables and purge drops chunks. CI's PostgreSQL has no TimescaleDB,
/// so there this test only checks the plain path was taken.
#[tokio::test]
async fn timescaledb_hypertables_when_available() {
    let t = TestDb::new().await;
    let p = t.pipeline();
    let mut su = t.superuser().await;
    let available: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
            AND current_setting('shared_preload_libraries') LIKE '%timescaledb%'",
    )
    .fetch_one(&mut su)
    .await
    .expect("probe");
    if available {
        sqlx::raw_sql("CREATE EXTENSION IF NOT EXISTS timescaledb")
            .execute(&mut su)
            .await
            .expect("create extension");
    }
    let mut conn = t.operator().await;
    db::migrate(&mut conn, "tracksolid", &p)
        .await
        .expect("migrate");
    if !available {
        eprintln!(
            "timescaledb not installed in the test server: checked the plain-PostgreSQL path only"
        );
        assert!(
            !scalar_bool(
                &mut conn,
                "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')"
            )
            .await
        );
        return;
    }
    let hypertables: Vec<String> = sqlx::query_scalar(
        "SELECT hypertable_name::text FROM timescaledb_information.hypertables
         WHERE hypertable_schema = 'tracksolid' ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .expect("hypertables");
    assert_eq!(hypertables, ["alarms", "heartbeats", "positions"]);
    sqlx::raw_sql(
        "INSERT INTO tracksolid.positions (imei, gps_time, lat, lng, source) VALUES
           ('1', now() - interval '500 days', 1, 1, 'poll'), ('1', now(), 1, 1, 'poll')",
    )
    .execute(&mut conn)
    .await
    .expect("rows");
    let (chunks, _rows): (i32, i64) = sqlx::query_as(
        "SELECT * FROM tracksolid.purge_time_series('positions', now() - interval '400 days')",
    )
    .fetch_one(&mut conn)
    .await
    .expect("purge");
    assert!(chunks >= 1);
    assert_eq!(
        scalar_i64(&mut conn, "SELECT count(*) FROM tracksolid.positions").await,
        1
    );
}

/// Connection errors are classified for status: a wrong password is
/// AuthFailed, a closed port Unreachable; neither shows the password.
#[tokio::test]
async fn connection_errors_are_classified() {
    let t = TestDb::new().await;
    let wrong = SecretString::new(format!("wrong-{}", random(8)));
    let err = t
        .connect_as(&t.admin_user, &wrong)
        .await
        .expect_err("wrong password");
    assert_eq!(err.reason(), "AuthFailed");
    assert!(!err.to_string().contains(wrong.expose()));

    let mut closed = t.endpoint.clone();
    closed.port = 1;
    let err = db::connect(&closed, &t.admin_user, &t.admin_password)
        .await
        .expect_err("closed port");
    assert_eq!(err.reason(), "Unreachable");
    assert!(err.is_transient());

    let mut conn = t.operator().await;
    conn.ping().await.expect("ping");
}
