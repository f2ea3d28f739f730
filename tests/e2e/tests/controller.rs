//! The controller on a real control plane: webhook objects, orphans, drift,
//! referenced Secrets, isolation of a broken pipeline, NetworkPolicy truth
//! table, and the operator under its minimal RBAC with writes counted in the
//! apiserver's audit log.

use anyhow::{Result, anyhow, ensure};
use fleet_e2e::netpol::{Endpoint, Labels, allowed};
use fleet_e2e::{
    TestEnv, audit_mark, audit_writes_since, client, client_with_token, condition, example_in,
    kubectl, kubectl_stdin, repo_root, wait_for, wait_ready,
};
use fleet_operator::resources::OperatorIdentity;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy, NetworkPolicyPeer};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::ListParams;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);
const PIPELINE: &str = "kenya-fleet";

fn names<K: kube::Resource>(items: &[K]) -> Vec<String> {
    let mut n: Vec<String> = items.iter().filter_map(|i| i.meta().name.clone()).collect();
    n.sort();
    n
}

async fn list<K>(env: &TestEnv) -> Result<Vec<K>>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    Ok(env
        .api::<K>()
        .list(&ListParams::default().labels("app.kubernetes.io/instance=kenya-fleet"))
        .await?
        .items)
}

fn patch(env: &TestEnv, json: &str) -> Result<()> {
    patch_named(env, PIPELINE, json)
}

#[tokio::test]
async fn webhook_objects_follow_the_spec_and_are_pruned() -> Result<()> {
    let env = TestEnv::start("webhook").await?;
    env.example_secrets().await?;
    ensure!(env.apply(&example_in(&env.namespace)?)?.success);
    wait_ready(&env, PIPELINE).await?;

    let dep = env.api::<Deployment>().get("kenya-fleet-webhook").await?;
    let spec = dep.spec.clone().unwrap_or_default();
    ensure!(spec.replicas == Some(2));
    let pod = spec.template.spec.unwrap_or_default();
    ensure!(
        pod.containers[0]
            .command
            .as_ref()
            .is_some_and(|c| c[0] == "fleet-webhook")
    );
    ensure!(pod.automount_service_account_token == Some(false));
    env.api::<Service>().get("kenya-fleet-webhook").await?;
    env.api::<PodDisruptionBudget>()
        .get("kenya-fleet-webhook")
        .await?;
    let sa = env
        .api::<ServiceAccount>()
        .get("kenya-fleet-webhook")
        .await?;
    ensure!(sa.automount_service_account_token == Some(false));
    let policies = names(&list::<NetworkPolicy>(&env).await?);
    ensure!(
        policies
            == [
                "kenya-fleet-default-deny",
                "kenya-fleet-ingest-egress",
                "kenya-fleet-webhook"
            ],
        "{policies:?}"
    );
    let fp = env.pipelines().get(PIPELINE).await?;
    let webhook = fp
        .status
        .and_then(|s| s.webhook)
        .ok_or_else(|| anyhow!("no webhook status"))?;
    ensure!(
        webhook.url.as_deref()
            == Some(&*format!(
                "http://kenya-fleet-webhook.{}.svc:8080",
                env.namespace
            ))
    );
    ensure!(
        webhook.summary == "0/2",
        "no kubelet: nothing is ready ({})",
        webhook.summary
    );

    // An Ingress when asked for, gone when not.
    patch(
        &env,
        r#"{"spec":{"webhook":{"ingress":{"className":"nginx","host":"push.example.com","tlsSecretName":"push-tls","annotations":{"cert-manager.io/cluster-issuer":"letsencrypt"}}}}}"#,
    )?;
    let ing = wait_for("Ingress created", TIMEOUT, || async {
        Ok(env.api::<Ingress>().get_opt("kenya-fleet-webhook").await?)
    })
    .await?;
    let ing_spec = ing.spec.unwrap_or_default();
    ensure!(ing_spec.ingress_class_name.as_deref() == Some("nginx"));
    ensure!(ing_spec.tls.unwrap_or_default()[0].secret_name.as_deref() == Some("push-tls"));
    ensure!(
        ing.metadata
            .annotations
            .unwrap_or_default()
            .get("cert-manager.io/cluster-issuer")
            .map(String::as_str)
            == Some("letsencrypt")
    );
    patch(&env, r#"{"spec":{"webhook":{"ingress":null}}}"#)?;
    wait_for("Ingress deleted", TIMEOUT, || async {
        Ok(list::<Ingress>(&env).await?.is_empty().then_some(()))
    })
    .await?;

    // One replica: no PDB (it would block every drain).
    patch(&env, r#"{"spec":{"webhook":{"replicas":1}}}"#)?;
    wait_for("PDB deleted", TIMEOUT, || async {
        Ok(list::<PodDisruptionBudget>(&env)
            .await?
            .is_empty()
            .then_some(()))
    })
    .await?;

    // Webhook off: everything it owned goes, policies included.
    patch(&env, r#"{"spec":{"webhook":{"enabled":false}}}"#)?;
    wait_for("webhook objects pruned", TIMEOUT, || async {
        let deps = list::<Deployment>(&env).await?;
        let svcs = list::<Service>(&env).await?;
        let sas = names(&list::<ServiceAccount>(&env).await?);
        let nps = names(&list::<NetworkPolicy>(&env).await?);
        Ok((deps.is_empty()
            && svcs.is_empty()
            && sas == ["kenya-fleet-ingest"]
            && !nps.contains(&"kenya-fleet-webhook".to_owned()))
        .then_some(()))
    })
    .await?;
    let fp = wait_ready(&env, PIPELINE).await?;
    ensure!(fp.status.and_then(|s| s.webhook).map(|w| w.summary) == Some("Disabled".into()));
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn drift_is_healed() -> Result<()> {
    let env = TestEnv::start("drift").await?;
    env.example_secrets().await?;
    ensure!(env.apply(&example_in(&env.namespace)?)?.success);
    wait_ready(&env, PIPELINE).await?;

    // Someone edits a CronJob, deletes the ConfigMap and a NetworkPolicy.
    let out = env.kubectl(&[
        "patch",
        "cronjob",
        "kenya-fleet-alarms",
        "--type=merge",
        "-p",
        r#"{"spec":{"schedule":"0 0 1 1 *","suspend":true}}"#,
    ])?;
    ensure!(out.success, "{}", out.stderr);
    ensure!(
        env.kubectl(&["delete", "configmap", "kenya-fleet-config"])?
            .success
    );
    ensure!(
        env.kubectl(&["delete", "networkpolicy", "kenya-fleet-default-deny"])?
            .success
    );
    ensure!(
        env.kubectl(&["scale", "deployment", "kenya-fleet-webhook", "--replicas=5"])?
            .success
    );

    wait_for("drift restored", TIMEOUT, || async {
        let cj = env.api::<CronJob>().get("kenya-fleet-alarms").await?;
        let cm = env.api::<ConfigMap>().get_opt("kenya-fleet-config").await?;
        let np = env
            .api::<NetworkPolicy>()
            .get_opt("kenya-fleet-default-deny")
            .await?;
        let dep = env.api::<Deployment>().get("kenya-fleet-webhook").await?;
        Ok((cj.spec.schedule == "*/5 * * * *"
            && cj.spec.suspend == Some(false)
            && cm.is_some()
            && np.is_some()
            && dep.spec.and_then(|s| s.replicas) == Some(2))
        .then_some(()))
    })
    .await?;
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn missing_secret_degrades_without_hot_loop_and_recovers() -> Result<()> {
    let env = TestEnv::start("secret").await?;
    // Everything but the push token.
    env.secret(
        "tracksolid-hk",
        &[
            ("appKey", "k"),
            ("appSecret", "s"),
            ("userId", "u"),
            ("userPassword", "p"),
        ],
    )
    .await?;
    let password = fleet_e2e::db_password()?;
    env.secret(
        "fleet-db-admin",
        &[("username", "postgres"), ("password", &password)],
    )
    .await?;
    ensure!(env.apply(&example_in(&env.namespace)?)?.success);

    let fp = wait_for("Degraded naming the Secret", TIMEOUT, || async {
        let fp = env.pipelines().get(PIPELINE).await?;
        let degraded =
            fp.status.iter().flat_map(|s| s.conditions.iter()).any(|c| {
                c.type_ == "Degraded" && c.status == "True" && c.reason == "SecretMissing"
            });
        Ok(degraded.then_some(fp))
    })
    .await?;
    let ready_cond = fp
        .status
        .unwrap_or_default()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .ok_or_else(|| anyhow!("no Ready"))?;
    ensure!(ready_cond.status == "False");
    ensure!(
        ready_cond.message.contains("jimi-push")
            && ready_cond.message.contains("webhook.tokenSecretRef"),
        "message names the Secret and field: {}",
        ready_cond.message
    );
    let events = env.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "reason=SecretMissing",
        "-o",
        "name",
    ])?;
    ensure!(!events.stdout.trim().is_empty(), "an Event was published");

    // No hot loop: the test operator resyncs every 2 s.
    let before = env.writes.reconciles.get();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let reconciles = env.writes.reconciles.get() - before;
    ensure!(
        reconciles <= 8,
        "{reconciles} reconciles in 6 s while waiting for a Secret"
    );

    // The Secret appears: the pipeline recovers without a restart.
    env.secret("jimi-push", &[("token", "t")]).await?;
    wait_ready(&env, PIPELINE).await?;
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn a_broken_pipeline_does_not_stall_the_others() -> Result<()> {
    let env = TestEnv::start("isolation").await?;
    env.example_secrets().await?;
    // Ten pipelines in one namespace: one malformed in a way the schema
    // cannot see (a retention that overflows: InvalidSpec), one whose Secret
    // does not exist, and eight healthy ones, each with its own schema.
    let example: serde_json::Value = serde_yaml::from_str(&example_in(&env.namespace)?)?;
    let mut malformed = example.clone();
    malformed["metadata"]["name"] = "malformed".into();
    malformed["spec"]["database"]["schema"] = "malformed".into();
    malformed["spec"]["retention"]["positions"] = "99999999999999999999d".into();
    ensure!(env.apply(&serde_json::to_string(&malformed)?)?.success);
    let mut missing = example.clone();
    missing["metadata"]["name"] = "broken".into();
    missing["spec"]["targets"][0]["credentialsSecretRef"]["name"] = "absent".into();
    missing["spec"]["database"]["schema"] = "broken".into();
    ensure!(env.apply(&serde_json::to_string(&missing)?)?.success);
    const HEALTHY: usize = 8;
    for i in 0..HEALTHY {
        let mut fp = example.clone();
        fp["metadata"]["name"] = format!("healthy-{i}").into();
        fp["spec"]["database"]["schema"] = format!("healthy_{i}").into();
        ensure!(env.apply(&serde_json::to_string(&fp)?)?.success);
    }
    for i in 0..HEALTHY {
        wait_ready(&env, &format!("healthy-{i}")).await?;
    }
    for (name, expected) in [("malformed", "InvalidSpec"), ("broken", "SecretMissing")] {
        let fp = env.pipelines().get(name).await?;
        let reason = fp
            .status
            .unwrap_or_default()
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| c.reason);
        ensure!(reason.as_deref() == Some(expected), "{name}: {reason:?}");
    }
    // The others keep reconciling: a change to a healthy pipeline is acted
    // on while the broken ones are still there.
    patch_named(&env, "healthy-3", r#"{"spec":{"suspend":true}}"#)?;
    let fp = wait_ready(&env, "healthy-3").await?;
    ensure!(fp.metadata.generation == Some(2), "the patch was observed");
    let cj = env.api::<CronJob>().get("healthy-3-positions").await?;
    ensure!(
        cj.spec.suspend == Some(true),
        "the CronJobs of healthy-3 follow the new spec"
    );
    env.cleanup().await;
    Ok(())
}

fn patch_named(env: &TestEnv, name: &str, json: &str) -> Result<()> {
    let out = env.kubectl(&["patch", "fleetpipeline", name, "--type=merge", "-p", json])?;
    ensure!(out.success, "kubectl patch: {}", out.stderr);
    Ok(())
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn network_policies_mean_what_the_readme_says() -> Result<()> {
    let admin = client().await?;
    let identity = OperatorIdentity {
        peer: Some(NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector {
                match_labels: Some(labels(&[("kubernetes.io/metadata.name", "fleet-system")])),
                ..Default::default()
            }),
            pod_selector: Some(LabelSelector {
                match_labels: Some(labels(&[("app.kubernetes.io/name", "fleet-operator")])),
                ..Default::default()
            }),
            ..Default::default()
        }),
    };
    let env = TestEnv::start_as("netpol", admin.clone(), admin, identity).await?;
    env.example_secrets().await?;
    let mut manifest: serde_json::Value = serde_yaml::from_str(&example_in(&env.namespace)?)?;
    // The harness database's port (the pipeline really connects to it).
    let db_port = manifest["spec"]["database"]["port"]
        .as_i64()
        .unwrap_or(5432) as i32;
    manifest["spec"]["database"]["peer"] = serde_json::json!({
        "podSelector": {"matchLabels": {"app": "timescaledb"}},
        "ingressPolicy": {
            "enabled": true,
            "extraIngress": [{"from": [{"podSelector": {"matchLabels": {"app": "grafana"}}}],
                              "ports": [{"port": db_port}]}]
        }
    });
    manifest["spec"]["webhook"]["allowFrom"] = serde_json::json!([
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    ]);
    ensure!(env.apply(&serde_json::to_string(&manifest)?)?.success);
    wait_ready(&env, PIPELINE).await?;

    // The policies and pod labels exactly as stored in the apiserver.
    let policies = env
        .api::<NetworkPolicy>()
        .list(&ListParams::default())
        .await?
        .items;
    ensure!(policies.len() == 4, "{:?}", names(&policies));
    let cj = env.api::<CronJob>().get("kenya-fleet-positions").await?;
    let ingest_labels = cj
        .spec
        .job_template
        .spec
        .and_then(|s| s.template.metadata)
        .and_then(|m| m.labels)
        .unwrap_or_default();
    let dep = env.api::<Deployment>().get("kenya-fleet-webhook").await?;
    let webhook_labels = dep
        .spec
        .and_then(|s| s.template.metadata)
        .and_then(|m| m.labels)
        .unwrap_or_default();

    let ns = env.namespace.as_str();
    let ingest = Endpoint::pod("ingest pod", ns, ingest_labels, "10.244.0.10");
    let webhook = Endpoint::pod("webhook pod", ns, webhook_labels, "10.244.0.11");
    let db = Endpoint::pod(
        "database pod",
        ns,
        labels(&[("app", "timescaledb")]),
        "10.244.0.20",
    );
    let grafana = Endpoint::pod(
        "grafana (extra peer)",
        ns,
        labels(&[("app", "grafana")]),
        "10.244.0.30",
    );
    let other = Endpoint::pod("other pod", ns, labels(&[("app", "other")]), "10.244.0.40");
    let operator = Endpoint::pod(
        "operator",
        "fleet-system",
        labels(&[("app.kubernetes.io/name", "fleet-operator")]),
        "10.244.1.5",
    );
    let ingress_ctl = Endpoint::pod(
        "ingress controller",
        "ingress-nginx",
        labels(&[("app", "nginx")]),
        "10.244.2.5",
    );
    let dns = Endpoint::pod(
        "kube-dns",
        "kube-system",
        labels(&[("k8s-app", "kube-dns")]),
        "10.244.3.5",
    );
    let internet = Endpoint::external("internet host", "203.0.113.7");

    let table: &[(&Endpoint, &Endpoint, i32, &str, bool)] = &[
        (&ingest, &db, db_port, "TCP", true),
        (&webhook, &db, db_port, "TCP", true),
        (&grafana, &db, db_port, "TCP", true),
        (&operator, &db, db_port, "TCP", true),
        (&other, &db, db_port, "TCP", false),
        (&ingest, &db, 22, "TCP", false),
        (&ingress_ctl, &webhook, 8080, "TCP", true),
        (&other, &webhook, 8080, "TCP", false),
        (&internet, &webhook, 8080, "TCP", false),
        (&ingest, &dns, 53, "UDP", true),
        (&ingest, &dns, 53, "TCP", true),
        (&webhook, &dns, 53, "UDP", true),
        (&ingest, &internet, 443, "TCP", true),
        (&ingest, &internet, 8080, "TCP", true),
        (&ingest, &internet, 22, "TCP", false),
        (&webhook, &internet, 443, "TCP", false),
        (&ingest, &other, 9000, "TCP", false),
        (&other, &ingest, 8080, "TCP", false),
    ];
    let mut wrong = Vec::new();
    for (src, dst, port, proto, expect) in table {
        let got = allowed(&policies, src, dst, *port, proto);
        println!(
            "{:>22} -> {:<22} {port:>5}/{proto}: {}",
            src.name,
            dst.name,
            if got { "allowed" } else { "denied" }
        );
        if got != *expect {
            wrong.push(format!(
                "{} -> {} {port}/{proto}: got {got}",
                src.name, dst.name
            ));
        }
    }
    env.cleanup().await;
    ensure!(
        wrong.is_empty(),
        "truth table mismatches:\n{}",
        wrong.join("\n")
    );
    Ok(())
}

#[tokio::test]
async fn runs_under_the_minimal_rbac_and_writes_nothing_in_steady_state() -> Result<()> {
    // The operator's identity: a ServiceAccount bound to charts/rbac/operator-rbac.yaml.
    let sa_ns = format!("e2e-rbac-op-{}", std::process::id());
    ensure!(kubectl(&["create", "namespace", &sa_ns])?.success);
    ensure!(kubectl(&["-n", &sa_ns, "create", "serviceaccount", "fleet-operator"])?.success);
    let rbac = std::fs::read_to_string(repo_root().join("charts/rbac/operator-rbac.yaml"))?;
    let out = kubectl_stdin(&["-n", &sa_ns, "apply", "-f", "-"], &rbac)?;
    ensure!(out.success, "{}", out.stderr);
    let binding = format!("fleet-operator-{sa_ns}");
    let out = kubectl(&[
        "create",
        "clusterrolebinding",
        &binding,
        "--clusterrole=fleet-operator",
        &format!("--serviceaccount={sa_ns}:fleet-operator"),
    ])?;
    ensure!(out.success, "{}", out.stderr);
    let token = kubectl(&[
        "-n",
        &sa_ns,
        "create",
        "token",
        "fleet-operator",
        "--duration=1h",
    ])?;
    ensure!(token.success, "{}", token.stderr);
    let operator_client = client_with_token(token.stdout.trim()).await?;
    let user = format!("system:serviceaccount:{sa_ns}:fleet-operator");

    // The operator cannot do more than the role says.
    let denied = kubectl(&["auth", "can-i", "delete", "fleetpipelines", "--as", &user])?;
    ensure!(
        denied.stdout.trim() == "no",
        "operator must not delete pipelines"
    );
    // It writes the login Secrets it owns (create, patch) but never deletes
    // or replaces a Secret: owned ones go with the pipeline.
    for verb in ["delete", "update", "deletecollection"] {
        let denied = kubectl(&["auth", "can-i", verb, "secrets", "--as", &user])?;
        ensure!(
            denied.stdout.trim() == "no",
            "operator must not {verb} secrets"
        );
    }

    let admin = client().await?;
    let env =
        TestEnv::start_as("rbac", admin, operator_client, OperatorIdentity::default()).await?;
    env.example_secrets().await?;
    let mark = audit_mark()?;
    ensure!(env.apply(&example_in(&env.namespace)?)?.success);
    wait_ready(&env, PIPELINE).await?;
    // Settle: the status write triggers one more reconcile.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let create_writes = audit_writes_since(mark, &user)?;
    println!("writes to create the pipeline: {}", create_writes.len());
    let failed = create_writes.iter().filter(|e| e.verb.is_empty()).count();
    ensure!(failed == 0);
    // 2 ServiceAccounts + ConfigMap + 3 NetworkPolicies + 7 CronJobs +
    // Deployment + Service + PDB = 16 applies, 4 login Secrets, the
    // finalizer, plus status patches and Events.
    let patches = |resource: &str| {
        create_writes
            .iter()
            .filter(|e| {
                e.verb == "patch"
                    && e.object_ref.as_ref().is_some_and(|o| {
                        o.subresource.is_none()
                            && match resource {
                                "children" => !["events", "secrets", "fleetpipelines"]
                                    .contains(&o.resource.as_str()),
                                r => o.resource == r,
                            }
                    })
            })
            .count()
    };
    let applies = patches("children");
    ensure!(
        applies == 16,
        "expected exactly one apply per child, saw {applies}"
    );
    let secrets = patches("secrets");
    ensure!(
        secrets == 4,
        "expected one write per login Secret, saw {secrets}"
    );
    let finalizer = patches("fleetpipelines");
    ensure!(
        finalizer == 1,
        "expected one finalizer patch, saw {finalizer}"
    );

    // Steady state: several resyncs (every 2 s in tests), zero writes at the apiserver.
    let steady = audit_mark()?;
    let reconciles_before = env.writes.reconciles.get();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let reconciles = env.writes.reconciles.get() - reconciles_before;
    let steady_writes = audit_writes_since(steady, &user)?;
    ensure!(reconciles >= 3, "only {reconciles} reconciles");
    ensure!(
        steady_writes.is_empty(),
        "steady state wrote: {:?}",
        steady_writes
            .iter()
            .map(|e| (&e.verb, &e.request_uri))
            .collect::<Vec<_>>()
    );
    println!("writes in {reconciles} steady-state reconciles: 0");

    // One spec change: only the CronJob, the ConfigMap (schedules are in the
    // rendered config) and the status change.
    let change = audit_mark()?;
    let out = env.kubectl(&[
        "patch",
        "fp",
        PIPELINE,
        "--type=merge",
        "-p",
        r#"{"spec":{"jobs":{"alarms":{"schedule":"*/9 * * * *"}}}}"#,
    ])?;
    ensure!(out.success, "{}", out.stderr);
    wait_for("CronJob updated", TIMEOUT, || async {
        let cj = env.api::<CronJob>().get("kenya-fleet-alarms").await?;
        Ok((cj.spec.schedule == "*/9 * * * *").then_some(()))
    })
    .await?;
    wait_ready(&env, PIPELINE).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let change_writes = audit_writes_since(change, &user)?;
    let uris: Vec<_> = change_writes
        .iter()
        .map(|e| e.request_uri.clone())
        .collect();
    println!(
        "writes for one schedule change: {} {uris:?}",
        change_writes.len()
    );
    ensure!(
        change_writes.len() == 3,
        "one spec change: CronJob, ConfigMap, status; wrote {uris:?}"
    );

    env.cleanup().await;
    let _ = kubectl(&["delete", "clusterrolebinding", &binding]);
    let _ = kubectl(&["delete", "namespace", &sa_ns, "--wait=false"]);
    Ok(())
}

#[tokio::test]
async fn database_is_migrated_and_a_second_claim_is_refused() -> Result<()> {
    let env = TestEnv::start("database").await?;
    env.example_secrets().await?;
    let manifest: serde_json::Value = serde_yaml::from_str(&example_in(&env.namespace)?)?;
    ensure!(env.apply(&serde_json::to_string(&manifest)?)?.success);
    let fp = wait_ready(&env, PIPELINE).await?;
    let status = fp.status.clone().unwrap_or_default();
    ensure!(
        condition(&fp, "DatabaseReady").map(|c| (c.0, c.1))
            == Some(("True".into(), "Migrated".into())),
        "{:?}",
        condition(&fp, "DatabaseReady")
    );
    ensure!(
        status.schema_version.is_some_and(|v| v > 0),
        "schemaVersion {:?}",
        status.schema_version
    );
    ensure!(
        status.ingest.as_deref() == Some("Unknown"),
        "nothing has run yet: {:?}",
        status.ingest
    );

    // The schema and the endpoints this pipeline schedules, in the real database.
    let db = manifest["spec"]["database"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let psql = |sql: &str| -> Result<String> {
        let env = fleet_e2e::harness()?;
        let url = env
            .database_url()?
            .rsplit_once('/')
            .map(|(b, _)| format!("{b}/{db}"))
            .unwrap_or_default();
        let out = std::process::Command::new("psql")
            .arg(url)
            .args(["-qAt", "-c", sql])
            .output()?;
        ensure!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    ensure!(psql("SELECT count(*) FROM tracksolid.pipeline_endpoints WHERE active")? == "7");
    ensure!(
        psql(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'tracksolid' AND table_name IN ('positions','alarms','ingestion_log','push_events','devices')"
        )? == "5"
    );

    // Turning a job off makes its endpoint inactive (it stops counting for health).
    patch(&env, r#"{"spec":{"jobs":{"trips":{"enabled":false}}}}"#)?;
    wait_for("trips inactive", TIMEOUT, || async {
        Ok(
            (psql("SELECT active FROM tracksolid.pipeline_endpoints WHERE endpoint = 'trips'")?
                == "f")
                .then_some(()),
        )
    })
    .await?;

    // A second pipeline claiming the same database and schema is refused.
    let mut second = manifest.clone();
    second["metadata"]["name"] = "intruder".into();
    ensure!(env.apply(&serde_json::to_string(&second)?)?.success);
    let intruder = wait_for("the second claim refused", TIMEOUT, || async {
        let fp = env.pipelines().get("intruder").await?;
        Ok(condition(&fp, "DatabaseReady")
            .filter(|c| c.1 == "SchemaClaimed")
            .map(|_| fp))
    })
    .await?;
    let ready = condition(&intruder, "Ready").unwrap_or_default();
    ensure!(
        ready.0 == "False" && ready.2.contains(&format!("{}/{PIPELINE}", env.namespace)),
        "{ready:?}"
    );
    ensure!(
        psql("SELECT name FROM tracksolid.fleetops_claim")? == PIPELINE,
        "the claim is unchanged"
    );
    let first = env.pipelines().get(PIPELINE).await?;
    ensure!(
        condition(&first, "Ready").map(|c| c.0) == Some("True".into()),
        "the owner stays Ready"
    );
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn unreachable_database_is_reported_and_the_rest_still_converges() -> Result<()> {
    let env = TestEnv::start("db-down").await?;
    env.example_secrets().await?;
    let mut manifest: serde_json::Value = serde_yaml::from_str(&example_in(&env.namespace)?)?;
    // Nothing listens on port 9 of loopback.
    manifest["spec"]["database"]["port"] = 9.into();
    ensure!(env.apply(&serde_json::to_string(&manifest)?)?.success);
    let fp = wait_for("DatabaseReady=False Unreachable", TIMEOUT, || async {
        let fp = env.pipelines().get(PIPELINE).await?;
        Ok(condition(&fp, "DatabaseReady")
            .filter(|c| c.0 == "False" && c.1 == "Unreachable")
            .map(|_| fp))
    })
    .await?;
    ensure!(
        condition(&fp, "Ready").map(|c| (c.0, c.1)) == Some(("False".into(), "Unreachable".into()))
    );
    ensure!(
        list::<CronJob>(&env).await?.len() == 7,
        "the CronJobs converge regardless"
    );
    env.cleanup().await;
    Ok(())
}
