//! The FleetPipeline controller: one reconcile per pipeline, watching the
//! pipelines and every kind they own.

use crate::apply::apply;
use crate::crd::{FleetPipeline, FleetPipelineStatus};
use crate::desired::{self, DesiredPipeline};
use crate::error::{Error, Result};
use crate::metrics::{ErrorLabels, Metrics};
use crate::resources::{self, meta};
use crate::status::{self, Outcome};
use futures::StreamExt;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tracing::{Instrument, info, info_span, warn};

/// How the operator process was configured.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Image for the workloads when a pipeline names none.
    pub workload_image: String,
    /// Watch one namespace only (None: all namespaces).
    pub namespace: Option<String>,
    /// Periodic resync of each pipeline (drift in kinds not watched, status).
    pub resync: Duration,
    /// Delay before retrying a failed reconcile.
    pub retry: Duration,
}

pub struct Context {
    pub client: Client,
    pub settings: Settings,
    pub metrics: Metrics,
}

fn scoped<K>(client: Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    }
}

/// Reconcile one pipeline: dereference → validate → build → apply → status.
pub async fn reconcile(fp: Arc<FleetPipeline>, ctx: Arc<Context>) -> Result<Action> {
    let span = info_span!(
        "reconcile",
        pipeline = %fp.name_any(),
        namespace = fp.namespace().unwrap_or_default(),
        generation = fp.metadata.generation.unwrap_or_default()
    );
    async move {
        let started = Instant::now();
        ctx.metrics.reconciles.inc();
        let result = reconcile_inner(&fp, &ctx).await;
        ctx.metrics
            .duration
            .observe(started.elapsed().as_secs_f64());
        if let Err(e) = &result {
            ctx.metrics
                .failures
                .get_or_create(&ErrorLabels {
                    error: e.metric_label().to_owned(),
                })
                .inc();
        }
        result
    }
    .instrument(span)
    .await
}

async fn reconcile_inner(fp: &FleetPipeline, ctx: &Context) -> Result<Action> {
    let ns = fp.namespace().ok_or(Error::MissingMetadata("namespace"))?;
    let owner = meta::owner_reference(fp).ok_or(Error::MissingMetadata("uid"))?;
    if fp.metadata.deletion_timestamp.is_some() {
        // Children go with the garbage collector through their ownerReferences.
        return Ok(Action::await_change());
    }
    match apply_children(fp, ctx, &ns, &owner).await {
        Ok((desired, cron_jobs)) => {
            let outcome = Outcome::Reconciled {
                desired: &desired,
                cron_jobs: &cron_jobs,
            };
            write_status(fp, ctx, &ns, &outcome).await?;
            Ok(Action::requeue(ctx.settings.resync))
        }
        Err(err) => {
            let outcome = Outcome::Failed {
                reason: err.reason(),
                message: err.to_string(),
            };
            warn!(error = %err, "reconcile failed");
            if let Err(status_err) = write_status(fp, ctx, &ns, &outcome).await {
                warn!(error = %status_err, "could not record the failure in status");
            }
            match err {
                // Nothing changes until the user edits the spec.
                Error::InvalidSpec(_) => Ok(Action::await_change()),
                other => Err(other),
            }
        }
    }
}

/// Validate, build and apply every owned object; prune what is no longer
/// wanted. Returns the effective pipeline and the live CronJobs seen.
async fn apply_children(
    fp: &FleetPipeline,
    ctx: &Context,
    ns: &str,
    owner: &OwnerReference,
) -> Result<(DesiredPipeline, Vec<CronJob>)> {
    let desired = desired::resolve(fp, &ctx.settings.workload_image)?;
    let children = resources::build(&desired, owner);
    let client = &ctx.client;

    // Dereference what exists now.
    let sa_api: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let cm_api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let cj_api: Api<CronJob> = Api::namespaced(client.clone(), ns);
    let live_cron_jobs = cj_api
        .list(&ListParams::default().labels(&meta::instance_selector(&desired.name)))
        .await?
        .items;

    for sa in children.service_accounts {
        let live = sa_api.get_opt(&sa.name_any()).await?;
        if apply(&sa_api, sa, live.as_ref()).await? {
            ctx.metrics.wrote("ServiceAccount");
        }
    }
    let live_cm = cm_api.get_opt(&children.config_map.name_any()).await?;
    if apply(&cm_api, children.config_map, live_cm.as_ref()).await? {
        ctx.metrics.wrote("ConfigMap");
    }
    let wanted: Vec<String> = children.cron_jobs.iter().map(|c| c.name_any()).collect();
    for cj in children.cron_jobs {
        let live = live_cron_jobs
            .iter()
            .find(|l| l.name_any() == cj.name_any());
        if apply(&cj_api, cj, live).await? {
            ctx.metrics.wrote("CronJob");
        }
    }

    // Prune CronJobs of jobs turned off: ours by label and owner uid only.
    let uid = owner.uid.as_str();
    for orphan in live_cron_jobs
        .iter()
        .filter(|c| meta::is_owned_by(&c.metadata, uid) && !wanted.contains(&c.name_any()))
    {
        info!(cron_job = %orphan.name_any(), "deleting CronJob of a disabled job");
        match cj_api
            .delete(&orphan.name_any(), &DeleteParams::background())
            .await
        {
            Ok(_) => ctx.metrics.wrote("CronJob"),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok((desired, live_cron_jobs))
}

/// Patch `status` only when it differs from what is stored.
async fn write_status(
    fp: &FleetPipeline,
    ctx: &Context,
    ns: &str,
    outcome: &Outcome<'_>,
) -> Result<()> {
    let now = Time(jiff::Timestamp::now());
    let new = status::compute(fp.status.as_ref(), fp.metadata.generation, outcome, &now);
    if fp.status.as_ref() == Some(&new) {
        return Ok(());
    }
    let api: Api<FleetPipeline> = Api::namespaced(ctx.client.clone(), ns);
    api.patch_status(
        &fp.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": to_patch(&new) })),
    )
    .await?;
    ctx.metrics.wrote("FleetPipelineStatus");
    Ok(())
}

/// A merge patch must null out fields that disappeared, not omit them.
fn to_patch(status: &FleetPipelineStatus) -> serde_json::Value {
    let mut value = serde_json::to_value(status).unwrap_or_default();
    if let Some(obj) = value.as_object_mut() {
        for key in [
            "observedGeneration",
            "conditions",
            "targets",
            "ingest",
            "schemaVersion",
            "webhook",
            "jobs",
            "roles",
        ] {
            obj.entry(key).or_insert(serde_json::Value::Null);
        }
    }
    value
}

fn error_policy(fp: Arc<FleetPipeline>, err: &Error, ctx: Arc<Context>) -> Action {
    warn!(pipeline = %fp.name_any(), error = %err, "will retry");
    Action::requeue(ctx.settings.retry)
}

/// Errors that stop the controller from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "cannot list FleetPipelines ({0}); is the CRD installed? `fleet-operator crd | kubectl apply --server-side -f -`"
    )]
    CrdMissing(kube::Error),
}

/// Run the controller until SIGTERM / Ctrl-C. `ready` turns true once the
/// caches have synced.
pub async fn run(
    client: Client,
    settings: Settings,
    metrics: Metrics,
    ready: Arc<AtomicBool>,
) -> Result<(), StartError> {
    let ns = settings.namespace.clone();
    let pipelines: Api<FleetPipeline> = scoped(client.clone(), ns.as_deref());
    pipelines
        .list(&ListParams::default().limit(1))
        .await
        .map_err(StartError::CrdMissing)?;

    let owned = watcher::Config::default().labels(&format!(
        "{}={}",
        meta::LABEL_MANAGED_BY,
        meta::MANAGED_BY
    ));
    let controller = Controller::new(pipelines, watcher::Config::default())
        .owns(
            scoped::<CronJob>(client.clone(), ns.as_deref()),
            owned.clone(),
        )
        .owns(
            scoped::<ConfigMap>(client.clone(), ns.as_deref()),
            owned.clone(),
        )
        .owns(
            scoped::<ServiceAccount>(client.clone(), ns.as_deref()),
            owned,
        )
        .shutdown_on_signal();
    let store = controller.store();
    tokio::spawn(async move {
        if store.wait_until_ready().await.is_ok() {
            ready.store(true, Ordering::SeqCst);
            info!("caches synced; ready");
        }
    });
    let ctx = Arc::new(Context {
        client,
        settings,
        metrics,
    });
    info!(
        namespace = ns.as_deref().unwrap_or("<all>"),
        "controller started"
    );
    controller
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((obj, _)) => tracing::debug!(pipeline = %obj.name, "reconciled"),
                Err(e) => tracing::debug!(error = %e, "reconcile error"),
            }
        })
        .await;
    info!("controller stopped");
    Ok(())
}
