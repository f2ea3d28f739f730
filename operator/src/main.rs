//! `fleet-operator`: run the controller, or print the CRD.

use clap::{Parser, Subcommand};
use fleet_operator::controller::{self, Settings};
use fleet_operator::crd::FleetPipeline;
use fleet_operator::metrics::Metrics;
use fleet_operator::server::{self, ServerState};
use kube::CustomResourceExt;
use prometheus_client::registry::Registry;
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
    Run(RunArgs),
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
            runtime.block_on(run(args))
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
    let settings = Settings {
        workload_image: args.workload_image,
        namespace: args.namespace,
        resync: Duration::from_secs(args.resync_seconds),
        retry: Duration::from_secs(10),
    };
    let result = controller::run(client, settings, metrics, ready).await;
    http.abort();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "controller could not start");
            ExitCode::FAILURE
        }
    }
}
