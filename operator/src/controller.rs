//! The FleetPipeline controller: one reconcile per pipeline, watching the
//! pipelines, every kind they own, and the Secrets they reference.

use crate::apply::{Writes, sync};
use crate::crd::{FleetPipeline, FleetPipelineStatus};
use crate::credentials;
use crate::database;
use crate::db::{DbError, PipelineRef};
use crate::dereference;
use crate::desired::{self, DesiredPipeline};
use crate::error::{Error, Result};
use crate::metrics::{ErrorLabels, Metrics};
use crate::resources::{self, OperatorIdentity, meta};
use crate::status::{self, Observed, Outcome};
use futures::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::api::{ListParams, Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Error as FinalizerError, Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{Instrument, info, info_span, warn};

/// Held on every FleetPipeline until its database roles are dropped (or
/// `deletionPolicy: Retain` says to keep them).
pub const FINALIZER: &str = "fleetops.dev/database-cleanup";

/// How the operator process was configured.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Image for the workloads when a pipeline names none.
    pub workload_image: String,
    /// Watch one namespace only (None: all namespaces).
    pub namespace: Option<String>,
    /// Periodic resync of each pipeline.
    pub resync: Duration,
    /// Delay before retrying a failed reconcile.
    pub retry: Duration,
    /// Who the operator is, for policies that must admit it.
    pub identity: OperatorIdentity,
    /// Name reported on Events.
    pub reporter: String,
}

pub struct Context {
    pub client: Client,
    pub settings: Settings,
    pub metrics: Metrics,
    pub recorder: Recorder,
    /// Per pipeline uid: the resourceVersion we patched status *from*, and the
    /// status we wrote. A reconcile that still sees that old resourceVersion
    /// runs on a cache that has not caught up with our own write; comparing
    /// with what we wrote avoids writing the same status twice.
    pub written_status: Mutex<HashMap<String, (String, FleetPipelineStatus)>>,
    /// The controller's cache of pipelines (to forget deleted ones).
    pub store: Store<FleetPipeline>,
}

fn scoped<K>(client: Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = NamespaceResourceScope>,
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
        // Failures are counted where they are handled, in reconcile_inner.
        let ns = fp.namespace().ok_or(Error::MissingMetadata("namespace"))?;
        let api: Api<FleetPipeline> = Api::namespaced(ctx.client.clone(), &ns);
        let result = finalizer(&api, FINALIZER, fp, |event| async {
            match event {
                FinalizerEvent::Apply(fp) => reconcile_inner(&fp, &ctx).await,
                FinalizerEvent::Cleanup(fp) => cleanup(&fp, &ctx).await,
            }
        })
        .await
        .map_err(from_finalizer);
        ctx.metrics
            .duration
            .observe(started.elapsed().as_secs_f64());
        result
    }
    .instrument(span)
    .await
}

async fn reconcile_inner(fp: &FleetPipeline, ctx: &Context) -> Result<Action> {
    let ns = fp.namespace().ok_or(Error::MissingMetadata("namespace"))?;
    let owner = meta::owner_reference(fp).ok_or(Error::MissingMetadata("uid"))?;
    match converge(fp, ctx, &ns, &owner).await {
        Ok(observed) => {
            let desired = &observed.desired;
            let outcome = Outcome::Reconciled {
                desired,
                observed: &observed.observed,
            };
            write_status(fp, ctx, &ns, &outcome).await?;
            // A database problem is retried on a timer its kind asks for:
            // soon when transient, slowly when a person must act (not a hot
            // loop either way).
            let retry = match &observed.observed.database {
                Some(Err(e)) => Some(e.requeue_after()),
                Some(Ok(d)) => d.roles.requeue_after(),
                None => None,
            };
            Ok(Action::requeue(retry.map_or(ctx.settings.resync, |r| {
                r.min(ctx.settings.resync)
            })))
        }
        Err(err) => {
            count_failure(ctx, &err);
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
                // The Secret watch wakes us when it appears; resync as a fallback.
                Error::SecretMissing { .. } => Ok(Action::requeue(ctx.settings.resync)),
                other => Err(other),
            }
        }
    }
}

struct Converged {
    desired: DesiredPipeline,
    observed: Observed,
}

/// Validate, dereference, build and apply every owned object; prune what is
/// no longer wanted.
async fn converge(
    fp: &FleetPipeline,
    ctx: &Context,
    ns: &str,
    owner: &OwnerReference,
) -> Result<Converged> {
    let desired = desired::resolve(fp, &ctx.settings.workload_image)?;
    let secrets = dereference::check_secrets(&ctx.client, ns, &desired.secrets).await?;
    let admin_secret = &fp.spec.database.admin_secret_ref.name;
    let children = resources::build(&desired, owner, &ctx.settings.identity);

    let selector = meta::instance_selector(&desired.name);
    let uid = owner.uid.as_str();
    let client = &ctx.client;
    let mut writes = Writes::default();
    macro_rules! sync_kind {
        ($kind:ty, $objects:expr) => {{
            let api: Api<$kind> = Api::namespaced(client.clone(), ns);
            let (live, w) = sync(&api, $objects, &selector, uid).await?;
            count(ctx, <$kind as k8s_openapi::Resource>::KIND, w);
            writes.applied += w.applied;
            writes.deleted += w.deleted;
            live
        }};
    }
    // Order: identities and config before the workloads that use them;
    // the default-deny policy before pods exist.
    sync_kind!(ServiceAccount, children.service_accounts);
    sync_kind!(ConfigMap, children.config_maps);
    // The workloads' database logins before the workloads that mount them.
    let logins = credentials::ensure(client, &desired, owner, &desired.database.rotation).await?;
    for _ in &logins.written {
        ctx.metrics.wrote("Secret");
    }
    if !logins.rotated.is_empty() {
        publish(
            ctx,
            fp,
            EventType::Normal,
            "CredentialsRotated",
            format!(
                "new passwords written for {} role(s); the old ones stop working once the roles are altered",
                logins.rotated.len()
            ),
        )
        .await;
    }
    sync_kind!(NetworkPolicy, children.network_policies);
    sync_kind!(CronJob, children.cron_jobs);
    let deployments = sync_kind!(Deployment, children.deployments);
    sync_kind!(Service, children.services);
    sync_kind!(PodDisruptionBudget, children.pod_disruption_budgets);
    sync_kind!(Ingress, children.ingresses);
    if writes != Writes::default() {
        info!(
            applied = writes.applied,
            deleted = writes.deleted,
            "owned objects converged"
        );
    }
    // The database after the cluster objects: a database outage never keeps
    // the CronJobs and policies from converging.
    let db = match dereference::admin_login(&secrets, admin_secret) {
        Some(login) => {
            let pipeline = PipelineRef::new(ns, &desired.name, uid);
            let started = Instant::now();
            let result = database::converge(&desired, &login, &pipeline, &logins.passwords)
                .instrument(info_span!("database"))
                .await;
            ctx.metrics
                .database_duration
                .observe(started.elapsed().as_secs_f64());
            result
        }
        None => Err(DbError::AuthFailed(format!(
            "Secret {admin_secret:?} has no username or password"
        ))),
    };
    if let Err(e) = &db {
        warn!(reason = e.reason(), error = %e, "database not ready");
    }
    Ok(Converged {
        desired,
        observed: Observed {
            webhook: deployments.into_iter().next(),
            database: Some(db),
        },
    })
}

/// The finalizer's half: on deletion, drop the pipeline's roles unless
/// `deletionPolicy: Retain`. Returning Ok removes the finalizer, so every
/// failure is an error: the finalizer stays, status and an Event say why,
/// and the cleanup is retried. Escape hatch when the database is gone for
/// good: set `spec.database.deletionPolicy: Retain`.
async fn cleanup(fp: &FleetPipeline, ctx: &Context) -> Result<Action> {
    let ns = fp.namespace().ok_or(Error::MissingMetadata("namespace"))?;
    let uid = fp
        .metadata
        .uid
        .clone()
        .ok_or(Error::MissingMetadata("uid"))?;
    let result = async {
        let desired = desired::resolve(fp, &ctx.settings.workload_image)?;
        if desired.database.retain {
            info!("deletionPolicy Retain: the database roles and data are kept");
            return Ok(());
        }
        let admin = &fp.spec.database.admin_secret_ref.name;
        let required = desired
            .secrets
            .iter()
            .filter(|r| r.name == *admin)
            .cloned()
            .collect::<Vec<_>>();
        let secrets = dereference::check_secrets(&ctx.client, &ns, &required).await?;
        let login = dereference::admin_login(&secrets, admin).ok_or_else(|| {
            DbError::AuthFailed(format!("Secret {admin:?} has no username or password"))
        })?;
        let pipeline = PipelineRef::new(&ns, &desired.name, &uid);
        let report = database::cleanup(&desired.config.database, &login, &pipeline).await?;
        if !report.is_complete() {
            let failed: Vec<String> = report
                .errors
                .iter()
                .map(|e| format!("{}: {}", e.role, e.message()))
                .collect();
            return Err(Error::CleanupIncomplete(failed.join("; ")));
        }
        info!(
            dropped = report.dropped.len(),
            absent = report.absent.len(),
            "database roles dropped"
        );
        Ok(())
    }
    .await;
    match result {
        Ok(()) => Ok(Action::await_change()),
        Err(err) => {
            count_failure(ctx, &err);
            let message = format!(
                "deletion waits: the database roles were not dropped ({err}); set spec.database.deletionPolicy: Retain to delete without dropping them"
            );
            warn!(error = %err, "cleanup failed; the finalizer stays");
            let outcome = Outcome::Failed {
                reason: err.reason(),
                message,
            };
            if let Err(status_err) = write_status(fp, ctx, &ns, &outcome).await {
                warn!(error = %status_err, "could not record the failure in status");
            }
            Err(err)
        }
    }
}

/// The finalizer helper's errors, as ours.
fn from_finalizer(e: FinalizerError<Error>) -> Error {
    match e {
        FinalizerError::ApplyFailed(e) | FinalizerError::CleanupFailed(e) => e,
        FinalizerError::AddFinalizer(e) | FinalizerError::RemoveFinalizer(e) => Error::Kube(e),
        FinalizerError::UnnamedObject => Error::MissingMetadata("name"),
        FinalizerError::InvalidFinalizer => Error::MissingMetadata("finalizer"),
    }
}

async fn publish(ctx: &Context, fp: &FleetPipeline, type_: EventType, reason: &str, note: String) {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note),
        action: "Reconcile".to_owned(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &fp.object_ref(&())).await {
        warn!(error = %e, "could not publish an Event");
    }
}

/// `fleet_operator_reconcile_errors_total{error=...}`.
fn count_failure(ctx: &Context, err: &Error) {
    ctx.metrics
        .failures
        .get_or_create(&ErrorLabels {
            error: err.metric_label().to_owned(),
        })
        .inc();
}

fn count(ctx: &Context, kind: &str, w: Writes) {
    for _ in 0..(w.applied + w.deleted) {
        ctx.metrics.wrote(kind);
    }
}

/// Patch `status` only when it differs from what is stored; publish an Event
/// when the Ready condition changes.
async fn write_status(
    fp: &FleetPipeline,
    ctx: &Context,
    ns: &str,
    outcome: &Outcome<'_>,
) -> Result<()> {
    let now = Time(jiff::Timestamp::now());
    let uid = fp.metadata.uid.clone().unwrap_or_default();
    let seen_rv = fp.metadata.resource_version.clone().unwrap_or_default();
    let ours = ctx
        .written_status
        .lock()
        .ok()
        .and_then(|m| m.get(&uid).cloned())
        .filter(|(rv, _)| *rv == seen_rv)
        .map(|(_, s)| s);
    let current = ours.as_ref().or(fp.status.as_ref());
    let new = status::compute(current, fp.metadata.generation, outcome, &now);
    if current == Some(&new) {
        return Ok(());
    }
    let api: Api<FleetPipeline> = Api::namespaced(ctx.client.clone(), ns);
    api.patch_status(
        &fp.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status::to_merge_patch(&new) })),
    )
    .await?;
    ctx.metrics.wrote("FleetPipelineStatus");
    if let Ok(mut map) = ctx.written_status.lock() {
        map.insert(uid, (seen_rv, new.clone()));
        let live: std::collections::HashSet<String> = ctx
            .store
            .state()
            .iter()
            .filter_map(|p| p.metadata.uid.clone())
            .collect();
        map.retain(|uid, _| live.contains(uid));
    }
    if let Some(change) = status::ready_change(current, &new) {
        let type_ = if change.ready {
            EventType::Normal
        } else {
            EventType::Warning
        };
        publish(ctx, fp, type_, &change.reason, change.message).await;
    }
    Ok(())
}

fn error_policy(fp: Arc<FleetPipeline>, err: &Error, ctx: Arc<Context>) -> Action {
    warn!(pipeline = %fp.name_any(), error = %err, "will retry");
    Action::requeue(ctx.settings.retry)
}

/// Pipelines in `store` that reference the Secret `name` in `namespace`, or
/// own it (their database login Secrets).
fn pipelines_referencing(
    store: &Store<FleetPipeline>,
    namespace: Option<String>,
    name: &str,
    owner_uids: &[&str],
) -> Vec<ObjectRef<FleetPipeline>> {
    store
        .state()
        .into_iter()
        .filter(|fp| {
            fp.namespace() == namespace
                && (dereference::references_secret(fp, name)
                    || fp
                        .metadata
                        .uid
                        .as_deref()
                        .is_some_and(|uid| owner_uids.contains(&uid)))
        })
        .map(|fp| ObjectRef::from_obj(&*fp))
        .collect()
}

/// Errors that stop the controller from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "cannot list FleetPipelines ({0}); is the CRD installed? `fleet-operator crd | kubectl apply --server-side -f -`"
    )]
    CrdMissing(kube::Error),
}

fn owned_config() -> watcher::Config {
    watcher::Config::default().labels(&format!("{}={}", meta::LABEL_MANAGED_BY, meta::MANAGED_BY))
}

fn owns<K>(
    controller: Controller<FleetPipeline>,
    client: &Client,
    namespace: Option<&str>,
) -> Controller<FleetPipeline>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Serialize
        + Debug
        + Send
        + Sync
        + 'static,
{
    controller.owns(scoped::<K>(client.clone(), namespace), owned_config())
}

/// Run the controller until `shutdown` resolves. `ready` turns true once the
/// caches have synced.
pub async fn run(
    client: Client,
    settings: Settings,
    metrics: Metrics,
    ready: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), StartError> {
    let ns = settings.namespace.clone();
    let pipelines: Api<FleetPipeline> = scoped(client.clone(), ns.as_deref());
    pipelines
        .list(&ListParams::default().limit(1))
        .await
        .map_err(StartError::CrdMissing)?;

    let mut controller = Controller::new(pipelines, watcher::Config::default());
    controller = owns::<ServiceAccount>(controller, &client, ns.as_deref());
    controller = owns::<ConfigMap>(controller, &client, ns.as_deref());
    controller = owns::<CronJob>(controller, &client, ns.as_deref());
    controller = owns::<Deployment>(controller, &client, ns.as_deref());
    controller = owns::<Service>(controller, &client, ns.as_deref());
    controller = owns::<PodDisruptionBudget>(controller, &client, ns.as_deref());
    controller = owns::<Ingress>(controller, &client, ns.as_deref());
    controller = owns::<NetworkPolicy>(controller, &client, ns.as_deref());

    // Referenced Secrets: metadata only (their data never enters the cache).
    let store = controller.store();
    let secrets = watcher(
        scoped::<PartialObjectMeta<Secret>>(client.clone(), ns.as_deref()),
        watcher::Config::default(),
    )
    .touched_objects();
    let mapper_store = store.clone();
    let controller = controller
        .watches_stream(secrets, move |secret| {
            let owners: Vec<&str> = secret
                .metadata
                .owner_references
                .iter()
                .flatten()
                .filter(|r| r.kind == "FleetPipeline")
                .map(|r| r.uid.as_str())
                .collect();
            pipelines_referencing(
                &mapper_store,
                secret.namespace(),
                &secret.name_any(),
                &owners,
            )
        })
        .graceful_shutdown_on(shutdown);

    let ready_store = store.clone();
    tokio::spawn(async move {
        // The store's readiness future wakes only its last poller (the
        // controller's own runner also waits on it), so poll it on a timer.
        loop {
            match tokio::time::timeout(Duration::from_millis(250), ready_store.wait_until_ready())
                .await
            {
                Ok(Ok(())) => {
                    ready.store(true, Ordering::SeqCst);
                    info!("caches synced; ready");
                    break;
                }
                Ok(Err(_)) => break,
                Err(_) => continue,
            }
        }
    });
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "fleet-operator".to_owned(),
            instance: Some(settings.reporter.clone()),
        },
    );
    let ctx = Arc::new(Context {
        client,
        settings,
        metrics,
        recorder,
        written_status: Mutex::new(HashMap::new()),
        store,
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
