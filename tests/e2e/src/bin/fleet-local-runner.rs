//! `fleet-local-runner`: a DEVELOPMENT TOOL for machines without a kubelet
//! (the local demo, tests). It runs the CronJobs and Deployments the
//! operator made in one namespace as local processes; see
//! `fleet_e2e::local_runner`. It is not part of the operator and must never
//! run in a real cluster.
//!
//! ```text
//! fleet-local-runner --namespace fleet --work-dir /tmp/runner \
//!     --image fleet-workloads=target/debug --port kenya-fleet-webhook/8080=18081
//! ```

use clap::Parser;
use fleet_e2e::local_runner::{self, ImageMap, PortMap, Settings};
use kube::{Client, Config};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "fleet-local-runner",
    about = "DEV TOOL: run a namespace's operator-made CronJobs and Deployments as local processes (stands in for the kubelet; never part of the operator)"
)]
struct Args {
    /// The namespace to watch.
    #[arg(long, short = 'n')]
    namespace: String,
    /// Per-pod directories (volumes written there), process logs and runs.log.
    #[arg(long)]
    work_dir: PathBuf,
    /// Where an image's programs are: NAME=DIR (NAME: the repository, its
    /// last segment, or *), or NAME=host for the runner's PATH. Repeatable.
    #[arg(long = "image", value_name = "NAME=DIR")]
    images: Vec<String>,
    /// A loopback port for a container port: [WORKLOAD/]PORT=LOCAL.
    /// Unmapped container ports get a free port (see WORK_DIR/endpoints/).
    #[arg(long = "port", value_name = "[WORKLOAD/]PORT=LOCAL")]
    ports: Vec<String>,
    /// DATABASE_URL for pods that mount no database login at --db-mount-path
    /// (a fallback; every use is logged).
    #[arg(
        long,
        env = "FLEET_RUNNER_FALLBACK_DATABASE_URL",
        hide_env_values = true
    )]
    fallback_database_url: Option<String>,
    /// Where the workloads' database login Secret is mounted.
    #[arg(long, default_value = fleet_workloads::store::connect::DB_CREDENTIALS_DIR)]
    db_mount_path: String,
    /// Set VAR to the local directory of whatever a pod mounts at PATH:
    /// PATH=VAR (repeatable; for paths a program has compiled in). Default:
    /// the workloads' database login directory.
    #[arg(long = "mount-env", value_name = "PATH=VAR", default_values_t = [format!("{}=FLEET_DB_CREDENTIALS_DIR", fleet_workloads::store::connect::DB_CREDENTIALS_DIR)])]
    mount_env: Vec<String>,
    /// Start every CronJob once at start, as `kubectl create job --from=cronjob/NAME`.
    #[arg(long)]
    run_on_start: bool,
    /// Also run CronJobs and Deployments the operator did not make.
    #[arg(long)]
    all: bool,
    /// Keep per-pod directories after a run (they hold Secret files).
    #[arg(long)]
    keep_pod_dirs: bool,
}

async fn shutdown() {
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

async fn main_async(args: Args) -> Result<(), String> {
    let settings = Settings {
        namespace: args.namespace,
        work_dir: args.work_dir,
        images: ImageMap::parse(&args.images).map_err(|e| e.to_string())?,
        ports: PortMap::parse(&args.ports).map_err(|e| e.to_string())?,
        fallback_database_url: args.fallback_database_url,
        db_mount_path: args.db_mount_path,
        mount_env: args
            .mount_env
            .iter()
            .map(|s| {
                s.split_once('=')
                    .map(|(p, v)| (p.to_owned(), v.to_owned()))
                    .ok_or_else(|| format!("bad --mount-env {s:?}: expected PATH=VAR"))
            })
            .collect::<Result<_, _>>()?,
        run_on_start: args.run_on_start,
        all: args.all,
        keep_pod_dirs: args.keep_pod_dirs,
    };
    let config = Config::infer()
        .await
        .map_err(|e| format!("no kubeconfig: {e}"))?;
    let client = Client::try_from(config).map_err(|e| format!("kube client: {e}"))?;
    local_runner::run(client, settings, shutdown())
        .await
        .map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fleet-local-runner: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(main_async(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleet-local-runner: {e}");
            ExitCode::from(2)
        }
    }
}
