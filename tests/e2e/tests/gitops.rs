//! GitOps: no drift. The FleetPipeline schema carries no defaults and the
//! operator never writes `spec`, so what Git holds is exactly what the
//! apiserver stores, and Argo CD (server-side apply and diff) or Flux see
//! nothing to correct. For every FleetPipeline in `examples/*.yaml` (not
//! `examples/argocd/`, which holds Argo CD Applications):
//!
//! 1. a server-side dry-run apply of the manifest returns its `spec`
//!    unchanged (nothing defaulted or pruned by the schema);
//! 2. after a real server-side apply and a reconcile by the operator, the
//!    stored `spec` is still the manifest's;
//! 3. a second server-side dry-run apply of the same manifest (what an Argo CD
//!    server-side diff does) changes neither `spec` nor `metadata.generation`.

use anyhow::{Context as _, Result, ensure};
use fleet_e2e::{TestEnv, kubectl_stdin, repo_root, wait_for};
use serde::Deserialize as _;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// Argo CD's field manager, so the applies look like its syncs.
const FIELD_MANAGER: &str = "argocd-controller";

/// One FleetPipeline document of an example file.
struct Example {
    file: PathBuf,
    manifest: Value,
}

/// Every FleetPipeline in `examples/*.yaml` (top level only).
fn examples() -> Result<Vec<Example>> {
    let dir = repo_root().join("examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value =
                Value::deserialize(doc).with_context(|| format!("parsing {}", file.display()))?;
            if value["kind"] == "FleetPipeline" {
                out.push(Example {
                    file: file.clone(),
                    manifest: value,
                });
            }
        }
    }
    ensure!(!out.is_empty(), "no FleetPipeline in {}", dir.display());
    Ok(out)
}

/// `kubectl apply --server-side` of `manifest`, returning the object the
/// apiserver answered with.
fn server_side_apply(manifest: &Value, dry_run: bool) -> Result<Value> {
    let mut args = vec![
        "apply",
        "--server-side",
        "--field-manager",
        FIELD_MANAGER,
        "-o",
        "json",
        "-f",
        "-",
    ];
    if dry_run {
        args.push("--dry-run=server");
    }
    let out = kubectl_stdin(&args, &serde_json::to_string(manifest)?)?;
    ensure!(out.success, "kubectl {}: {}", args.join(" "), out.stderr);
    serde_json::from_str(&out.stdout).context("parsing kubectl's JSON")
}

fn get(env: &TestEnv, name: &str) -> Result<Value> {
    let out = env.kubectl(&["get", "fleetpipeline", name, "-o", "json"])?;
    ensure!(out.success, "kubectl get: {}", out.stderr);
    Ok(serde_json::from_str(&out.stdout)?)
}

fn ensure_same_spec(what: &str, example: &Example, got: &Value) -> Result<()> {
    let want = &example.manifest["spec"];
    ensure!(
        &got["spec"] == want,
        "{what}: spec of {} differs from the manifest\nmanifest: {}\napiserver: {}",
        example.file.display(),
        serde_json::to_string_pretty(want)?,
        serde_json::to_string_pretty(&got["spec"])?,
    );
    Ok(())
}

#[tokio::test]
async fn examples_apply_without_drift() -> Result<()> {
    let env = TestEnv::start("gitops").await?;
    env.example_secrets().await?;
    let result = check_examples(&env).await;
    env.cleanup().await;
    result
}

async fn check_examples(env: &TestEnv) -> Result<()> {
    for mut example in examples()? {
        example.manifest["metadata"]["namespace"] = Value::String(env.namespace.clone());
        let name = example.manifest["metadata"]["name"]
            .as_str()
            .context("example without metadata.name")?
            .to_owned();

        // 1. Nothing stored yet: the apiserver adds no defaults.
        let dry = server_side_apply(&example.manifest, true)?;
        ensure_same_spec("dry-run create", &example, &dry)?;
        let absent = env.kubectl(&["get", "fleetpipeline", &name])?;
        ensure!(!absent.success, "a dry run must not create {name}");

        // 2. Applied for real and reconciled: the operator left spec alone.
        let applied = server_side_apply(&example.manifest, false)?;
        ensure_same_spec("apply", &example, &applied)?;
        let generation = applied["metadata"]["generation"].clone();
        let live = wait_for(
            "the operator to record a status for the current generation",
            Duration::from_secs(60),
            || async {
                let live = get(env, &name)?;
                let observed = live["status"]["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["observedGeneration"] == generation)
                });
                Ok(observed.then_some(live))
            },
        )
        .await?;
        ensure_same_spec("after a reconcile", &example, &live)?;
        ensure!(
            live["metadata"]["generation"] == generation,
            "the operator changed the spec's generation: {} -> {}",
            generation,
            live["metadata"]["generation"]
        );

        // 3. What an Argo CD server-side diff sees: no change at all.
        let again = server_side_apply(&example.manifest, true)?;
        ensure_same_spec("dry-run re-apply", &example, &again)?;
        ensure!(
            again["metadata"]["generation"] == generation,
            "re-applying the same manifest would bump the generation: {} -> {}",
            generation,
            again["metadata"]["generation"]
        );

        // The next example may reuse the name. The examples name an
        // in-cluster database this harness does not have, so the finalizer
        // could never drop the roles: the documented escape hatch, Retain,
        // lets the pipeline go.
        let retain = env.kubectl(&[
            "patch",
            "fleetpipeline",
            &name,
            "--type=merge",
            "-p",
            r#"{"spec":{"database":{"deletionPolicy":"Retain"}}}"#,
        ])?;
        ensure!(retain.success, "kubectl patch: {}", retain.stderr);
        let deleted = env.kubectl(&["delete", "fleetpipeline", &name, "--wait=false"])?;
        ensure!(deleted.success, "kubectl delete: {}", deleted.stderr);
        fleet_e2e::wait_deleted(env, &name).await?;
    }
    Ok(())
}
