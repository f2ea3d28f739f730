//! `fleet-local-runner`: a DEVELOPMENT TOOL that stands in for the kubelet
//! on a machine that has none (the local demo, tests). It is never part of
//! the operator and has no place in a real cluster.
//!
//! It watches one namespace's CronJobs and Deployments (those the operator
//! made: label `app.kubernetes.io/managed-by=fleet-operator` or a
//! FleetPipeline owner) and runs their first container as a local process:
//! each CronJob at its schedule (timeZone, suspend, concurrencyPolicy,
//! startingDeadlineSeconds, backoffLimit, activeDeadlineSeconds), each
//! Deployment with replicas > 0 as one long-running process, restarted when
//! it exits or its pod template changes. The pod's ConfigMap and Secret
//! volumes are written to a private per-pod directory and mount paths are
//! rewritten ([`materialize`]); the image is mapped to a local directory of
//! binaries ([`ImageMap`]); container listen ports to loopback ports
//! ([`PortMap`]).
//!
//! Every run is logged, one line each, to stdout and `<work>/runs.log`;
//! process output goes to `<work>/logs/<pod>.log`.

pub mod materialize;
pub mod schedule;

use futures::StreamExt as _;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, Container, PodTemplateSpec, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Client, ResourceExt as _};
use materialize::{MaterializeError, Objects, PodIdentity, Prepared, Refs};
use schedule::{ConcurrencyPolicy, CronSpec, Decision, History, Schedule};
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::hash::{Hash as _, Hasher as _};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The label the operator puts on everything it owns.
const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "fleet-operator");
/// At most this long between SIGTERM and SIGKILL (a dev tool need not wait
/// a pod's full terminationGracePeriodSeconds).
const MAX_GRACE: Duration = Duration::from_secs(10);
/// The Job controller's backoff between failed pods: 10 s, doubling, at most 6 min.
const JOB_BACKOFF: Duration = Duration::from_secs(10);
const JOB_BACKOFF_MAX: Duration = Duration::from_secs(360);
/// Restart backoff of a Deployment's process: 1 s, doubling, at most 30 s.
const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Materialize(#[from] MaterializeError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("reading {kind} {name}: {source}")]
    Kube {
        kind: &'static str,
        name: String,
        source: kube::Error,
    },
    #[error(
        "image {image:?} has no local mapping: pass --image NAME=DIR (the directory of its binaries) or NAME=host"
    )]
    UnmappedImage { image: String },
    #[error("program {program:?} of image {image:?} is not in {dir}")]
    NoProgram {
        image: String,
        program: String,
        dir: String,
    },
    #[error("{0} has no pod template or container")]
    NoContainer(String),
    #[error("bad {flag} {value:?}: {reason}")]
    Flag {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error("the watch caches never synced")]
    NotSynced,
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RunError {
    let what = what.into();
    move |source| RunError::Io { what, source }
}

/// Where the programs of an image are on this machine: `NAME=DIR` (NAME is
/// the image repository, its last path segment, or `*`), or `NAME=host` to
/// take the program from the runner's PATH.
#[derive(Clone, Debug, Default)]
pub struct ImageMap {
    entries: Vec<(String, Option<PathBuf>)>,
}

/// The image's repository: without tag or digest.
fn repository(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    match no_digest.rsplit_once(':') {
        // A ':' after the last '/' is a tag; before it, a registry port.
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => no_digest,
    }
}

impl ImageMap {
    pub fn parse(specs: &[String]) -> Result<Self, RunError> {
        let entries = specs
            .iter()
            .map(|s| {
                let (name, dir) = s.split_once('=').ok_or_else(|| RunError::Flag {
                    flag: "--image",
                    value: s.clone(),
                    reason: "expected NAME=DIR or NAME=host".to_owned(),
                })?;
                let dir = (dir != "host").then(|| PathBuf::from(dir));
                Ok((name.to_owned(), dir))
            })
            .collect::<Result<_, RunError>>()?;
        Ok(ImageMap { entries })
    }

    /// The local program for `program` (the container's `command[0]`) of `image`.
    pub fn resolve(&self, image: &str, program: &str) -> Result<PathBuf, RunError> {
        let repo = repository(image);
        let last = repo.rsplit('/').next().unwrap_or(repo);
        let entry = self
            .entries
            .iter()
            .find(|(n, _)| n == repo || n == last)
            .or_else(|| self.entries.iter().find(|(n, _)| n == "*"))
            .ok_or_else(|| RunError::UnmappedImage {
                image: image.to_owned(),
            })?;
        let base = Path::new(program)
            .file_name()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(program));
        match &entry.1 {
            Some(dir) => {
                let path = dir.join(&base);
                if path.is_file() {
                    Ok(path)
                } else {
                    Err(RunError::NoProgram {
                        image: image.to_owned(),
                        program: program.to_owned(),
                        dir: dir.display().to_string(),
                    })
                }
            }
            // The runner's PATH (Command does the lookup).
            None => Ok(PathBuf::from(program)),
        }
    }
}

/// Loopback ports for container ports: `[WORKLOAD/]PORT=LOCAL`. A declared
/// container port without a mapping gets a free ephemeral port.
#[derive(Clone, Debug, Default)]
pub struct PortMap {
    entries: Vec<(Option<String>, i32, u16)>,
}

impl PortMap {
    pub fn parse(specs: &[String]) -> Result<Self, RunError> {
        let bad = |s: &str, reason: &str| RunError::Flag {
            flag: "--port",
            value: s.to_owned(),
            reason: reason.to_owned(),
        };
        let entries = specs
            .iter()
            .map(|s| {
                let (left, local) = s
                    .split_once('=')
                    .ok_or_else(|| bad(s, "expected [WORKLOAD/]PORT=LOCAL"))?;
                let (workload, port) = match left.split_once('/') {
                    Some((w, p)) => (Some(w.to_owned()), p),
                    None => (None, left),
                };
                let port: i32 = port.parse().map_err(|_| bad(s, "PORT is not a number"))?;
                let local: u16 = local.parse().map_err(|_| bad(s, "LOCAL is not a port"))?;
                Ok((workload, port, local))
            })
            .collect::<Result<_, RunError>>()?;
        Ok(PortMap { entries })
    }

    fn for_workload(&self, workload: &str, container: &Container) -> BTreeMap<i32, u16> {
        let mut map = BTreeMap::new();
        for p in container.ports.iter().flatten() {
            let port = p.container_port;
            let mapped = self
                .entries
                .iter()
                .find(|(w, cp, _)| w.as_deref() == Some(workload) && *cp == port)
                .or_else(|| {
                    self.entries
                        .iter()
                        .find(|(w, cp, _)| w.is_none() && *cp == port)
                })
                .map(|e| e.2)
                .or_else(free_port);
            if let Some(local) = mapped {
                map.insert(port, local);
            }
        }
        map
    }
}

fn free_port() -> Option<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .ok()
}

/// What the runner is told.
#[derive(Clone, Debug)]
pub struct Settings {
    pub namespace: String,
    pub work_dir: PathBuf,
    pub images: ImageMap,
    pub ports: PortMap,
    /// Passed as DATABASE_URL to a pod that mounts nothing at
    /// `db_mount_path` (logged each time).
    pub fallback_database_url: Option<String>,
    pub db_mount_path: String,
    /// `(mount path, VAR)`: when a pod mounts something at the path, VAR is
    /// set to its local directory (unless the pod sets VAR). For paths a
    /// program only knows as compiled-in defaults (fleet-ingest and
    /// fleet-webhook read their database login from
    /// /var/run/secrets/fleet/db unless FLEET_DB_CREDENTIALS_DIR says
    /// otherwise), which no rewriting of the command line can reach.
    pub mount_env: Vec<(String, String)>,
    /// Start every CronJob once right away (`kubectl create job --from=cronjob/...`).
    pub run_on_start: bool,
    /// Also run CronJobs and Deployments the operator did not make.
    pub all: bool,
    /// Keep the per-pod directories (they hold Secret files) after a run.
    pub keep_pod_dirs: bool,
}

/// One line per run, to stdout and `<work>/runs.log`.
struct RunLog {
    file: Mutex<std::fs::File>,
}

impl RunLog {
    fn line(&self, text: &str) {
        let line = format!(
            "{} {text}",
            Timestamp::now()
                .round(jiff::Unit::Millisecond)
                .unwrap_or_else(|_| Timestamp::now())
        );
        println!("{line}");
        if let Ok(mut f) = self.file.lock() {
            let _ = writeln!(f, "{line}");
        }
    }
}

struct Ctx {
    client: Client,
    settings: Settings,
    log: RunLog,
}

/// A task running one pod (a CronJob run or a Deployment's process).
struct Handle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Handle {
    fn running(&self) -> bool {
        !self.task.is_finished()
    }
}

struct CronState {
    uid: String,
    history: History,
    runs: Vec<Handle>,
    blocked_logged: Option<Timestamp>,
    error_logged: Option<String>,
}

struct DeployState {
    uid: String,
    template_hash: u64,
    handle: Option<Handle>,
}

fn ours(meta: &ObjectMeta, all: bool) -> bool {
    all || meta
        .labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY.0))
        .is_some_and(|v| v == MANAGED_BY.1)
        || meta
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.kind == "FleetPipeline")
}

fn watch_namespace<K>(client: &Client, namespace: &str) -> Store<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let (store, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()))
        .default_backoff()
        .applied_objects();
    tokio::spawn(async move {
        stream
            .for_each(|r| async move {
                if let Err(e) = r {
                    tracing::warn!(error = %e, "watch error (retrying)");
                }
            })
            .await;
    });
    store
}

/// Run until `shutdown` resolves, then stop every process.
pub async fn run(
    client: Client,
    settings: Settings,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let work = settings.work_dir.clone();
    for d in ["pods", "logs", "endpoints"] {
        std::fs::create_dir_all(work.join(d))
            .map_err(io_err(format!("creating {}", work.display())))?;
    }
    let log_path = work.join("runs.log");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(io_err(format!("opening {}", log_path.display())))?;
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        settings,
        log: RunLog {
            file: Mutex::new(file),
        },
    });
    let ns = ctx.settings.namespace.clone();
    let cronjobs: Store<CronJob> = watch_namespace(&client, &ns);
    let deployments: Store<Deployment> = watch_namespace(&client, &ns);
    tokio::time::timeout(Duration::from_secs(60), async {
        cronjobs.wait_until_ready().await.ok();
        deployments.wait_until_ready().await.ok();
    })
    .await
    .map_err(|_| RunError::NotSynced)?;
    ctx.log.line(&format!(
        "runner started namespace={ns} work={} (a dev tool standing in for the kubelet)",
        work.display()
    ));

    let mut crons: HashMap<String, CronState> = HashMap::new();
    let mut deploys: HashMap<String, DeployState> = HashMap::new();
    let mut first = true;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut shutdown => break,
        }
        let now = Timestamp::now();
        let live: Vec<Arc<CronJob>> = cronjobs
            .state()
            .into_iter()
            .filter(|c| ours(&c.metadata, ctx.settings.all))
            .collect();
        reconcile_cronjobs(&ctx, &live, &mut crons, now, first);
        let live: Vec<Arc<Deployment>> = deployments
            .state()
            .into_iter()
            .filter(|d| ours(&d.metadata, ctx.settings.all))
            .collect();
        reconcile_deployments(&ctx, &live, &mut deploys);
        first = false;
    }

    ctx.log.line("runner stopping: terminating every process");
    let mut tasks = Vec::new();
    for (_, s) in crons.drain() {
        for h in s.runs {
            let _ = h.stop.send(true);
            tasks.push(h.task);
        }
    }
    for (_, s) in deploys.drain() {
        if let Some(h) = s.handle {
            let _ = h.stop.send(true);
            tasks.push(h.task);
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    ctx.log.line("runner stopped");
    Ok(())
}

fn cron_spec(cj: &CronJob) -> Result<CronSpec, schedule::ScheduleError> {
    let spec = &cj.spec;
    Ok(CronSpec {
        schedule: Schedule::parse(&spec.schedule, spec.time_zone.as_deref())?,
        suspend: spec.suspend.unwrap_or(false),
        concurrency: ConcurrencyPolicy::parse(spec.concurrency_policy.as_deref()),
        starting_deadline_seconds: spec.starting_deadline_seconds,
    })
}

fn reconcile_cronjobs(
    ctx: &Arc<Ctx>,
    live: &[Arc<CronJob>],
    state: &mut HashMap<String, CronState>,
    now: Timestamp,
    first: bool,
) {
    // Gone or recreated: stop their runs (the garbage collector would
    // delete their Jobs and pods).
    state.retain(|name, s| {
        let keep = live
            .iter()
            .any(|c| c.name_any() == *name && c.uid().as_deref() == Some(s.uid.as_str()));
        if !keep {
            for h in &s.runs {
                let _ = h.stop.send(true);
            }
            ctx.log
                .line(&format!("cronjob={name} deleted: stopping its runs"));
        }
        keep
    });
    for cj in live {
        let name = cj.name_any();
        let uid = cj.uid().unwrap_or_default();
        let s = state.entry(name.clone()).or_insert_with(|| CronState {
            uid,
            history: History {
                // Like a new CronJob: only times after the runner first saw it.
                since: now,
                last_schedule: None,
            },
            runs: Vec::new(),
            blocked_logged: None,
            error_logged: None,
        });
        s.runs.retain(Handle::running);
        let spec = match cron_spec(cj) {
            Ok(spec) => spec,
            Err(e) => {
                let msg = e.to_string();
                if s.error_logged.as_deref() != Some(&msg) {
                    ctx.log
                        .line(&format!("cronjob={name} cannot be scheduled: {msg}"));
                    s.error_logged = Some(msg);
                }
                continue;
            }
        };
        let mut decision = schedule::decide(&spec, &s.history, now, !s.runs.is_empty());
        if first && ctx.settings.run_on_start && !spec.suspend && s.runs.is_empty() {
            decision = Decision::Start { scheduled: now };
        }
        if let Some(t) = decision.consumes() {
            s.history.last_schedule = Some(t);
        }
        match decision {
            Decision::Idle | Decision::Suspended => {}
            Decision::Blocked { scheduled } => {
                if s.blocked_logged != Some(scheduled) {
                    ctx.log.line(&format!(
                        "job={name} scheduled={scheduled} not started: the previous run is still running (concurrencyPolicy Forbid)"
                    ));
                    s.blocked_logged = Some(scheduled);
                }
            }
            Decision::Replace { scheduled } => {
                for h in &s.runs {
                    let _ = h.stop.send(true);
                }
                ctx.log.line(&format!(
                    "job={name} scheduled={scheduled}: stopping the running one (concurrencyPolicy Replace)"
                ));
                let previous: Vec<JoinHandle<()>> = s.runs.drain(..).map(|h| h.task).collect();
                s.runs.push(start_job(ctx, cj.clone(), scheduled, previous));
            }
            Decision::Start { scheduled } => {
                s.runs
                    .push(start_job(ctx, cj.clone(), scheduled, Vec::new()));
            }
        }
    }
}

fn start_job(
    ctx: &Arc<Ctx>,
    cj: Arc<CronJob>,
    scheduled: Timestamp,
    wait_for: Vec<JoinHandle<()>>,
) -> Handle {
    let (stop, stopped) = watch::channel(false);
    let ctx = ctx.clone();
    let task = tokio::spawn(async move {
        for t in wait_for {
            let _ = t.await;
        }
        run_job(&ctx, &cj, scheduled, stopped).await;
    });
    Handle { stop, task }
}

/// One Job: pods until one succeeds, at most backoffLimit + 1, within
/// activeDeadlineSeconds.
async fn run_job(ctx: &Ctx, cj: &CronJob, scheduled: Timestamp, mut stop: watch::Receiver<bool>) {
    let name = cj.name_any();
    // Jobs of a CronJob are named after the scheduled minute.
    let job_name = format!("{name}-{}", scheduled.as_second().div_euclid(60));
    let Some(job) = cj.spec.job_template.spec.as_ref() else {
        ctx.log.line(&format!(
            "job={name} run={job_name} exit=error reason=\"no job template\""
        ));
        return;
    };
    let backoff_limit = job.backoff_limit.unwrap_or(6).max(0);
    let deadline = job
        .active_deadline_seconds
        .and_then(|s| u64::try_from(s).ok())
        .map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    let mut backoff = JOB_BACKOFF;
    for attempt in 1..=backoff_limit + 1 {
        let pod_name = format!("{job_name}-{attempt}");
        let outcome = run_pod(ctx, &name, &job.template, &pod_name, &mut stop, deadline).await;
        ctx.log.line(&format!(
            "job={name} run={job_name} attempt={attempt} scheduled={scheduled} {}",
            outcome.describe()
        ));
        if outcome.succeeded() || outcome.stopped || outcome.deadline {
            return;
        }
        if attempt <= backoff_limit {
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.changed() => return,
            }
            backoff = (backoff * 2).min(JOB_BACKOFF_MAX);
        } else {
            ctx.log.line(&format!(
                "job={name} run={job_name} failed: backoffLimit {backoff_limit} reached"
            ));
        }
    }
}

fn reconcile_deployments(
    ctx: &Arc<Ctx>,
    live: &[Arc<Deployment>],
    state: &mut HashMap<String, DeployState>,
) {
    let desired: HashMap<String, (&Arc<Deployment>, bool)> = live
        .iter()
        .map(|d| {
            let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            (d.name_any(), (d, replicas > 0))
        })
        .collect();
    state.retain(|name, s| {
        let keep = desired
            .get(name)
            .is_some_and(|(d, on)| *on && d.uid().as_deref() == Some(s.uid.as_str()));
        if !keep {
            if let Some(h) = &s.handle {
                let _ = h.stop.send(true);
            }
            ctx.log.line(&format!(
                "deployment={name} deleted or scaled to 0: stopping its process"
            ));
        }
        keep
    });
    for (name, (d, on)) in desired {
        if !on {
            continue;
        }
        let Some(template) = d.spec.as_ref().map(|s| s.template.clone()) else {
            continue;
        };
        let hash = template_hash(&template);
        let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        match state.get_mut(&name) {
            Some(s) if s.template_hash == hash => {}
            Some(s) => {
                ctx.log.line(&format!(
                    "deployment={name} pod template changed: restarting its process"
                ));
                let previous = s.handle.take().map(|h| {
                    let _ = h.stop.send(true);
                    h.task
                });
                s.template_hash = hash;
                s.handle = Some(start_deployment(ctx, &name, template, previous));
            }
            None => {
                if replicas > 1 {
                    ctx.log.line(&format!(
                        "deployment={name} asks for {replicas} replicas: running 1 locally"
                    ));
                }
                state.insert(
                    name.clone(),
                    DeployState {
                        uid: d.uid().unwrap_or_default(),
                        template_hash: hash,
                        handle: Some(start_deployment(ctx, &name, template, None)),
                    },
                );
            }
        }
    }
}

fn template_hash(t: &PodTemplateSpec) -> u64 {
    let mut h = DefaultHasher::new();
    serde_json::to_string(t).unwrap_or_default().hash(&mut h);
    h.finish()
}

fn start_deployment(
    ctx: &Arc<Ctx>,
    name: &str,
    template: PodTemplateSpec,
    previous: Option<JoinHandle<()>>,
) -> Handle {
    let (stop, mut stopped) = watch::channel(false);
    let ctx = ctx.clone();
    let name = name.to_owned();
    let task = tokio::spawn(async move {
        if let Some(p) = previous {
            let _ = p.await;
        }
        let hash = format!("{:x}", template_hash(&template) & 0xff_ffff);
        let mut backoff = Duration::from_secs(1);
        for restart in 0u32.. {
            let pod_name = format!("{name}-{hash}-{restart}");
            let up = Instant::now();
            let outcome = run_pod(&ctx, &name, &template, &pod_name, &mut stopped, None).await;
            ctx.log.line(&format!(
                "deployment={name} pod={pod_name} {}",
                outcome.describe()
            ));
            if outcome.stopped || *stopped.borrow() {
                return;
            }
            if up.elapsed() > Duration::from_secs(60) {
                backoff = Duration::from_secs(1);
            }
            ctx.log.line(&format!(
                "deployment={name} restarting in {}s",
                backoff.as_secs()
            ));
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stopped.changed() => return,
            }
            backoff = (backoff * 2).min(RESTART_BACKOFF_MAX);
        }
    });
    Handle { stop, task }
}

/// How a pod's process ended.
#[derive(Debug, Default)]
struct Outcome {
    exit: Option<i32>,
    signal: Option<i32>,
    duration: Duration,
    /// Stopped by the runner (deleted, replaced, shutdown).
    stopped: bool,
    /// Killed at activeDeadlineSeconds.
    deadline: bool,
    /// Could not start.
    error: Option<String>,
    log: Option<PathBuf>,
}

impl Outcome {
    fn succeeded(&self) -> bool {
        self.exit == Some(0)
    }

    fn describe(&self) -> String {
        let mut s = match (&self.error, self.exit, self.signal) {
            (Some(e), _, _) => format!("exit=not-started error={e:?}"),
            (None, Some(code), _) => format!("exit={code}"),
            (None, None, Some(sig)) => format!("exit=signal-{sig}"),
            (None, None, None) => "exit=unknown".to_owned(),
        };
        s.push_str(&format!(" duration={:.3}s", self.duration.as_secs_f64()));
        if self.stopped {
            s.push_str(" stopped-by-runner");
        }
        if self.deadline {
            s.push_str(" reason=DeadlineExceeded");
        }
        if let Some(l) = &self.log {
            s.push_str(&format!(" log={}", l.display()));
        }
        s
    }
}

async fn fetch(ctx: &Ctx, refs: &Refs) -> Result<Objects, RunError> {
    let ns = &ctx.settings.namespace;
    let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let mut objects = Objects::default();
    for name in &refs.config_maps {
        let cm = cms.get_opt(name).await.map_err(|source| RunError::Kube {
            kind: "ConfigMap",
            name: name.clone(),
            source,
        })?;
        if let Some(cm) = cm {
            objects.config_maps.insert(name.clone(), cm);
        }
    }
    for name in &refs.secrets {
        let s = secrets
            .get_opt(name)
            .await
            .map_err(|source| RunError::Kube {
                kind: "Secret",
                name: name.clone(),
                source,
            })?;
        if let Some(s) = s {
            objects.secrets.insert(name.clone(), s);
        }
    }
    Ok(objects)
}

/// The readiness probe to watch: (local port, path, period).
fn readiness(container: &Container, ports: &BTreeMap<i32, u16>) -> Option<(u16, String, Duration)> {
    let probe = container.readiness_probe.as_ref()?;
    let get = probe.http_get.as_ref()?;
    let container_port = match &get.port {
        IntOrString::Int(p) => *p,
        IntOrString::String(name) => {
            container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))?
                .container_port
        }
    };
    let period = Duration::from_secs(
        probe
            .period_seconds
            .unwrap_or(10)
            .max(1)
            .unsigned_abs()
            .into(),
    );
    Some((
        *ports.get(&container_port)?,
        get.path.clone().unwrap_or_else(|| "/".to_owned()),
        period,
    ))
}

/// GET on loopback; true on a 2xx/3xx answer.
async fn probe_ok(port: u16, path: &str) -> bool {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        let req = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut head = [0u8; 16];
        let n = s.read(&mut head).await.ok()?;
        let text = String::from_utf8_lossy(&head[..n]).into_owned();
        let code: u16 = text.split_whitespace().nth(1)?.parse().ok()?;
        Some((200..400).contains(&code))
    };
    tokio::time::timeout(Duration::from_secs(1), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

struct Started {
    child: tokio::process::Child,
    prepared: Prepared,
    log: PathBuf,
    ports: BTreeMap<i32, u16>,
    container: Container,
}

/// Materialize the pod and start its first container.
async fn start_pod(
    ctx: &Ctx,
    workload: &str,
    template: &PodTemplateSpec,
    pod_name: &str,
) -> Result<Started, RunError> {
    let spec = template
        .spec
        .as_ref()
        .ok_or_else(|| RunError::NoContainer(workload.to_owned()))?;
    let container = spec
        .containers
        .first()
        .ok_or_else(|| RunError::NoContainer(workload.to_owned()))?
        .clone();
    if spec.containers.len() > 1 || spec.init_containers.as_ref().is_some_and(|c| !c.is_empty()) {
        tracing::warn!(
            workload,
            "only the first container runs locally; others and init containers are ignored"
        );
    }
    let objects = fetch(ctx, &Refs::of(spec, &container)).await?;
    let meta = template.metadata.clone().unwrap_or_default();
    let identity = PodIdentity {
        name: pod_name.to_owned(),
        namespace: ctx.settings.namespace.clone(),
        labels: meta.labels.unwrap_or_default(),
        annotations: meta.annotations.unwrap_or_default(),
    };
    let ports = ctx.settings.ports.for_workload(workload, &container);
    let pod_dir = ctx.settings.work_dir.join("pods").join(pod_name);
    let prepared = materialize::prepare(spec, &container, &objects, &identity, &ports, &pod_dir)?;
    let image = container.image.clone().unwrap_or_default();
    let Some((program, args)) = prepared.command.split_first() else {
        return Err(RunError::NoContainer(workload.to_owned()));
    };
    let program = ctx.settings.images.resolve(&image, program)?;

    let mut cmd = tokio::process::Command::new(&program);
    cmd.args(args).env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd.env("HOME", &pod_dir);
    if let Some(tmp) = prepared.mounts.iter().find(|m| m.container_path == "/tmp") {
        cmd.env("TMPDIR", &tmp.local_path);
    }
    for (k, v) in &prepared.env {
        cmd.env(k, v);
    }
    for (path, var) in &ctx.settings.mount_env {
        let want = path.trim_end_matches('/');
        let local = prepared
            .mounts
            .iter()
            .find(|m| m.container_path.trim_end_matches('/') == want);
        if let Some(m) = local
            && prepared.env.iter().all(|(k, _)| k != var)
        {
            cmd.env(var, &m.local_path);
        }
    }
    let db_mount = ctx.settings.db_mount_path.as_str();
    if !prepared.mounts_at(db_mount) {
        if let Some(url) = &ctx.settings.fallback_database_url {
            ctx.log.line(&format!(
                "{workload} pod={pod_name}: no volume mounted at {db_mount}: FALLBACK, passing the runner's --fallback-database-url as DATABASE_URL"
            ));
            cmd.env("DATABASE_URL", url);
        }
    } else if prepared.env.iter().all(|(k, _)| k != "DATABASE_URL") {
        tracing::debug!(
            workload,
            "database login mounted at {db_mount}; no DATABASE_URL passed"
        );
    }
    cmd.current_dir(
        prepared
            .working_dir
            .clone()
            .unwrap_or_else(|| pod_dir.clone()),
    );
    let log = ctx
        .settings
        .work_dir
        .join("logs")
        .join(format!("{pod_name}.log"));
    let out = std::fs::File::create(&log).map_err(io_err(format!("creating {}", log.display())))?;
    let err = out
        .try_clone()
        .map_err(io_err(format!("opening {}", log.display())))?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .kill_on_drop(true);
    // If the runner dies without stopping its processes (SIGKILL), they get
    // SIGTERM instead of living on.
    // SAFETY: prctl(2) is async-signal-safe; nothing else runs between fork
    // and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(io_err(format!("starting {}", program.display())))?;
    let mut line = format!(
        "{workload} pod={pod_name} started pid={} program={}",
        child.id().unwrap_or_default(),
        program.display()
    );
    for (cp, local) in &prepared.ports {
        line.push_str(&format!(" listen=127.0.0.1:{local}(container port {cp})"));
        let _ = std::fs::write(
            ctx.settings
                .work_dir
                .join("endpoints")
                .join(format!("{workload}-{cp}")),
            format!("127.0.0.1:{local}\n"),
        );
    }
    ctx.log.line(&line);
    Ok(Started {
        child,
        prepared,
        log,
        ports,
        container,
    })
}

/// Run one pod to its end, or until stopped or past `deadline`.
async fn run_pod(
    ctx: &Ctx,
    workload: &str,
    template: &PodTemplateSpec,
    pod_name: &str,
    stop: &mut watch::Receiver<bool>,
    deadline: Option<tokio::time::Instant>,
) -> Outcome {
    let t0 = Instant::now();
    let mut outcome = Outcome::default();
    let started = match start_pod(ctx, workload, template, pod_name).await {
        Ok(s) => s,
        Err(e) => {
            outcome.error = Some(e.to_string());
            outcome.duration = t0.elapsed();
            let _ = std::fs::remove_dir_all(ctx.settings.work_dir.join("pods").join(pod_name));
            return outcome;
        }
    };
    let Started {
        mut child,
        prepared,
        log,
        ports,
        container,
    } = started;
    outcome.log = Some(log);
    let grace = template
        .spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .and_then(|s| u64::try_from(s).ok())
        .map(Duration::from_secs)
        .unwrap_or(MAX_GRACE)
        .min(MAX_GRACE);
    let probe = readiness(&container, &ports);
    let mut ready = false;
    let mut probe_tick =
        tokio::time::interval(probe.as_ref().map_or(Duration::from_secs(3600), |p| {
            p.2.min(Duration::from_secs(2))
        }));
    let far = tokio::time::Instant::now() + Duration::from_secs(100 * 365 * 86_400);
    let deadline = deadline.unwrap_or(far);
    let status = loop {
        tokio::select! {
            status = child.wait() => break status.ok(),
            _ = stop.changed() => {
                outcome.stopped = true;
                break terminate(&mut child, grace).await;
            }
            _ = tokio::time::sleep_until(deadline) => {
                outcome.deadline = true;
                break terminate(&mut child, grace).await;
            }
            _ = probe_tick.tick(), if probe.is_some() => {
                if let Some((port, path, _)) = &probe {
                    let ok = probe_ok(*port, path).await;
                    if ok != ready {
                        ready = ok;
                        ctx.log.line(&format!(
                            "deployment={workload} pod={pod_name} {} (readinessProbe GET 127.0.0.1:{port}{path})",
                            if ok { "ready" } else { "not ready" }
                        ));
                    }
                }
            }
        }
    };
    outcome.duration = t0.elapsed();
    if let Some(status) = status {
        use std::os::unix::process::ExitStatusExt as _;
        outcome.exit = status.code();
        outcome.signal = status.signal();
    }
    if !ctx.settings.keep_pod_dirs {
        // The directory holds Secret files.
        let _ = std::fs::remove_dir_all(&prepared.pod_dir);
    }
    outcome
}

/// SIGTERM, then SIGKILL after `grace`.
async fn terminate(
    child: &mut tokio::process::Child,
    grace: Duration,
) -> Option<std::process::ExitStatus> {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: kill(2) with a pid we spawned and still own (not yet
        // reaped: `child.wait()` has not returned), and a valid signal.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => status.ok(),
        Err(_) => {
            let _ = child.kill().await;
            child.wait().await.ok()
        }
    }
}
