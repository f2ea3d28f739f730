//! Fault: the kube-apiserver is killed (SIGKILL) while the operator is
//! reconciling a batch of new pipelines, and comes back. The operator recovers
//! on its own: every pipeline ends Ready with exactly its children, none
//! duplicated or lost. (Its own test binary: it stops the shared apiserver.)

use anyhow::{Result, ensure};
use fleet_e2e::{TestEnv, example_in, state_dir, wait_for};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::ListParams;
use std::process::Command;
use std::time::Duration;

const PIPELINES: usize = 12;

#[tokio::test]
async fn operator_recovers_from_an_apiserver_restart_mid_reconcile() -> Result<()> {
    let env = TestEnv::start("apiserver-fault").await?;
    env.example_secrets().await?;
    let example: serde_json::Value = serde_yaml::from_str(&example_in(&env.namespace)?)?;
    let mut manifests = Vec::new();
    for i in 0..PIPELINES {
        let mut m = example.clone();
        m["metadata"]["name"] = format!("fleet-{i}").into();
        m["spec"]["database"]["schema"] = format!("fleet_{i}").into();
        manifests.push(m);
    }
    let all = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": manifests});
    let out = env.apply(&serde_json::to_string(&all)?)?;
    ensure!(out.success, "{}", out.stderr);

    // Kill the apiserver while those reconciles are in flight.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = Command::new("bash")
        .arg(fleet_e2e::repo_root().join("tests/harness/restart.sh"))
        .arg(state_dir())
        .args(["kube-apiserver", "3", "KILL"])
        .status()?;
    ensure!(status.success(), "restart.sh failed");

    wait_for(
        "every pipeline Ready after the restart",
        Duration::from_secs(120),
        || async {
            let list = env.pipelines().list(&ListParams::default()).await?;
            let ready = list
                .items
                .iter()
                .filter(|fp| {
                    let s = fp.status.clone().unwrap_or_default();
                    s.observed_generation == fp.metadata.generation
                        && s.conditions
                            .iter()
                            .any(|c| c.type_ == "Ready" && c.status == "True")
                })
                .count();
            Ok((ready == PIPELINES).then_some(()))
        },
    )
    .await?;

    // Exactly the children each pipeline should have.
    let cron_jobs = env
        .api::<CronJob>()
        .list(&ListParams::default())
        .await?
        .items;
    let config_maps = env
        .api::<ConfigMap>()
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=fleet-operator"))
        .await?
        .items;
    let policies = env
        .api::<NetworkPolicy>()
        .list(&ListParams::default())
        .await?
        .items;
    ensure!(
        cron_jobs.len() == PIPELINES * 7,
        "{} CronJobs",
        cron_jobs.len()
    );
    ensure!(
        config_maps.len() == PIPELINES,
        "{} ConfigMaps",
        config_maps.len()
    );
    ensure!(
        policies.len() == PIPELINES * 3,
        "{} NetworkPolicies",
        policies.len()
    );
    for i in 0..PIPELINES {
        let owned = cron_jobs
            .iter()
            .filter(|c| {
                c.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("app.kubernetes.io/instance"))
                    .map(String::as_str)
                    == Some(&*format!("fleet-{i}"))
            })
            .count();
        ensure!(owned == 7, "fleet-{i} has {owned} CronJobs");
    }
    env.cleanup().await;
    Ok(())
}
