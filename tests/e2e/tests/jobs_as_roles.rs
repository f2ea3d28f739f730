//! Every workload as the operator deploys it: the config it rendered into
//! the pipeline's ConfigMap and the login from the Secret it mounts. Each
//! `fleet-ingest <job>` and `fleet-webhook` runs against the simulator and
//! the real PostgreSQL as its own least-privilege role, and succeeds; then
//! the pipeline's status reports ingest Healthy. (The other ingest tests log
//! in as a superuser: this one proves the privilege table lets each job do
//! its work. A missing grant is how the demo once failed.)

use anyhow::{Context as _, Result, ensure};
use fleet_e2e::{
    TestEnv, example_in, http, urlencode, wait_for, wait_ready, workspace_binary,
    write_account_credentials,
};
use fleet_workloads::config::PipelineConfig;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use tracksolid_sim::nominatim::{FakeNominatim, FakeNominatimConfig};
use tracksolid_sim::{SimConfig, SimServer};

const PIPELINE: &str = "kenya-fleet";
const PUSH_TOKEN: &str = "push-token-for-roles";
const USER_AGENT: &str = "fleet-e2e/1 (roles@example.invalid)";

/// Write a login Secret's keys as the pod would see them mounted.
async fn mount_login(env: &TestEnv, secret: &str, dir: &Path) -> Result<PathBuf> {
    let s = env.api::<Secret>().get(secret).await?;
    let path = dir.join(secret);
    std::fs::create_dir_all(&path)?;
    for (k, v) in s.data.unwrap_or_default() {
        std::fs::write(path.join(k), v.0)?;
    }
    Ok(path)
}

// Multi-threaded: the simulator and the fake geocoder run in this process
// while the test waits on child processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_workload_runs_as_its_own_role() -> Result<()> {
    let sim = SimServer::start(SimConfig::for_tests(12, 11)).await?;
    let geo = FakeNominatim::start(FakeNominatimConfig::default()).await?;
    let account = sim
        .state()
        .accounts()
        .first()
        .cloned()
        .context("simulator without accounts")?;

    let env = TestEnv::start("roles-jobs").await?;
    let (_, _, user, password) = fleet_e2e::database()?;
    env.secret(
        "tracksolid-hk",
        &[
            ("appKey", &account.app_key),
            ("appSecret", &account.app_secret),
            ("userId", &account.user_id),
            ("userPassword", &account.password),
        ],
    )
    .await?;
    env.secret(
        "fleet-db-admin",
        &[("username", &user), ("password", &password)],
    )
    .await?;
    env.secret("jimi-push", &[("token", PUSH_TOKEN)]).await?;
    let mut m: serde_json::Value = serde_yaml::from_str(&example_in(&env.namespace)?)?;
    m["spec"]["targets"][0]["endpoint"] = sim.endpoint().into();
    m["spec"]["geocoding"]["url"] = geo.base_url().into();
    m["spec"]["geocoding"]["requestsPerSecond"] = 20.into();
    m["spec"]["geocoding"]["userAgent"] = USER_AGENT.into();
    ensure!(env.apply(&serde_json::to_string(&m)?)?.success);
    wait_ready(&env, PIPELINE).await?;

    // The pod's view: the rendered config, the target's credentials and
    // each role's login where the pod would have them mounted.
    let dir = std::env::temp_dir().join(format!("fleet-roles-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let cm = env.api::<ConfigMap>().get("kenya-fleet-config").await?;
    let rendered = cm
        .data
        .and_then(|d| d.get("config.json").cloned())
        .context("ConfigMap without config.json")?;
    let mut config: PipelineConfig = serde_json::from_str(&rendered)?;
    for target in &mut config.targets {
        let creds = dir.join("targets").join(&target.name);
        write_account_credentials(&creds, &account)?;
        target.credentials_dir = creds.display().to_string();
    }
    let config_path = dir.join("config.json");
    std::fs::write(&config_path, config.to_json())?;
    let ingest = mount_login(&env, "kenya-fleet-db-ingest", &dir).await?;
    let housekeeping = mount_login(&env, "kenya-fleet-db-housekeeping", &dir).await?;
    let webhook = mount_login(&env, "kenya-fleet-db-webhook", &dir).await?;

    // Every job, as its CronJob runs it, logged in as its own role.
    for (job, login) in [
        ("devices", &ingest),
        ("positions", &ingest),
        ("track", &ingest),
        ("alarms", &ingest),
        ("parking", &ingest),
        ("trips", &ingest),
        ("housekeeping", &housekeeping),
    ] {
        let out = Command::new(workspace_binary("fleet-ingest")?)
            .args([job, "--config"])
            .arg(&config_path)
            .arg("--db-credentials-dir")
            .arg(login)
            .env("RUST_LOG", "warn")
            .env_remove("DATABASE_URL")
            .output()?;
        ensure!(
            out.status.success(),
            "fleet-ingest {job} as its role: {:?}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // The trips job geocoded with the User-Agent from the spec.
    let asked = geo.state().requests();
    ensure!(!asked.is_empty(), "trips asked the geocoder nothing");
    ensure!(
        asked
            .iter()
            .all(|r| r.user_agent.as_deref() == Some(USER_AGENT)),
        "User-Agent from spec.geocoding.userAgent"
    );

    // The receiver, as the Deployment runs it, logged in as the webhook role.
    let token = dir.join("token");
    std::fs::write(&token, PUSH_TOKEN)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut receiver = Command::new(workspace_binary("fleet-webhook")?)
        .arg("--config")
        .arg(&config_path)
        .arg("--token-file")
        .arg(&token)
        .arg("--db-credentials-dir")
        .arg(&webhook)
        .args(["--listen", &addr])
        .env("RUST_LOG", "warn")
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let pushed = async {
        wait_for("the receiver ready", Duration::from_secs(30), || async {
            Ok(matches!(http(&addr, "GET", "/readyz", None, b""), Ok((200, _))).then_some(()))
        })
        .await?;
        let now = jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M:%S").to_string();
        for (path, item) in [
            (
                "/pushgps",
                format!(
                    r#"[{{"deviceImei":"868120246598152","gpsTime":"{now}","lat":-1.29,"lng":36.82,"gpsSpeed":40,"gpsMode":0}}]"#
                ),
            ),
            (
                "/pushalarm",
                format!(
                    r#"[{{"imei":"868120246598152","msgClass":0,"gateTime":"{now}","msg":{{"alertType":212,"alarmTime":"{now}","lat":-1.29,"lng":36.82}}}}]"#
                ),
            ),
            (
                "/pushhb",
                format!(r#"[{{"deviceImei":"868120246598152","gateTime":"{now}","powerLevel":5}}]"#),
            ),
        ] {
            let body = format!(
                "token={}&data_list={}",
                urlencode(PUSH_TOKEN),
                urlencode(&item)
            );
            let (code, answer) = http(
                &addr,
                "POST",
                path,
                Some("application/x-www-form-urlencoded"),
                body.as_bytes(),
            )?;
            ensure!(code == 200, "{path} as the webhook role: {code} {answer}");
        }
        let (code, body) = http(&addr, "GET", "/health/ingest", None, b"")?;
        ensure!(code == 200, "/health/ingest as the webhook role: {code} {body}");
        Ok::<_, anyhow::Error>(())
    }
    .await;
    let _ = receiver.kill();
    let _ = receiver.wait();
    pushed?;

    // Every endpoint ran: the operator reads ingest health back into status.
    wait_for(
        "ingest Healthy in status",
        Duration::from_secs(60),
        || async {
            let fp = env.pipelines().get(PIPELINE).await?;
            let ingest = fp.status.and_then(|s| s.ingest);
            Ok((ingest.as_deref() == Some("Healthy")).then_some(()))
        },
    )
    .await?;
    let _ = std::fs::remove_dir_all(&dir);
    env.cleanup().await;
    Ok(())
}
