//! The foundation on a real control plane: the CRD accepts the example and
//! rejects bad objects naming the field; the operator creates the ConfigMap
//! and CronJobs, follows edits, prunes disabled jobs, reports status; the
//! controller-manager's garbage collector removes children on delete.

use anyhow::{Result, ensure};
use fleet_e2e::{TestEnv, example_in, wait_deleted, wait_for, wait_ready};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use kube::api::ListParams;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);
const PIPELINE: &str = "kenya-fleet";

async fn cron_jobs(env: &TestEnv) -> Result<Vec<CronJob>> {
    Ok(env
        .api::<CronJob>()
        .list(&ListParams::default().labels("app.kubernetes.io/instance=kenya-fleet"))
        .await?
        .items)
}

#[tokio::test]
async fn example_is_reconciled_into_owned_cronjobs_and_config() -> Result<()> {
    let env = TestEnv::start("example").await?;
    env.example_secrets().await?;
    let out = env.apply(&example_in(&env.namespace)?)?;
    ensure!(
        out.success,
        "kubectl apply of the example failed: {}",
        out.stderr
    );

    let fp = wait_ready(&env, PIPELINE).await?;
    let uid = fp.metadata.uid.clone().unwrap_or_default();

    let cjs = wait_for("seven CronJobs", TIMEOUT, || async {
        let cjs = cron_jobs(&env).await?;
        Ok((cjs.len() == 7).then_some(cjs))
    })
    .await?;
    let expected = [
        ("positions", "*/2 * * * *"),
        ("track", "*/30 * * * *"),
        ("alarms", "*/5 * * * *"),
        ("trips", "15 * * * *"),
        ("parking", "20 * * * *"),
        ("devices", "0 */6 * * *"),
        ("housekeeping", "30 2 * * *"),
    ];
    for (job, schedule) in expected {
        let name = format!("{PIPELINE}-{job}");
        let cj = cjs
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(name.as_str()))
            .ok_or_else(|| anyhow::anyhow!("CronJob {name} missing"))?;
        ensure!(
            cj.spec.schedule == schedule,
            "{name}: schedule {}",
            cj.spec.schedule
        );
        ensure!(
            cj.spec.time_zone.as_deref() == Some("Africa/Nairobi"),
            "{name}: timeZone"
        );
        ensure!(
            cj.spec.concurrency_policy.as_deref() == Some("Forbid"),
            "{name}: Forbid"
        );
        let owner = &cj.metadata.owner_references.as_ref().unwrap()[0];
        ensure!(
            owner.uid == uid && owner.controller == Some(true),
            "{name}: owner"
        );
        let labels = cj.metadata.labels.clone().unwrap_or_default();
        ensure!(
            labels
                .get("app.kubernetes.io/managed-by")
                .map(String::as_str)
                == Some("fleet-operator")
        );
        let managers: Vec<_> = cj
            .metadata
            .managed_fields
            .iter()
            .flatten()
            .filter_map(|m| m.manager.clone())
            .collect();
        ensure!(
            managers == ["fleet-operator"],
            "{name}: one field manager, got {managers:?}"
        );
    }

    let cm = env.api::<ConfigMap>().get("kenya-fleet-config").await?;
    let config = &cm.data.unwrap_or_default()["config.json"];
    ensure!(
        config.contains("hk-open.tracksolidpro.com"),
        "config renders targets"
    );
    ensure!(
        !config.contains("tracksolid-hk"),
        "no secret names in the config"
    );
    let sa = env
        .api::<ServiceAccount>()
        .get("kenya-fleet-ingest")
        .await?;
    ensure!(sa.automount_service_account_token == Some(false));

    // `kubectl get fleetpipeline` prints the documented columns with values.
    let out = env.kubectl(&["get", "fleetpipeline"])?;
    ensure!(out.success, "{}", out.stderr);
    let mut lines = out.stdout.lines();
    let header: Vec<_> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    ensure!(
        header == ["NAME", "READY", "TARGETS", "WEBHOOK", "INGEST", "AGE"],
        "columns: {header:?}"
    );
    let row: Vec<_> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    ensure!(
        row[..5] == ["kenya-fleet", "True", "1", "0/2", "Unknown"],
        "row: {row:?}"
    );
    let short = env.kubectl(&["get", "fp", "-o", "name"])?;
    ensure!(
        short.stdout.trim() == "fleetpipeline.fleetops.dev/kenya-fleet",
        "short name fp"
    );

    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn editing_a_schedule_updates_its_cronjob_and_disabling_prunes() -> Result<()> {
    let env = TestEnv::start("edit").await?;
    env.example_secrets().await?;
    ensure!(env.apply(&example_in(&env.namespace)?)?.success);
    wait_ready(&env, PIPELINE).await?;

    let out = env.kubectl(&[
        "patch",
        "fleetpipeline",
        PIPELINE,
        "--type=merge",
        "-p",
        r#"{"spec":{"jobs":{"alarms":{"schedule":"*/7 * * * *"},"trips":{"enabled":false}}}}"#,
    ])?;
    ensure!(out.success, "{}", out.stderr);

    wait_for(
        "alarms schedule updated and trips pruned",
        TIMEOUT,
        || async {
            let cjs = cron_jobs(&env).await?;
            let alarms = cjs
                .iter()
                .find(|c| c.metadata.name.as_deref() == Some("kenya-fleet-alarms"));
            let trips_gone = cjs
                .iter()
                .all(|c| c.metadata.name.as_deref() != Some("kenya-fleet-trips"));
            Ok(
                (alarms.is_some_and(|c| c.spec.schedule == "*/7 * * * *") && trips_gone)
                    .then_some(()),
            )
        },
    )
    .await?;
    let fp = wait_ready(&env, PIPELINE).await?;
    let status = fp.status.unwrap_or_default();
    ensure!(
        status.jobs.iter().all(|j| j.name != "trips"),
        "status drops the disabled job"
    );
    ensure!(
        status
            .jobs
            .iter()
            .any(|j| j.name == "alarms" && j.schedule == "*/7 * * * *"),
        "status shows the new schedule"
    );

    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn suspend_reaches_every_cronjob() -> Result<()> {
    let env = TestEnv::start("suspend").await?;
    env.example_secrets().await?;
    ensure!(env.apply(&example_in(&env.namespace)?)?.success);
    wait_ready(&env, PIPELINE).await?;
    let out = env.kubectl(&[
        "patch",
        "fp",
        PIPELINE,
        "--type=merge",
        "-p",
        r#"{"spec":{"suspend":true}}"#,
    ])?;
    ensure!(out.success, "{}", out.stderr);
    wait_for("every CronJob suspended", TIMEOUT, || async {
        let cjs = cron_jobs(&env).await?;
        Ok((cjs.len() == 7 && cjs.iter().all(|c| c.spec.suspend == Some(true))).then_some(()))
    })
    .await?;
    let fp = wait_ready(&env, PIPELINE).await?;
    let ready_cond = fp
        .status
        .unwrap_or_default()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    ensure!(
        ready_cond.reason == "Suspended",
        "reason {}",
        ready_cond.reason
    );
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn steady_state_reconciles_write_nothing() -> Result<()> {
    let env = TestEnv::start("steady").await?;
    env.example_secrets().await?;
    ensure!(env.apply(&example_in(&env.namespace)?)?.success);
    wait_ready(&env, PIPELINE).await?;
    // Let the first reconciles settle (status patch triggers one more).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = env.operator_writes();
    // The test operator resyncs every 2 s: at least three more reconciles.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let reconciles = env.writes.reconciles.get();
    let after = env.operator_writes();
    ensure!(
        reconciles >= 3,
        "expected periodic reconciles, saw {reconciles}"
    );
    ensure!(
        after == before,
        "steady state wrote {} times",
        after - before
    );
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn deleting_the_pipeline_garbage_collects_its_children() -> Result<()> {
    let env = TestEnv::start("delete").await?;
    env.example_secrets().await?;
    ensure!(env.apply(&example_in(&env.namespace)?)?.success);
    wait_ready(&env, PIPELINE).await?;
    ensure!(cron_jobs(&env).await?.len() == 7);

    let out = env.kubectl(&["delete", "fleetpipeline", PIPELINE, "--wait=false"])?;
    ensure!(out.success, "{}", out.stderr);
    wait_deleted(&env, PIPELINE).await?;
    wait_for(
        "children collected by the garbage collector",
        TIMEOUT,
        || async {
            let cjs = cron_jobs(&env).await?;
            let cm = env.api::<ConfigMap>().get_opt("kenya-fleet-config").await?;
            let sa = env
                .api::<ServiceAccount>()
                .get_opt("kenya-fleet-ingest")
                .await?;
            Ok((cjs.is_empty() && cm.is_none() && sa.is_none()).then_some(()))
        },
    )
    .await?;
    env.cleanup().await;
    Ok(())
}

/// Each bad manifest: a JSON merge patch on the example, and the field the
/// apiserver's message must name.
const BAD: &[(&str, &str, &str)] = &[
    (
        "duplicate target names",
        r#"{"spec":{"targets":[{"name":"hk","endpoint":"https://hk-open.tracksolidpro.com/route/rest","credentialsSecretRef":{"name":"a"}},{"name":"hk","endpoint":"https://eu-open.tracksolidpro.com/route/rest","credentialsSecretRef":{"name":"b"}}]}}"#,
        "spec.targets",
    ),
    (
        "target name not a DNS label",
        r#"{"spec":{"targets":[{"name":"Hong_Kong","endpoint":"https://hk-open.tracksolidpro.com/route/rest","credentialsSecretRef":{"name":"a"}}]}}"#,
        "spec.targets[0].name",
    ),
    (
        "cron of four fields",
        r#"{"spec":{"jobs":{"alarms":{"schedule":"*/5 * * *"}}}}"#,
        "spec.jobs.alarms.schedule",
    ),
    (
        "unparseable duration",
        r#"{"spec":{"retention":{"positions":"400 days"}}}"#,
        "spec.retention.positions",
    ),
    (
        "requireToken without tokenSecretRef",
        r#"{"spec":{"webhook":{"tokenSecretRef":null,"requireToken":true}}}"#,
        "spec.webhook.tokenSecretRef",
    ),
    (
        "schema not a safe SQL identifier",
        r#"{"spec":{"database":{"schema":"fleet; DROP TABLE x"}}}"#,
        "spec.database.schema",
    ),
    (
        "schema in pg_ namespace",
        r#"{"spec":{"database":{"schema":"pg_catalog"}}}"#,
        "spec.database.schema",
    ),
    (
        "replicas out of bounds",
        r#"{"spec":{"webhook":{"replicas":50}}}"#,
        "spec.webhook.replicas",
    ),
    (
        "sslMode not in the enum",
        r#"{"spec":{"database":{"sslMode":"sometimes"}}}"#,
        "spec.database.sslMode",
    ),
    (
        "endpoint not an http(s) URL",
        r#"{"spec":{"targets":[{"name":"hk","endpoint":"ftp://hk-open.tracksolidpro.com","credentialsSecretRef":{"name":"a"}}]}}"#,
        "spec.targets[0].endpoint",
    ),
    (
        "notBefore not a timestamp",
        r#"{"spec":{"eventTimeGuard":{"notBefore":"last tuesday"}}}"#,
        "spec.eventTimeGuard.notBefore",
    ),
    (
        "database peer with both selectors",
        r#"{"spec":{"database":{"peer":{"podSelector":{},"ipBlock":{"cidr":"10.0.5.10/32"}}}}}"#,
        "spec.database.peer",
    ),
];

fn merge(base: &mut serde_json::Value, patch: &serde_json::Value) {
    match (base, patch) {
        (serde_json::Value::Object(b), serde_json::Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    b.remove(k);
                } else {
                    merge(b.entry(k.clone()).or_insert(serde_json::Value::Null), v);
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}

#[tokio::test]
async fn bad_manifests_are_rejected_naming_the_field() -> Result<()> {
    let env = TestEnv::start("reject").await?;
    let example: serde_json::Value = serde_yaml::from_str(&example_in(&env.namespace)?)?;
    let mut failures = Vec::new();
    for (i, (what, patch, field)) in BAD.iter().enumerate() {
        let mut manifest = example.clone();
        merge(&mut manifest, &serde_json::from_str(patch)?);
        manifest["metadata"]["name"] = format!("bad-{i}").into();
        let out = env.apply(&serde_json::to_string(&manifest)?)?;
        if out.success {
            failures.push(format!("{what}: accepted"));
        } else if !out.stderr.contains(field) {
            failures.push(format!(
                "{what}: message does not name {field}: {}",
                out.stderr.trim()
            ));
        }
    }
    // A name too long for CronJob names.
    let mut manifest = example.clone();
    manifest["metadata"]["name"] = "a-pipeline-name-that-is-much-too-long-for-cronjobs".into();
    let out = env.apply(&serde_json::to_string(&manifest)?)?;
    if out.success || !out.stderr.contains("metadata.name") {
        failures.push(format!("long name: {}", out.stderr.trim()));
    }
    // Nothing was stored.
    let stored = env
        .pipelines()
        .list(&ListParams::default())
        .await?
        .items
        .len();
    env.cleanup().await;
    ensure!(failures.is_empty(), "{}", failures.join("\n"));
    ensure!(stored == 0, "{stored} bad objects were stored");
    Ok(())
}
