//! The real `fleet-webhook` binary against a real PostgreSQL: every format
//! from the references stored exactly once, fail-closed start, wrong tokens,
//! malformed bodies, the time guard, and a database outage answered with 503
//! after which exactly the acknowledged pushes are stored.

use anyhow::{Context as _, Result, anyhow, ensure};
use fleet_e2e::{TestDb, http, urlencode, wait_for, workspace_binary};
use fleet_workloads::store::{connect, schema};
use sqlx::PgPool;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

const SCHEMA: &str = "fleet_push";
const TOKEN: &str = "push-token-for-tests";
static PORT: AtomicU16 = AtomicU16::new(18400);

fn config_file(dir: &std::path::Path) -> Result<PathBuf> {
    let cfg = fleet_e2e::workload_config("unused-with-database-url", SCHEMA);
    let path = dir.join("config.json");
    std::fs::write(&path, cfg.to_json())?;
    Ok(path)
}

struct Receiver {
    child: Child,
    addr: String,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start(db: &TestDb) -> Result<(Receiver, PgPool)> {
    let dir = std::env::temp_dir().join(format!("fleet-webhook-{}", db.name));
    std::fs::create_dir_all(&dir)?;
    let token = dir.join("token");
    std::fs::write(&token, format!("{TOKEN}\n"))?;
    let pool = connect::pool(connect::from_url(&db.url(), SCHEMA)?, 2).await?;
    schema::migrate(&pool, SCHEMA).await?;
    let addr = format!("127.0.0.1:{}", PORT.fetch_add(1, Ordering::SeqCst));
    let child = Command::new(workspace_binary("fleet-webhook")?)
        .arg("--config")
        .arg(config_file(&dir)?)
        .arg("--token-file")
        .arg(&token)
        .args([
            "--listen",
            &addr,
            "--database-url",
            &db.url(),
            "--request-timeout-seconds",
            "3",
        ])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting fleet-webhook")?;
    let r = Receiver { child, addr };
    let a = r.addr.clone();
    wait_for("receiver ready", Duration::from_secs(30), || {
        let a = a.clone();
        async move { Ok(matches!(http(&a, "GET", "/readyz", None, b""), Ok((200, _))).then_some(())) }
    })
    .await?;
    Ok((r, pool))
}

fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    serde_urlencoded_encode(pairs).into_bytes()
}

fn serde_urlencoded_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

const FORM: Option<&str> = Some("application/x-www-form-urlencoded");
const JSON: Option<&str> = Some("application/json");

const GPS: &str = r#"[{"deviceImei":"868120246598152","gpsTime":"2026-01-13 02:24:37","gateTime":"2026-01-13 02:24:38","satelliteNum":7,"lng":113.942885,"lat":22.576539,"gpsMode":0,"gpsSpeed":0,"direction":155,"acc":1,"postType":1,"altitude":0,"distance":698,"status":262147}]"#;

async fn count(pool: &PgPool, table: &'static str) -> Result<i64> {
    let sql = match table {
        "positions" => "SELECT count(*) FROM positions",
        "latest_positions" => "SELECT count(*) FROM latest_positions",
        "alarms" => "SELECT count(*) FROM alarms",
        "heartbeats" => "SELECT count(*) FROM heartbeats",
        "push_events" => "SELECT count(*) FROM push_events",
        _ => return Err(anyhow!("unknown table {table}")),
    };
    let (n,): (i64,) = sqlx::query_as(sql).fetch_one(pool).await?;
    Ok(n)
}

#[tokio::test]
async fn every_format_is_stored_once() -> Result<()> {
    let db = TestDb::create("wh_formats").await?;
    let (r, pool) = start(&db).await?;
    let a = r.addr.as_str();

    // /pushgps, form, the reference's sample; then the same again (a retry).
    for _ in 0..2 {
        let (code, body) = http(
            a,
            "POST",
            "/pushgps",
            FORM,
            &form(&[("token", TOKEN), ("data_list", GPS)]),
        )?;
        ensure!(code == 200 && body.contains("\"code\":0"), "{code} {body}");
    }
    // /pushalarm, JSON body, both reference samples (JIMI and JT/T 808).
    let alarms = serde_json::json!({"token": TOKEN, "data_list": [
        {"gateTime":"2026-01-07 11:06:05","imei":"752533678900242","msg":{"alertType":212,"lng":113.943102,"alarmTime":"2025-12-31 03:26:34","gpsSpeed":0.0,"lat":22.576649},"msgClass":0,"type":"DEVICE"},
        {"gateTime":"2026-01-07 11:06:05","imei":"869247060081665","msg":{"alertType":"256","standardAlarmValue":2048,"deviceImei":"869247060081665","lng":113.943261,"alarmTime":"2026-01-07 11:06:01","gpsSpeed":0.0,"alarmSerialNo":25075,"lat":22.576697},"msgClass":1,"type":"DEVICE"}
    ]});
    let (code, _) = http(a, "POST", "/pushAlarm", JSON, alarms.to_string().as_bytes())?;
    ensure!(code == 200);
    // /pushhb with data_list as a JSON string inside JSON.
    let hb = serde_json::json!({"token": TOKEN, "data_list": r#"[{"deviceImei":"868120246598152","gateTime":"2026-01-13 02:24:37","powerLevel":90,"gsmSign":"80"}]"#});
    ensure!(http(a, "POST", "/pushhb", JSON, hb.to_string().as_bytes())?.0 == 200);
    // The Open-API form push.
    let data = r#"{"imei":"869247060081665","alarmType":"overSpeed","alarmName":"Overspeed","lat":22.57,"lng":113.94,"alarmTime":"2026-01-07 11:06:01"}"#;
    ensure!(
        http(
            a,
            "POST",
            "/push",
            FORM,
            &form(&[
                ("token", TOKEN),
                ("msgType", "jimi.push.device.alarm"),
                ("data", data)
            ])
        )?
        .0 == 200
    );
    // An undocumented type: stored raw and acknowledged.
    ensure!(http(a, "POST", "/pushTerminalTransInfo", FORM, &form(&[("token", TOKEN), ("data_list", r#"[{"deviceImei":"1","postTime":"2026-01-01 00:00:00","extensionId":8197,"content":"0A0B"}]"#)]))?.0 == 200);
    // Token in the query string.
    let late = r#"[{"deviceImei":"868120246598152","gpsTime":"2026-01-13 01:00:00","lat":22.5,"lng":113.9,"gpsMode":1}]"#;
    ensure!(
        http(
            a,
            "POST",
            &format!("/pushgps?token={TOKEN}"),
            FORM,
            &form(&[("data_list", late)])
        )?
        .0 == 200
    );

    ensure!(count(&pool, "positions").await? == 2, "two distinct fixes");
    ensure!(count(&pool, "latest_positions").await? == 1);
    let (latest,): (String,) = sqlx::query_as("SELECT to_char(gps_time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM latest_positions")
        .fetch_one(&pool)
        .await?;
    ensure!(
        latest == "2026-01-13 02:24:37",
        "a re-uploaded older point never moves the latest position back: {latest}"
    );
    ensure!(
        count(&pool, "alarms").await? == 3,
        "two per-type alarms and one Open-API alarm"
    );
    ensure!(count(&pool, "heartbeats").await? == 1);
    ensure!(
        count(&pool, "push_events").await? == 7,
        "every raw item once (the retried GPS push adds none)"
    );

    drop(r);
    pool.close().await;
    db.drop_db().await;
    Ok(())
}

#[tokio::test]
async fn bad_tokens_bodies_and_clocks_are_refused_and_counted() -> Result<()> {
    let db = TestDb::create("wh_refuse").await?;
    let (r, pool) = start(&db).await?;
    let a = r.addr.as_str();
    let (code, body) = http(
        a,
        "POST",
        "/pushgps",
        FORM,
        &form(&[("token", "wrong"), ("data_list", GPS)]),
    )?;
    ensure!(code == 401 && body.contains("\"code\":1"), "{code} {body}");
    ensure!(http(a, "POST", "/pushgps", FORM, &form(&[("data_list", GPS)]))?.0 == 401);
    let (code, body) = http(
        a,
        "POST",
        "/pushgps",
        FORM,
        &form(&[("token", TOKEN), ("data_list", "[{\"deviceImei\":")]),
    )?;
    ensure!(code == 400 && body.contains("data_list"), "{code} {body}");
    let garbage = r#"[{"deviceImei":"1","gpsTime":"2019-03-01 00:00:00","lat":1.5,"lng":2.5},{"deviceImei":"2","gpsTime":"2099-01-01 00:00:00","lat":1.5,"lng":2.5},{"deviceImei":"3","gpsTime":"2026-01-01 00:00:00","lat":0,"lng":0}]"#;
    ensure!(
        http(
            a,
            "POST",
            "/pushgps",
            FORM,
            &form(&[("token", TOKEN), ("data_list", garbage)])
        )?
        .0 == 200
    );
    ensure!(
        count(&pool, "positions").await? == 0,
        "none of them is data"
    );
    ensure!(count(&pool, "push_events").await? == 3, "all kept raw");
    let (_, metrics) = http(a, "GET", "/metrics", None, b"")?;
    for needle in [
        "fleet_webhook_requests_total{kind=\"gps\",result=\"bad_token\"} 2",
        "fleet_webhook_events_rejected_total{reason=\"time_before_window\"} 1",
        "fleet_webhook_events_rejected_total{reason=\"time_in_future\"} 1",
        "fleet_webhook_events_rejected_total{reason=\"zero_fix\"} 1",
    ] {
        ensure!(metrics.contains(needle), "missing {needle}");
    }
    drop(r);
    pool.close().await;
    db.drop_db().await;
    Ok(())
}

#[tokio::test]
async fn refuses_to_start_without_a_token() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("fleet-webhook-notoken-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let out = Command::new(workspace_binary("fleet-webhook")?)
        .arg("--config")
        .arg(config_file(&dir)?)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            "postgres://x@127.0.0.1:1/x",
        ])
        .env_remove("FLEET_PUSH_TOKEN_FILE")
        .output()?;
    ensure!(out.status.code() == Some(2), "exit {:?}", out.status);
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(stderr.contains("no push token configured"), "{stderr}");
    Ok(())
}

#[tokio::test]
async fn database_outage_is_503_and_only_acknowledged_pushes_exist() -> Result<()> {
    let db = TestDb::create("wh_outage").await?;
    let (r, pool) = start(&db).await?;
    let a = r.addr.as_str();
    let admin = connect::pool(connect::from_url(&db.admin_url, "public")?, 1).await?;
    let push = |i: usize| -> Result<u16> {
        let item = format!(
            r#"[{{"deviceImei":"86000000000{i:04}","gpsTime":"2026-02-01 00:{:02}:{:02}","lat":1.5,"lng":2.5}}]"#,
            i / 60,
            i % 60
        );
        Ok(http(
            a,
            "POST",
            "/pushgps",
            FORM,
            &form(&[("token", TOKEN), ("data_list", &item)]),
        )?
        .0)
    };
    let mut acknowledged = 0;
    for i in 0..20 {
        acknowledged += usize::from(push(i)? == 200);
    }
    // The database goes away: no new connections, existing ones cut.
    let name = db.name.clone();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false"
    )))
    .execute(&admin)
    .await?;
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()")
        .bind(&name)
        .execute(&admin)
        .await?;
    let mut refused = 0;
    for i in 20..40 {
        match push(i)? {
            200 => acknowledged += 1,
            503 => refused += 1,
            other => return Err(anyhow!("unexpected {other} while the database is down")),
        }
    }
    ensure!(refused > 0, "the outage must show as 503");
    let (ready, _) = http(a, "GET", "/readyz", None, b"")?;
    ensure!(ready == 503, "/readyz reports the database");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true"
    )))
    .execute(&admin)
    .await?;
    for i in 40..60 {
        let code = wait_for(
            "a push accepted after recovery",
            Duration::from_secs(20),
            || async move {
                let c = push(i)?;
                Ok((c == 200).then_some(c))
            },
        )
        .await?;
        acknowledged += usize::from(code == 200);
    }
    let check = connect::pool(connect::from_url(&db.url(), SCHEMA)?, 1).await?;
    let stored = count(&check, "positions").await? as usize;
    println!("acknowledged {acknowledged}, refused {refused}, stored {stored}");
    ensure!(
        stored == acknowledged,
        "stored {stored} != acknowledged {acknowledged}"
    );
    drop(r);
    pool.close().await;
    check.close().await;
    admin.close().await;
    db.drop_db().await;
    Ok(())
}
