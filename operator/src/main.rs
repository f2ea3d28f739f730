//! `fleet-operator`: run the controller, or print the CRD.

use clap::{Parser, Subcommand};
use fleet_operator::controller::{self, Settings};
use fleet_operator::crd::FleetPipeline;
use fleet_operator::metrics::Metrics;
use fleet_operator::resources::OperatorIdentity;
use fleet_operator::server::{self, ServerState};
use k8s_openapi::api::networking::v1::NetworkPolicyPeer;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResourceExt;
use kube_lease_manager::LeaseManagerBuilder;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "fleet-operator",
    version,
    about = "Kubernetes operator for FleetPipeline"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the FleetPipeline CustomResourceDefinition as YAML.
    Crd,
    /// Run the controller (uses in-cluster config or $KUBECONFIG).
    Run(Box<RunArgs>),
}

#[derive(clap::Args)]
struct RunArgs {
    /// Image for CronJobs and the webhook when a pipeline names none.
    #[arg(long, env = "FLEET_WORKLOAD_IMAGE", default_value = concat!("ghcr.io/fleetops/fleet-workloads:", env!("CARGO_PKG_VERSION")))]
    workload_image: String,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "FLEET_WATCH_NAMESPACE")]
    namespace: Option<String>,
    /// Address for /healthz, /readyz and /metrics.
    #[arg(long, env = "FLEET_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Seconds between periodic resyncs of each pipeline.
    #[arg(long, env = "FLEET_RESYNC_SECONDS", default_value_t = 300)]
    resync_seconds: u64,
    /// Log as JSON lines.
    #[arg(long, env = "FLEET_LOG_JSON")]
    log_json: bool,
    /// Hold a coordination.k8s.io Lease before reconciling, so that of several
    /// replicas only one writes. Needs --lease-namespace.
    #[arg(long, env = "FLEET_LEADER_ELECT")]
    leader_elect: bool,
    /// Namespace of the leader-election Lease (usually the operator's own).
    #[arg(long, env = "POD_NAMESPACE")]
    lease_namespace: Option<String>,
    /// Name of the leader-election Lease.
    #[arg(
        long,
        env = "FLEET_LEASE_NAME",
        default_value = "fleet-operator-leader"
    )]
    lease_name: String,
    /// This replica's identity for the Lease and Events (the pod name).
    #[arg(long, env = "POD_NAME")]
    pod_name: Option<String>,
    /// Namespace the operator runs in; with --operator-pod-labels it lets the
    /// database ingress policy admit the operator. Unset outside a cluster.
    #[arg(long, env = "FLEET_OPERATOR_NAMESPACE")]
    operator_namespace: Option<String>,
    /// Labels of the operator's pods, as k=v[,k=v].
    #[arg(
        long,
        env = "FLEET_OPERATOR_POD_LABELS",
        default_value = "app.kubernetes.io/name=fleet-operator"
    )]
    operator_pod_labels: String,
}

/// Resolves on SIGTERM or Ctrl-C.
async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutdown requested");
}

fn operator_identity(args: &RunArgs) -> Result<OperatorIdentity, String> {
    let Some(ns) = &args.operator_namespace else {
        return Ok(OperatorIdentity::default());
    };
    let labels = args
        .operator_pod_labels
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| format!("--operator-pod-labels: {pair:?} is not key=value"))
        })
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    Ok(OperatorIdentity {
        peer: Some(NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    "kubernetes.io/metadata.name".to_owned(),
                    ns.clone(),
                )])),
                ..Default::default()
            }),
            pod_selector: Some(LabelSelector {
                match_labels: Some(labels),
                ..Default::default()
            }),
            ..Default::default()
        }),
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => match serde_yaml::to_string(&FleetPipeline::crd()) {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("cannot render the CRD: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Run(args) => {
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            runtime.block_on(run(*args))
        }
    }
}

async fn run(args: RunArgs) -> ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if args.log_json {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let client = match kube::Client::try_default().await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build a Kubernetes client");
            return ExitCode::FAILURE;
        }
    };
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let ready = Arc::new(AtomicBool::new(false));
    let state = ServerState {
        registry: Arc::new(registry),
        ready: ready.clone(),
    };
    let listener = match tokio::net::TcpListener::bind(args.metrics_addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(addr = %args.metrics_addr, error = %e, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(addr = %args.metrics_addr, "serving /healthz, /readyz, /metrics");
    let http = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, server::router(state)).await {
            tracing::error!(error = %e, "metrics server stopped");
        }
    });
    let identity = match operator_identity(&args) {
        Ok(i) => i,
        Err(e) => {
            tracing::error!(error = %e, "bad flag");
            return ExitCode::FAILURE;
        }
    };
    let reporter = args
        .pod_name
        .clone()
        .unwrap_or_else(|| format!("fleet-operator-{}", std::process::id()));
    let settings = Settings {
        workload_image: args.workload_image.clone(),
        namespace: args.namespace.clone(),
        resync: Duration::from_secs(args.resync_seconds),
        retry: Duration::from_secs(10),
        identity,
        reporter: reporter.clone(),
    };

    // Stop on SIGTERM, or when leadership is lost.
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let lost_leadership = Arc::new(AtomicBool::new(false));
    if args.leader_elect {
        let Some(lease_ns) = args.lease_namespace.clone() else {
            tracing::error!("--leader-elect needs --lease-namespace (or POD_NAMESPACE)");
            return ExitCode::FAILURE;
        };
        let manager = match LeaseManagerBuilder::new(client.clone(), &args.lease_name)
            .with_namespace(&lease_ns)
            .with_identity(&reporter)
            .with_duration(15)
            .with_grace(5)
            .build()
            .await
        {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "cannot set up leader election");
                return ExitCode::FAILURE;
            }
        };
        let (mut leader, _task) = manager.watch().await;
        tracing::info!(lease = %args.lease_name, namespace = %lease_ns, "waiting for leadership");
        loop {
            if *leader.borrow_and_update() {
                break;
            }
            tokio::select! {
                changed = leader.changed() => {
                    if changed.is_err() {
                        tracing::error!("leader election stopped");
                        return ExitCode::FAILURE;
                    }
                }
                _ = termination() => return ExitCode::SUCCESS,
            }
        }
        tracing::info!("acquired leadership");
        let lost = lost_leadership.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = async {
                    while leader.changed().await.is_ok() {
                        if !*leader.borrow() {
                            break;
                        }
                    }
                    tracing::warn!("lost leadership; stopping");
                    lost.store(true, std::sync::atomic::Ordering::SeqCst);
                } => {}
                _ = termination() => {}
            }
            let _ = stop_tx.send(());
        });
    } else {
        tokio::spawn(async move {
            termination().await;
            let _ = stop_tx.send(());
        });
    }
    let shutdown = async move {
        let _ = stop_rx.await;
    };
    let result = controller::run(client, settings, metrics, ready, shutdown).await;
    http.abort();
    match result {
        // Exit non-zero so the pod restarts and campaigns again.
        Ok(()) if lost_leadership.load(std::sync::atomic::Ordering::SeqCst) => ExitCode::FAILURE,
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "controller could not start");
            ExitCode::FAILURE
        }
    }
}
