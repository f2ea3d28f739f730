//! The four workload roles against a real PostgreSQL: each connects with its
//! generated password and can do its job — through the workloads' own store
//! code where it exists — and nothing else; the planner converges and then
//! plans nothing; tampering is undone; rotation, conflicts, injection
//! attempts and dropping. The operator's login is a CREATEROLE
//! non-superuser (see db_support).

mod db_support;

use db_support::{TestDb, allowed, denied, random};
use fleet_operator::db::privileges::{MATRIX, OPERATOR_ONLY, ObjectType};
use fleet_operator::db::roles::RoleOverrides;
use fleet_operator::db::{
    self, ApplyReport, DesiredRoles, PipelineRef, RoleFailure, SecretString, SqlClass, WorkloadRole,
};
use fleet_workloads::ingest::log::{self as ingest_log, LogRow};
use fleet_workloads::push::{Alarm, Event, Heartbeat, PushKind};
use fleet_workloads::store::push::PgPushStore;
use fleet_workloads::store::token::PgTokenStore;
use fleet_workloads::store::{connect as wconnect, positions as wpositions};
use fleet_workloads::tracksolid::token::{CachedToken, TokenStore};
use fleet_workloads::webhook::store::{Batch, BatchItem, PushStore};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use sqlx::{Connection, PgConnection, PgPool};
use std::collections::BTreeMap;

type Passwords = BTreeMap<WorkloadRole, SecretString>;

fn passwords() -> Passwords {
    WorkloadRole::ALL
        .iter()
        .map(|r| (*r, db::password::generate()))
        .collect()
}

struct Pipeline {
    owner: PipelineRef,
    schema: String,
    desired: DesiredRoles,
    passwords: Passwords,
}

impl Pipeline {
    fn role(&self, r: WorkloadRole) -> String {
        db::role_name(&self.desired.prefix, r)
    }
}

/// Migrate `schema` for a new pipeline and reconcile its roles.
async fn pipeline(t: &TestDb, conn: &mut PgConnection, schema: &str) -> (Pipeline, ApplyReport) {
    let owner = t.pipeline();
    db::migrate(conn, schema, &owner).await.expect("migrate");
    let passwords = passwords();
    let desired = DesiredRoles::new(&owner, schema, &passwords, &BTreeMap::new()).expect("desired");
    let report = db::reconcile_roles(conn, &desired)
        .await
        .expect("reconcile");
    (
        Pipeline {
            owner,
            schema: schema.to_owned(),
            desired,
            passwords,
        },
        report,
    )
}

async fn login(t: &TestDb, p: &Pipeline, r: WorkloadRole) -> PgConnection {
    t.connect_as(&p.role(r), &p.passwords[&r])
        .await
        .unwrap_or_else(|e| panic!("login as {}: {e}", p.role(r)))
}

/// A pool built by the workloads' own connection code (search_path, session
/// settings), logged in as the role.
async fn workload_pool(t: &TestDb, p: &Pipeline, r: WorkloadRole) -> PgPool {
    let url = t.url_for(&p.role(r), &p.passwords[&r]);
    let options = wconnect::from_url(&url, &p.schema).expect("options");
    wconnect::pool(options, 2).await.expect("workload pool")
}

async fn plan_now(conn: &mut PgConnection, d: &DesiredRoles) -> Vec<db::Action> {
    let observed = db::observe(conn, d).await.expect("observe");
    db::plan(d, &observed)
}

#[tokio::test]
async fn roles_are_created_ready_and_then_steady() {
    let t = TestDb::new().await;
    let mut conn = t.operator().await;
    let (p, report) = pipeline(&t, &mut conn, "tracksolid").await;
    assert!(report.is_ready(), "{report:?}");
    assert!(report.applied > 0);
    assert_eq!(report.roles.len(), 4);
    let statuses = report.role_statuses();
    assert!(
        statuses
            .iter()
            .all(|s| s.state == "Ready" && s.message.is_none())
    );
    assert_eq!(statuses[0].name, p.role(WorkloadRole::Ingest));

    // Steady state: nothing planned, nothing applied.
    assert_eq!(plan_now(&mut conn, &p.desired).await, vec![]);
    let again = db::reconcile_roles(&mut conn, &p.desired)
        .await
        .expect("again");
    assert_eq!(again.applied, 0);
    assert!(again.is_ready());

    // The roles are what docs/privileges.md says.
    type RoleRow = (String, bool, bool, bool, bool, i32, Option<String>);
    let attrs: Vec<RoleRow> = sqlx::query_as(
        "SELECT rolname::text, rolcanlogin, rolinherit, rolsuper OR rolcreatedb OR rolcreaterole
                OR rolreplication OR rolbypassrls, rolvaliduntil IS NULL, rolconnlimit,
                shobj_description(oid, 'pg_authid')
         FROM pg_roles WHERE rolname = ANY($1) ORDER BY 1",
    )
    .bind(p.desired.role_names())
    .fetch_all(&mut conn)
    .await
    .expect("roles");
    assert_eq!(attrs.len(), 4);
    for (name, login, inherit, powerful, no_expiry, _limit, comment) in &attrs {
        assert!(*login && !*inherit && !*powerful && *no_expiry, "{name}");
        assert_eq!(comment.as_deref(), Some(p.owner.role_marker().as_str()));
    }
    let mut webhook = login(&t, &p, WorkloadRole::Webhook).await;
    for (setting, value) in [
        ("statement_timeout", "10s"),
        ("lock_timeout", "5s"),
        ("idle_in_transaction_session_timeout", "10s"),
        ("search_path", "tracksolid"),
    ] {
        let v: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SHOW {setting}")))
            .fetch_one(&mut webhook)
            .await
            .expect("show");
        assert_eq!(v, value, "{setting}");
    }
}

/// Every table, view, sequence and function the migrations create has a row
/// in the privilege matrix (or is the operator's own bookkeeping).
#[tokio::test]
async fn every_schema_object_has_a_privilege_decision() {
    let t = TestDb::new().await;
    let p = t.pipeline();
    let mut conn = t.operator().await;
    db::migrate(&mut conn, "tracksolid", &p)
        .await
        .expect("migrate");
    let objects: Vec<(String, String)> = sqlx::query_as(
        "SELECT relname::text, CASE relkind WHEN 'S' THEN 'sequence' ELSE 'relation' END
         FROM pg_class WHERE relnamespace = 'tracksolid'::regnamespace
           AND relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
         UNION ALL
         SELECT proname::text, 'function' FROM pg_proc WHERE pronamespace = 'tracksolid'::regnamespace",
    )
    .fetch_all(&mut conn)
    .await
    .expect("objects");
    assert!(objects.len() > 20);
    for (name, kind) in objects {
        let t = match kind.as_str() {
            "sequence" => ObjectType::Sequence,
            "function" => ObjectType::Function,
            _ => ObjectType::Relation,
        };
        let decided = MATRIX
            .iter()
            .any(|g| g.object == name && g.object_type == t)
            || OPERATOR_ONLY.contains(&name.as_str());
        assert!(
            decided,
            "{kind} {name} has no row in operator/src/db/privileges.rs (and docs/privileges.md)"
        );
    }
}

/// Each role can do its job and nothing else.
#[tokio::test]
async fn each_role_does_its_job_and_nothing_else() {
    let t = TestDb::new().await;
    let mut conn = t.operator().await;
    let (p, report) = pipeline(&t, &mut conn, "tracksolid").await;
    assert!(report.is_ready(), "{report:?}");
    // PostgreSQL keeps microseconds.
    let now = Timestamp::from_microsecond(Timestamp::now().as_microsecond()).expect("now");
    let t_minus = |h: i64| now - SignedDuration::from_hours(h);

    // ---- ingest: the workloads' token cache, positions writer, run log.
    let pool = workload_pool(&t, &p, WorkloadRole::Ingest).await;
    let tokens = PgTokenStore::new(pool.clone());
    let token = CachedToken {
        access_token: "tok".into(),
        refresh_token: None,
        obtained_at: now,
        expires_at: now + SignedDuration::from_hours(2),
    };
    tokens.put("hk", &token).await.expect("token put");
    assert_eq!(tokens.get("hk").await.expect("token get"), Some(token));
    tokens
        .invalidate("hk", "tok")
        .await
        .expect("token invalidate");
    let mut tx = pool.begin().await.expect("tx");
    let fix = |imei: &str, at: Timestamp| json!({"imei": imei, "gps_time": at.to_string(), "lat": -1.28, "lng": 36.82});
    let n = wpositions::insert(&mut tx, vec![fix("860000000000001", t_minus(2))], "poll")
        .await
        .expect("ingest positions");
    tx.commit().await.expect("commit");
    assert_eq!(n, 1);
    ingest_log::write(
        &pool,
        &LogRow {
            endpoint: "positions",
            target: "hk",
            started_at: now,
            finished_at: now,
            inserted: 1,
            rejected: 0,
            error: None,
        },
    )
    .await
    .expect("ingestion_log");
    pool.close().await;
    let mut ingest = login(&t, &p, WorkloadRole::Ingest).await;
    for sql in [
        "INSERT INTO devices (imei, target) VALUES ('860000000000001', 'hk')
         ON CONFLICT (imei) DO UPDATE SET last_seen = now(), enabled = true",
        "UPDATE devices SET enabled = false, disabled_at = now() WHERE imei <> ALL('{}')",
        "INSERT INTO trips (imei, start_time, end_time, distance_m) VALUES ('1', now() - interval '1 hour', now(), 10)
         ON CONFLICT (imei, start_time) DO UPDATE SET end_address = 'Nairobi'",
        "INSERT INTO parking (imei, kind, start_time) VALUES ('1', 'parking', now()) ON CONFLICT DO NOTHING",
        "INSERT INTO alarms (imei, alarm_type, alarm_time, source) VALUES ('1', '1', now(), 'poll') ON CONFLICT DO NOTHING",
        "INSERT INTO geocode_cache (lat_e5, lng_e5, address) VALUES (1, 1, 'x')
         ON CONFLICT (lat_e5, lng_e5) DO UPDATE SET address = excluded.address",
        // The windowed jobs catch up from their last successful run.
        "SELECT max(started_at) FROM ingestion_log WHERE endpoint = 'track' AND status = 'ok'",
    ] {
        allowed(&mut ingest, sql).await;
    }
    for sql in [
        "DELETE FROM positions",
        "TRUNCATE positions",
        "SELECT * FROM push_events",
        "INSERT INTO pipeline_endpoints (endpoint, max_age_seconds) VALUES ('x', 60)",
        "DELETE FROM ingestion_log",
        "SELECT * FROM fleetops_claim",
        "SELECT * FROM fleetops_role_state",
        "SELECT * FROM purge_time_series('positions', now() - interval '400 days')",
        "CREATE TABLE x (id int)",
        "CREATE TABLE tracksolid.x (id int)",
        "CREATE VIEW v AS SELECT 1",
    ] {
        denied(&mut ingest, sql).await;
    }

    // ---- webhook: the workloads' push store, and the positions writer.
    let pool = workload_pool(&t, &p, WorkloadRole::Webhook).await;
    let store = PgPushStore::new(pool.clone());
    let alarm = Alarm {
        imei: "860000000000001".into(),
        alarm_type: "overSpeed".into(),
        alarm_time: t_minus(1),
        alarm_name: Some("Overspeed".into()),
        lat: Some(-1.28),
        lng: Some(36.82),
        speed: Some(95.0),
        msg_class: Some(0),
    };
    let batch = Batch {
        kind: PushKind::Alarm,
        received_at: now,
        items: vec![BatchItem {
            raw: json!({"imei": "860000000000001", "alertType": "overSpeed"}),
            imei: Some("860000000000001".into()),
            event: Some(Event::Alarm(alarm)),
            rejected: None,
        }],
    };
    let stored = store.store(&batch).await.expect("push store");
    assert_eq!((stored.raw, stored.alarms), (1, 1));
    let again = store.store(&batch).await.expect("push store again");
    assert_eq!((again.raw, again.alarms), (0, 0), "idempotent");
    let hb = Heartbeat {
        imei: "860000000000001".into(),
        gate_time: t_minus(1),
        power_level: Some(5),
        gsm_sign: None,
        acc: None,
        oil_ele: None,
        gps_pos: None,
        power_status: None,
        fortify: None,
    };
    let hb_batch = Batch {
        kind: PushKind::Heartbeat,
        received_at: now,
        items: vec![BatchItem {
            raw: json!({"imei": "860000000000001", "powerLevel": 5}),
            imei: Some("860000000000001".into()),
            event: Some(Event::Heartbeat(hb)),
            rejected: None,
        }],
    };
    assert_eq!(
        store.store(&hb_batch).await.expect("heartbeat").heartbeats,
        1
    );
    let mut tx = pool.begin().await.expect("tx");
    // Newer, then older: latest_positions keeps the newer one.
    wpositions::insert(&mut tx, vec![fix("860000000000001", t_minus(1))], "push")
        .await
        .expect("webhook positions");
    wpositions::insert(&mut tx, vec![fix("860000000000001", t_minus(5))], "push")
        .await
        .expect("older position");
    tx.commit().await.expect("commit");
    store.ingest_health().await.expect("/health/ingest");
    pool.close().await;
    let mut webhook = login(&t, &p, WorkloadRole::Webhook).await;
    let latest: String = sqlx::query_scalar(
        "SELECT to_char(gps_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') FROM latest_positions",
    )
    .fetch_one(&mut webhook)
    .await
    .expect("latest");
    assert_eq!(latest, t_minus(1).strftime("%Y-%m-%dT%H:%M:%S").to_string());
    for sql in [
        "DELETE FROM positions",
        "DELETE FROM push_events",
        "DELETE FROM latest_positions",
        "SELECT imei FROM devices",
        "SELECT * FROM positions",
        "SELECT lat, lng FROM positions",
        "SELECT payload FROM push_events",
        "SELECT * FROM api_token",
        "UPDATE devices SET enabled = false",
        "SELECT * FROM refresh_reporting()",
        "CREATE TABLE x (id int)",
        "CREATE TABLE tracksolid.x (id int)",
    ] {
        denied(&mut webhook, sql).await;
    }

    // ---- housekeeping: retention and refresh.
    let mut hk = login(&t, &p, WorkloadRole::Housekeeping).await;
    for sql in [
        "SELECT * FROM purge_time_series('positions', now() - interval '400 days')",
        "SELECT * FROM purge_time_series('alarms', now() - interval '400 days')",
        "SELECT * FROM refresh_reporting()",
        "DELETE FROM ingestion_log WHERE finished_at < now() - interval '90 days'",
        "DELETE FROM refresh_log WHERE finished_at < now() - interval '180 days'",
        "DELETE FROM push_events WHERE received_at < now() - interval '90 days'",
        "INSERT INTO ingestion_log (endpoint, target, started_at, finished_at, rows_inserted, status)
         VALUES ('housekeeping', NULL, now(), now(), 0, 'ok')",
    ] {
        allowed(&mut hk, sql).await;
    }
    for sql in [
        "DELETE FROM positions",
        "INSERT INTO positions (imei, gps_time, lat, lng, source) VALUES ('1', now(), 0, 0, 'x')",
        "REFRESH MATERIALIZED VIEW mv_trips_per_day",
        "SELECT * FROM api_token",
        "SELECT * FROM devices",
        "CREATE TABLE x (id int)",
    ] {
        denied(&mut hk, sql).await;
    }

    // ---- reader: SELECT on reporting objects only.
    let mut reader = login(&t, &p, WorkloadRole::Reader).await;
    for sql in [
        "SELECT * FROM v_latest_positions",
        "SELECT * FROM mv_trips_per_day",
        "SELECT * FROM v_ingest_health",
        "SELECT * FROM positions",
        "SELECT * FROM devices",
        "SELECT * FROM ingestion_log",
    ] {
        allowed(&mut reader, sql).await;
    }
    for sql in [
        "INSERT INTO positions (imei, gps_time, lat, lng, source) VALUES ('1', now(), 0, 0, 'x')",
        "UPDATE devices SET enabled = false",
        "DELETE FROM ingestion_log",
        "SELECT * FROM api_token",
        "SELECT * FROM push_events",
        "SELECT * FROM geocode_cache",
        "SELECT * FROM refresh_reporting()",
        "CREATE TABLE x (id int)",
        "CREATE TABLE tracksolid.x (id int)",
    ] {
        denied(&mut reader, sql).await;
    }
}

/// A role cannot read another pipeline's schema.
#[tokio::test]
async fn a_role_cannot_read_another_pipelines_schema() {
    let t = TestDb::new().await;
    let mut conn = t.operator().await;
    let (a, ra) = pipeline(&t, &mut conn, "fleet_a").await;
    let (b, rb) = pipeline(&t, &mut conn, "fleet_b").await;
    assert!(ra.is_ready() && rb.is_ready());
    for r in WorkloadRole::ALL {
        let mut c = login(&t, &a, r).await;
        denied(&mut c, "SELECT * FROM fleet_b.positions").await;
        denied(&mut c, "SELECT * FROM fleet_b.v_ingest_health").await;
        let mut c = login(&t, &b, r).await;
        denied(&mut c, "SELECT * FROM fleet_a.positions").await;
    }
    let mut reader = login(&t, &b, WorkloadRole::Reader).await;
    allowed(&mut reader, "SELECT * FROM fleet_b.positions").await;
}

/// Manual grants (and other drift) are undone by the next plan + apply.
#[tokio::test]
async fn manual_extra_grants_are_revoked() {
    let t = TestDb::new().await;
    let mut conn = t.operator().await;
    let (p, _) = pipeline(&t, &mut conn, "tracksolid").await;
    let webhook = p.role(WorkloadRole::Webhook);
    let reader = p.role(WorkloadRole::Reader);
    let ingest = p.role(WorkloadRole::Ingest);
    let mut su = t.superuser().await;
    for sql in [
        format!("GRANT SELECT, DELETE, TRUNCATE ON tracksolid.positions TO \"{webhook}\""),
        format!("GRANT SELECT ON tracksolid.devices TO \"{webhook}\""),
        format!("GRANT CREATE ON SCHEMA tracksolid TO \"{reader}\""),
        format!("GRANT SELECT (access_token) ON tracksolid.api_token TO \"{reader}\""),
        format!("GRANT pg_read_all_data TO \"{reader}\""),
        "GRANT SELECT ON tracksolid.trips TO PUBLIC".to_owned(),
        "GRANT USAGE ON SCHEMA tracksolid TO PUBLIC".to_owned(),
        "GRANT EXECUTE ON FUNCTION tracksolid.refresh_reporting() TO PUBLIC".to_owned(),
        format!(
            "ALTER DEFAULT PRIVILEGES FOR ROLE \"{}\" IN SCHEMA tracksolid GRANT SELECT ON TABLES TO \"{webhook}\"",
            t.admin_user
        ),
        format!("ALTER ROLE \"{reader}\" SET work_mem = '1GB'"),
        format!("ALTER ROLE \"{ingest}\" CONNECTION LIMIT 1 CREATEDB"),
        format!("GRANT CREATE ON DATABASE \"{}\" TO \"{ingest}\"", t.name),
    ] {
        allowed(&mut su, &sql).await;
    }
    // A grant option, passed on by the role that got it.
    allowed(
        &mut su,
        &format!("GRANT INSERT ON tracksolid.trips TO \"{reader}\" WITH GRANT OPTION"),
    )
    .await;
    let mut r = login(&t, &p, WorkloadRole::Reader).await;
    allowed(&mut r, &format!("GRANT INSERT ON trips TO \"{webhook}\"")).await;
    // The tampering works...
    let mut w = login(&t, &p, WorkloadRole::Webhook).await;
    allowed(
        &mut w,
        "INSERT INTO trips (imei, start_time, end_time) VALUES ('1', now(), now())",
    )
    .await;
    allowed(&mut w, "DELETE FROM positions").await;
    let planned = plan_now(&mut conn, &p.desired).await;
    assert!(planned.len() >= 12, "{planned:#?}");

    // ...until the next reconcile.
    let report = db::reconcile_roles(&mut conn, &p.desired)
        .await
        .expect("reconcile");
    assert!(report.is_ready(), "{report:?}");
    assert_eq!(plan_now(&mut conn, &p.desired).await, vec![]);
    let mut w = login(&t, &p, WorkloadRole::Webhook).await;
    denied(&mut w, "DELETE FROM positions").await;
    denied(&mut w, "SELECT lat FROM positions").await;
    allowed(&mut w, "SELECT imei, gps_time FROM positions").await;
    denied(&mut w, "SELECT imei FROM devices").await;
    denied(
        &mut w,
        "INSERT INTO trips (imei, start_time, end_time) VALUES ('2', now(), now())",
    )
    .await;
    let mut r = login(&t, &p, WorkloadRole::Reader).await;
    denied(
        &mut r,
        "INSERT INTO trips (imei, start_time, end_time) VALUES ('3', now(), now())",
    )
    .await;
    denied(&mut r, "CREATE TABLE x (id int)").await;
    denied(&mut r, "SELECT access_token FROM api_token").await;
    let member: bool = sqlx::query_scalar("SELECT pg_has_role($1, 'pg_read_all_data', 'MEMBER')")
        .bind(&reader)
        .fetch_one(&mut conn)
        .await
        .expect("membership");
    assert!(!member);
    let (limit, createdb): (i32, bool) =
        sqlx::query_as("SELECT rolconnlimit, rolcreatedb FROM pg_roles WHERE rolname = $1")
            .bind(&ingest)
            .fetch_one(&mut conn)
            .await
            .expect("ingest");
    assert_eq!((limit, createdb), (20, false));
    let public_usage: bool =
        sqlx::query_scalar("SELECT has_schema_privilege('public', 'tracksolid', 'USAGE')")
            .fetch_one(&mut conn)
            .await
            .expect("public");
    assert!(!public_usage);
}

/// Rotation: the new password works, the old one no longer does.
#[tokio::test]
async fn password_rotation() {
    let t = TestDb::new().await;
    let mut conn = t.operator().await;
    let (p, _) = pipeline(&t, &mut conn, "tracksolid").await;
    let webhook = p.role(WorkloadRole::Webhook);
    let old = p.passwords[&WorkloadRole::Webhook].clone();
    t.connect_as(&webhook, &old)
        .await
        .expect("old password works");

    let mut rotated = p.passwords.clone();
    let new = db::password::generate();
    rotated.insert(WorkloadRole::Webhook, new.clone());
    let desired =
        DesiredRoles::new(&p.owner, &p.schema, &rotated, &BTreeMap::new()).expect("desired");
    let planned = plan_now(&mut conn, &desired).await;
    assert_eq!(
        planned.iter().map(|a| a.label()).collect::<Vec<_>>(),
        ["set password", "record password fingerprint"]
    );
    let report = db::reconcile_roles(&mut conn, &desired)
        .await
        .expect("rotate");
    assert!(report.is_ready());
    assert_eq!(report.applied, 2);

    let mut c = t
        .connect_as(&webhook, &new)
        .await
        .expect("new password works");
    c.ping().await.expect("ping");
    let err = t
        .connect_as(&webhook, &old)
        .await
        .expect_err("old password refused");
    assert_eq!(err.reason(), "AuthFailed");
    // Stored as SCRAM, never as plain text.
    let mut su = t.superuser().await;
    let stored: String = sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
        .bind(&webhook)
        .fetch_one(&mut su)
        .await
        .expect("rolpassword");
    assert!(stored.starts_with("SCRAM-SHA-256$4096:"));
    assert!(!stored.contains(new.expose()));
    // Steady again.
    assert_eq!(plan_now(&mut conn, &desired).await, vec![]);
}

/// Names and values that try to escape their quotes change nothing else.
#[tokio::test]
async fn injection_attempts_through_names_and_settings_have_no_effect() {
    let t = TestDb::new().await;
    let mut conn = t.operator().await;
    let owner = PipelineRef::new(
        r#"ns"; DROP ROLE postgres; --"#,
        &format!("x'y-{}", random(6)),
        "uid",
    );
    t.track(&owner);
    let schema = r#"s"; DROP ROLE postgres; --"#;
    db::migrate(&mut conn, schema, &owner)
        .await
        .expect("migrate");
    let pw = passwords();
    let desired = DesiredRoles::new(&owner, schema, &pw, &BTreeMap::new()).expect("desired");
    for name in desired.role_names() {
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        );
    }
    let report = db::reconcile_roles(&mut conn, &desired)
        .await
        .expect("reconcile");
    assert!(report.is_ready(), "{report:?}");
    assert_eq!(plan_now(&mut conn, &desired).await, vec![]);
    let webhook = db::role_name(&desired.prefix, WorkloadRole::Webhook);
    let mut w = t
        .connect_as(&webhook, &pw[&WorkloadRole::Webhook])
        .await
        .expect("login");
    // search_path names the strange schema exactly: unqualified names work.
    allowed(
        &mut w,
        "INSERT INTO positions (imei, gps_time, lat, lng, source) VALUES ('1', now(), 1, 1, 'push')",
    )
    .await;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postgres')")
            .fetch_one(&mut conn)
            .await
            .expect("postgres");
    assert!(exists);

    // A setting value trying to break out: one (invalid) literal, refused
    // by the server, reported per role with its SQLSTATE and no SQL text;
    // the role's other changes are rolled back.
    let mut o = BTreeMap::new();
    o.insert(
        WorkloadRole::Reader,
        RoleOverrides {
            connection_limit: Some(3),
            settings: BTreeMap::from([(
                "statement_timeout".to_owned(),
                "1s'; DROP ROLE postgres; --".to_owned(),
            )]),
        },
    );
    let bad = DesiredRoles::new(&owner, schema, &pw, &o).expect("desired");
    let report = db::reconcile_roles(&mut conn, &bad)
        .await
        .expect("reconcile");
    assert!(!report.is_ready());
    let errors: Vec<_> = report.errors().collect();
    assert_eq!(errors.len(), 1);
    let e = errors[0];
    assert_eq!(e.role, db::role_name(&desired.prefix, WorkloadRole::Reader));
    assert_eq!(e.sqlstate(), Some("22023"));
    assert!(!e.message().contains("ALTER ROLE"), "{}", e.message());
    let limit: i32 = sqlx::query_scalar("SELECT rolconnlimit FROM pg_roles WHERE rolname = $1")
        .bind(&e.role)
        .fetch_one(&mut conn)
        .await
        .expect("limit");
    assert_eq!(limit, 10, "the failed role's transaction was rolled back");
    let statuses = report.role_statuses();
    assert_eq!(statuses.iter().filter(|s| s.state == "Failed").count(), 1);
}

/// A role with the pipeline's name that it did not create is left alone and
/// reported; the other roles are reconciled.
#[tokio::test]
async fn a_foreign_role_is_not_taken_over() {
    let t = TestDb::new().await;
    let mut conn = t.operator().await;
    let owner = t.pipeline();
    db::migrate(&mut conn, "tracksolid", &owner)
        .await
        .expect("migrate");
    let desired =
        DesiredRoles::new(&owner, "tracksolid", &passwords(), &BTreeMap::new()).expect("desired");
    let reader = db::role_name(&desired.prefix, WorkloadRole::Reader);
    let mut su = t.superuser().await;
    allowed(
        &mut su,
        &format!("CREATE ROLE \"{reader}\" LOGIN CONNECTION LIMIT 7"),
    )
    .await;

    let report = db::reconcile_roles(&mut conn, &desired)
        .await
        .expect("reconcile");
    let statuses = report.role_statuses();
    assert_eq!(
        statuses
            .iter()
            .map(|s| s.state.as_str())
            .collect::<Vec<_>>(),
        ["Ready", "Ready", "Ready", "Conflict"]
    );
    let e = report.errors().next().expect("conflict");
    assert!(matches!(
        e.failure,
        RoleFailure::OwnedElsewhere { found: None }
    ));
    assert!(e.requeue_after().as_secs() >= 300);
    let (limit, usage): (i32, bool) = sqlx::query_as(
        "SELECT rolconnlimit, has_schema_privilege(rolname, 'tracksolid', 'USAGE')
         FROM pg_roles WHERE rolname = $1",
    )
    .bind(&reader)
    .fetch_one(&mut conn)
    .await
    .expect("reader");
    assert_eq!((limit, usage), (7, false));
    // Nor is it dropped.
    let dropped = db::drop_roles(&mut conn, &owner, "tracksolid")
        .await
        .expect("drop");
    assert_eq!(dropped.dropped.len(), 3);
    assert_eq!(dropped.errors.len(), 1);
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(&reader)
            .fetch_one(&mut conn)
            .await
            .expect("exists");
    assert!(exists);
}

/// A login without CREATEROLE: every role fails with 42501, classified as
/// insufficient privilege (no hot-loop retry), message without SQL text.
#[tokio::test]
async fn insufficient_privilege_is_classified_and_reported_per_role() {
    let t = TestDb::new().await;
    let low = format!("fp_test_low_{}", random(8));
    t.track_role(&low);
    let low_pw = db::password::generate();
    let mut su = t.superuser().await;
    allowed(
        &mut su,
        &format!("CREATE ROLE \"{low}\" LOGIN PASSWORD '{}'", low_pw.expose()),
    )
    .await;
    allowed(
        &mut su,
        &format!("GRANT CREATE ON DATABASE \"{}\" TO \"{low}\"", t.name),
    )
    .await;
    let mut conn = t.connect_as(&low, &low_pw).await.expect("low login");
    let owner = t.pipeline();
    db::migrate(&mut conn, "lowpriv", &owner)
        .await
        .expect("migrate");
    let desired =
        DesiredRoles::new(&owner, "lowpriv", &passwords(), &BTreeMap::new()).expect("desired");
    let report = db::reconcile_roles(&mut conn, &desired)
        .await
        .expect("reconcile");
    assert_eq!(report.errors().count(), 4);
    for e in report.errors() {
        assert_eq!(e.sqlstate(), Some("42501"));
        assert_eq!(e.step, "create role");
        match &e.failure {
            RoleFailure::Sql(s) => assert_eq!(s.class, SqlClass::InsufficientPrivilege),
            other => panic!("{other:?}"),
        }
        assert!(e.requeue_after().as_secs() >= 300);
        let m = e.message();
        assert!(m.starts_with("create role: SQLSTATE 42501"), "{m}");
        assert!(!m.contains("NOINHERIT") && !m.contains('"'), "{m}");
    }
    assert_eq!(report.requeue_after().map(|d| d.as_secs()), Some(300));
}

/// Dropping: the roles and their sessions go, the data stays; dropping again
/// finds nothing. Works for the non-superuser operator login.
#[tokio::test]
async fn drop_roles_removes_the_roles_and_keeps_the_data() {
    let t = TestDb::new().await;
    let mut conn = t.operator().await;
    let (p, _) = pipeline(&t, &mut conn, "tracksolid").await;
    let mut w = login(&t, &p, WorkloadRole::Webhook).await;
    allowed(
        &mut w,
        "INSERT INTO positions (imei, gps_time, lat, lng, source) VALUES ('1', now(), 1, 1, 'push')",
    )
    .await;

    let report = db::drop_roles(&mut conn, &p.owner, "tracksolid")
        .await
        .expect("drop");
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.dropped, p.desired.role_names());
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_roles WHERE rolname = ANY($1)")
        .bind(p.desired.role_names())
        .fetch_one(&mut conn)
        .await
        .expect("roles");
    assert_eq!(left, 0);
    // The webhook's session was ended.
    assert!(w.ping().await.is_err());
    let state: i64 = sqlx::query_scalar("SELECT count(*) FROM tracksolid.fleetops_role_state")
        .fetch_one(&mut conn)
        .await
        .expect("state");
    assert_eq!(state, 0);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM tracksolid.positions")
        .fetch_one(&mut conn)
        .await
        .expect("data");
    assert_eq!(rows, 1);
    let err = t
        .connect_as(
            &p.role(WorkloadRole::Reader),
            &p.passwords[&WorkloadRole::Reader],
        )
        .await
        .expect_err("gone");
    assert_eq!(err.reason(), "AuthFailed");

    let again = db::drop_roles(&mut conn, &p.owner, "tracksolid")
        .await
        .expect("again");
    assert_eq!(again.absent.len(), 4);
    assert!(again.dropped.is_empty() && again.is_complete());

    // Re-creating them works (e.g. the pipeline re-created).
    let report = db::reconcile_roles(&mut conn, &p.desired)
        .await
        .expect("recreate");
    assert!(report.is_ready());
    login(&t, &p, WorkloadRole::Reader).await;
}

/// reconcile_roles before the schema exists: roles are created, grants wait
/// for the schema (no error), and a later reconcile adds them.
#[tokio::test]
async fn roles_before_the_schema_exists() {
    let t = TestDb::new().await;
    let mut conn = t.operator().await;
    let owner = t.pipeline();
    let pw = passwords();
    let desired = DesiredRoles::new(&owner, "later", &pw, &BTreeMap::new()).expect("desired");
    let report = db::reconcile_roles(&mut conn, &desired)
        .await
        .expect("reconcile");
    assert!(report.is_ready(), "{report:?}");
    db::migrate(&mut conn, "later", &owner)
        .await
        .expect("migrate");
    // Passwords were set before the fingerprint table existed: set again once.
    let report = db::reconcile_roles(&mut conn, &desired)
        .await
        .expect("reconcile");
    assert!(report.is_ready());
    assert_eq!(plan_now(&mut conn, &desired).await, vec![]);
    let mut r = t
        .connect_as(
            &db::role_name(&desired.prefix, WorkloadRole::Reader),
            &pw[&WorkloadRole::Reader],
        )
        .await
        .expect("login");
    allowed(&mut r, "SELECT * FROM v_latest_positions").await;
}
