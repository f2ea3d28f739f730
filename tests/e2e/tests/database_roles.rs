//! The database roles, through the operator, on the real apiserver and
//! PostgreSQL: each workload logs in with its own generated Secret and can do
//! its job and nothing else; a manual extra GRANT is revoked on the next
//! reconcile; rotation (new password works, old one stops, the webhook pods
//! roll); deletion drops the roles unless `Retain`; a database that is down
//! during deletion keeps the finalizer with a condition saying why; a schema
//! name carrying SQL is refused at admission.

use anyhow::{Context as _, Result, bail, ensure};
use fleet_e2e::{TestEnv, condition, database, example_in, wait_deleted, wait_for, wait_ready};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use serde_json::{Value, json};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use std::time::Duration;

const PIPELINE: &str = "kenya-fleet";
const TIMEOUT: Duration = Duration::from_secs(60);

fn manifest(env: &TestEnv) -> Result<Value> {
    Ok(serde_yaml::from_str(&example_in(&env.namespace)?)?)
}

fn db_name(m: &Value) -> String {
    m["spec"]["database"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// `(username, password)` from a login Secret.
async fn login(env: &TestEnv, secret: &str) -> Result<(String, String)> {
    let s = env.api::<Secret>().get(secret).await?;
    ensure!(
        s.type_.as_deref() == Some("kubernetes.io/basic-auth"),
        "{secret}: type {:?}",
        s.type_
    );
    let data = s.data.unwrap_or_default();
    let get = |k: &str| -> Result<String> {
        let v = data
            .get(k)
            .with_context(|| format!("{secret} has no {k}"))?;
        Ok(String::from_utf8(v.0.clone())?)
    };
    Ok((get("username")?, get("password")?))
}

async fn connect_as(db: &str, user: &str, password: &str) -> Result<PgConnection, sqlx::Error> {
    let (host, port, _, _) = database().map_err(|e| sqlx::Error::Configuration(e.into()))?;
    PgConnectOptions::new()
        .host(&host)
        .port(port)
        .database(db)
        .username(user)
        .password(password)
        .disable_statement_logging()
        .connect()
        .await
}

async fn admin(db: &str) -> Result<PgConnection> {
    let (_, _, user, password) = database()?;
    Ok(connect_as(db, &user, &password).await?)
}

fn sqlstate(r: Result<sqlx::postgres::PgQueryResult, sqlx::Error>) -> Option<String> {
    match r {
        Ok(_) => None,
        Err(sqlx::Error::Database(e)) => e.code().map(|c| c.into_owned()),
        Err(e) => Some(format!("not a database error: {e}")),
    }
}

async fn exec(conn: &mut PgConnection, sql: &str) -> Option<String> {
    sqlstate(
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(conn)
            .await,
    )
}

async fn role_exists(db: &str, role: &str) -> Result<bool> {
    let mut conn = admin(db).await?;
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM pg_roles WHERE rolname = $1")
        .bind(role)
        .fetch_one(&mut conn)
        .await?;
    Ok(n == 1)
}

#[tokio::test]
async fn each_workload_logs_in_with_its_own_secret_and_can_do_only_its_job() -> Result<()> {
    let env = TestEnv::start("roles").await?;
    env.example_secrets().await?;
    let m = manifest(&env)?;
    let db = db_name(&m);
    ensure!(env.apply(&serde_json::to_string(&m)?)?.success);
    let fp = wait_ready(&env, PIPELINE).await?;
    let roles = fp.status.clone().unwrap_or_default().roles;
    ensure!(
        roles.len() == 4 && roles.iter().all(|r| r.state == "Ready"),
        "{roles:?}"
    );

    let (ingest_user, ingest_pw) = login(&env, "kenya-fleet-db-ingest").await?;
    let (webhook_user, webhook_pw) = login(&env, "kenya-fleet-db-webhook").await?;
    let (hk_user, hk_pw) = login(&env, "kenya-fleet-db-housekeeping").await?;
    let (reader_user, reader_pw) = login(&env, "kenya-fleet-db-reader").await?;
    let prefix = format!("{}_kenya_fleet", env.namespace.replace('-', "_"));
    ensure!(
        webhook_user == format!("{prefix}_webhook"),
        "{webhook_user}"
    );

    // The webhook stores pushes, and cannot delete or read devices.
    let mut w = connect_as(&db, &webhook_user, &webhook_pw).await?;
    let insert = "INSERT INTO positions (imei, gps_time, lat, lng, source)
                  VALUES ('860000000000001', now(), 1.0, 36.0, 'push')";
    ensure!(exec(&mut w, insert).await.is_none(), "webhook INSERT");
    ensure!(
        exec(&mut w, "DELETE FROM positions").await.as_deref() == Some("42501"),
        "webhook DELETE must be refused"
    );
    ensure!(
        exec(&mut w, "SELECT * FROM devices").await.as_deref() == Some("42501"),
        "webhook must not read devices"
    );
    ensure!(
        exec(&mut w, "CREATE TABLE sneaky (x int)").await.as_deref() == Some("42501"),
        "webhook must not CREATE in the schema"
    );
    // Session settings come from the role.
    let (timeout,): (String,) = sqlx::query_as("SHOW statement_timeout")
        .fetch_one(&mut w)
        .await?;
    ensure!(timeout == "10s", "webhook statement_timeout {timeout}");
    w.close().await?;

    // Ingest writes positions but cannot create objects.
    let mut i = connect_as(&db, &ingest_user, &ingest_pw).await?;
    ensure!(
        exec(&mut i, "SELECT count(*) FROM positions")
            .await
            .is_none()
    );
    ensure!(exec(&mut i, "CREATE TABLE sneaky (x int)").await.as_deref() == Some("42501"));
    ensure!(
        exec(&mut i, "DROP TABLE positions").await.as_deref() == Some("42501"),
        "ingest must not drop tables"
    );
    i.close().await?;

    // Housekeeping may purge but not read the token cache.
    let mut h = connect_as(&db, &hk_user, &hk_pw).await?;
    ensure!(exec(&mut h, "SELECT * FROM api_token").await.as_deref() == Some("42501"));
    h.close().await?;

    // The reader reads the reporting objects and writes nothing.
    let mut r = connect_as(&db, &reader_user, &reader_pw).await?;
    ensure!(
        exec(&mut r, "SELECT * FROM v_latest_positions")
            .await
            .is_none()
    );
    ensure!(
        exec(&mut r, "INSERT INTO devices (imei) VALUES ('x')")
            .await
            .as_deref()
            == Some("42501"),
        "reader must not write"
    );
    ensure!(exec(&mut r, "SELECT * FROM api_token").await.as_deref() == Some("42501"));
    r.close().await?;

    // A second pipeline (its own schema) cannot read this one's.
    let mut second = m.clone();
    second["metadata"]["name"] = "second".into();
    second["spec"]["database"]["schema"] = "second_schema".into();
    ensure!(env.apply(&serde_json::to_string(&second)?)?.success);
    wait_ready(&env, "second").await?;
    let (other_reader, other_pw) = login(&env, "second-db-reader").await?;
    let mut o = connect_as(&db, &other_reader, &other_pw).await?;
    ensure!(
        exec(&mut o, "SELECT * FROM tracksolid.positions")
            .await
            .as_deref()
            == Some("42501"),
        "another pipeline's reader must not read this schema"
    );
    o.close().await?;

    // A manual extra GRANT is revoked by the next reconcile.
    let mut a = admin(&db).await?;
    ensure!(
        exec(
            &mut a,
            &format!("GRANT DELETE ON tracksolid.positions TO \"{webhook_user}\"")
        )
        .await
        .is_none()
    );
    wait_for("the extra grant revoked", TIMEOUT, || async {
        let mut a = admin(&db).await?;
        let (has,): (bool,) =
            sqlx::query_as("SELECT has_table_privilege($1, 'tracksolid.positions', 'DELETE')")
                .bind(&webhook_user)
                .fetch_one(&mut a)
                .await?;
        Ok((!has).then_some(()))
    })
    .await?;

    // Rotation: a new password in the Secret, the old one stops working,
    // the webhook pods roll.
    let out = env.kubectl(&[
        "annotate",
        "fp",
        PIPELINE,
        "fleetops.dev/rotate-credentials=r1",
    ])?;
    ensure!(out.success, "{}", out.stderr);
    let (_, new_pw) = wait_for("a new webhook password", TIMEOUT, || async {
        let l = login(&env, "kenya-fleet-db-webhook").await?;
        Ok((l.1 != webhook_pw).then_some(l))
    })
    .await?;
    wait_for("the new password works", TIMEOUT, || async {
        Ok(connect_as(&db, &webhook_user, &new_pw)
            .await
            .ok()
            .map(|_| ()))
    })
    .await?;
    match connect_as(&db, &webhook_user, &webhook_pw).await {
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("28P01") => {}
        other => bail!("the old password must fail with 28P01: {:?}", other.err()),
    }
    let dep = env.api::<Deployment>().get("kenya-fleet-webhook").await?;
    let rolled = dep
        .spec
        .and_then(|s| s.template.metadata)
        .and_then(|m| m.annotations)
        .and_then(|a| a.get("fleetops.dev/rotate-credentials").cloned());
    ensure!(rolled.as_deref() == Some("r1"), "pod template: {rolled:?}");
    // Every role rotated, not just one.
    let (_, ingest_new) = login(&env, "kenya-fleet-db-ingest").await?;
    ensure!(ingest_new != ingest_pw);

    // Delete (default policy): the roles are dropped, the data stays, the
    // claim is released.
    env.pipelines()
        .delete(PIPELINE, &Default::default())
        .await?;
    wait_deleted(&env, PIPELINE).await?;
    for role in [&ingest_user, &webhook_user, &hk_user, &reader_user] {
        ensure!(!role_exists(&db, role).await?, "{role} still exists");
    }
    let mut a = admin(&db).await?;
    let (rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM tracksolid.positions")
        .fetch_one(&mut a)
        .await?;
    ensure!(rows == 1, "data stays: {rows}");
    let (claims,): (i64,) = sqlx::query_as("SELECT count(*) FROM tracksolid.fleetops_claim")
        .fetch_one(&mut a)
        .await?;
    ensure!(claims == 0, "claim released");
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn retain_keeps_the_roles_and_an_unreachable_database_holds_the_finalizer() -> Result<()> {
    let env = TestEnv::start("retain").await?;
    env.example_secrets().await?;
    let m = manifest(&env)?;
    let db = db_name(&m);
    let prefix = env.namespace.replace('-', "_");

    // Retain: deleting keeps the roles.
    let mut kept = m.clone();
    kept["metadata"]["name"] = "kept".into();
    kept["spec"]["database"]["schema"] = "kept".into();
    kept["spec"]["database"]["deletionPolicy"] = "Retain".into();
    ensure!(env.apply(&serde_json::to_string(&kept)?)?.success);
    wait_ready(&env, "kept").await?;
    env.pipelines().delete("kept", &Default::default()).await?;
    wait_deleted(&env, "kept").await?;
    let kept_reader = format!("{prefix}_kept_reader");
    ensure!(
        role_exists(&db, &kept_reader).await?,
        "Retain keeps {kept_reader}"
    );

    // Database unreachable during delete: the finalizer stays and status says why.
    ensure!(env.apply(&serde_json::to_string(&m)?)?.success);
    wait_ready(&env, PIPELINE).await?;
    let reader = format!("{prefix}_kenya_fleet_reader");
    ensure!(role_exists(&db, &reader).await?);
    let real_port = m["spec"]["database"]["port"].clone();
    let out = env.kubectl(&[
        "patch",
        "fp",
        PIPELINE,
        "--type=merge",
        "-p",
        &json!({"spec": {"database": {"port": 1}}}).to_string(),
    ])?;
    ensure!(out.success, "{}", out.stderr);
    wait_for("database unreachable", TIMEOUT, || async {
        let fp = env.pipelines().get(PIPELINE).await?;
        Ok(condition(&fp, "DatabaseReady")
            .filter(|c| c.1 == "Unreachable")
            .map(|_| ()))
    })
    .await?;
    env.pipelines()
        .delete(PIPELINE, &Default::default())
        .await?;
    let stuck = wait_for("deletion blocked with a reason", TIMEOUT, || async {
        let fp = env.pipelines().get(PIPELINE).await?;
        Ok(condition(&fp, "Ready")
            .filter(|c| c.1 == "Unreachable" && c.2.contains("deletion waits"))
            .map(|c| (fp, c)))
    })
    .await?;
    ensure!(
        stuck.0.metadata.finalizers.unwrap_or_default() == ["fleetops.dev/database-cleanup"],
        "the finalizer stays"
    );
    ensure!(
        stuck.1.2.contains("deletionPolicy: Retain"),
        "{}",
        stuck.1.2
    );
    ensure!(role_exists(&db, &reader).await?, "nothing dropped yet");

    // The database back: the cleanup completes and the pipeline goes.
    let out = env.kubectl(&[
        "patch",
        "fp",
        PIPELINE,
        "--type=merge",
        "-p",
        &json!({"spec": {"database": {"port": real_port}}}).to_string(),
    ])?;
    ensure!(out.success, "{}", out.stderr);
    wait_deleted(&env, PIPELINE).await?;
    ensure!(!role_exists(&db, &reader).await?, "dropped after recovery");

    // A schema carrying SQL never reaches the database: the API refuses it
    // and names the field.
    let mut evil = m.clone();
    evil["metadata"]["name"] = "evil".into();
    evil["spec"]["database"]["schema"] = r#"x"; DROP ROLE postgres; --"#.into();
    let out = env.apply(&serde_json::to_string(&evil)?)?;
    ensure!(!out.success, "accepted a schema with SQL in it");
    ensure!(
        out.stderr.contains("spec.database.schema"),
        "{}",
        out.stderr
    );

    // Tidy: the retained roles belong to this test only.
    let mut a = admin(&db).await?;
    for suffix in ["ingest", "webhook", "housekeeping", "reader"] {
        let role = format!("{prefix}_kept_{suffix}");
        let _ = exec(&mut a, &format!("DROP OWNED BY \"{role}\"")).await;
        let _ = exec(&mut a, &format!("DROP ROLE IF EXISTS \"{role}\"")).await;
    }
    env.cleanup().await;
    Ok(())
}
