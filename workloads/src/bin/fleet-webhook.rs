//! `fleet-webhook`: the JIMI push receiver (the webhook Deployment's process,
//! runnable by hand against any PostgreSQL).
//!
//! Fails closed: without a token (`--token-file`) it refuses to start unless
//! `--allow-unauthenticated` is given, which it then warns about.

use clap::Parser;
use fleet_workloads::config::PipelineConfig;
use fleet_workloads::push::{Guard, TokenCheck};
use fleet_workloads::store::connect::{self, DB_CREDENTIALS_DIR};
use fleet_workloads::store::push::PgPushStore;
use fleet_workloads::webhook::metrics::WebhookMetrics;
use fleet_workloads::webhook::server::{AppState, Limits, router};
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "fleet-webhook",
    version,
    about = "JIMI push receiver for a FleetPipeline"
)]
struct Args {
    /// The rendered pipeline config (the operator's ConfigMap).
    #[arg(long, env = "FLEET_CONFIG", default_value = "/etc/fleet/config.json")]
    config: PathBuf,
    /// Address to listen on.
    #[arg(long, env = "FLEET_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// File holding the push token (mounted from the Secret).
    #[arg(long, env = "FLEET_PUSH_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// Accept pushes without a token (requireToken: false). Logged as a warning.
    #[arg(long)]
    allow_unauthenticated: bool,
    /// Directory with the database login (`username`, `password` files).
    #[arg(long, env = "FLEET_DB_CREDENTIALS_DIR", default_value = DB_CREDENTIALS_DIR)]
    db_credentials_dir: PathBuf,
    /// A PostgreSQL URL instead of the config + credentials (running by hand).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Largest accepted body, bytes.
    #[arg(long, default_value_t = 1024 * 1024)]
    max_body_bytes: usize,
    /// Per-request time limit, seconds (a stuck database answers 503).
    #[arg(long, default_value_t = 10)]
    request_timeout_seconds: u64,
    /// Requests handled at once; more wait.
    #[arg(long, default_value_t = 256)]
    max_concurrent: usize,
    /// Database connections.
    #[arg(long, default_value_t = 8)]
    db_connections: u32,
}

#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error(
        "no push token configured: pass --token-file (the operator mounts webhook.tokenSecretRef), or --allow-unauthenticated to accept pushes without one (requireToken: false)"
    )]
    NoToken,
    #[error("push token file {0} is empty")]
    EmptyToken(String),
    #[error("cannot read push token file {path}: {source}")]
    TokenFile {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] fleet_workloads::config::ConfigError),
    #[error("eventTimeGuard in the config is not valid")]
    Guard,
    #[error(transparent)]
    Db(#[from] fleet_workloads::store::DbError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

fn token(args: &Args) -> Result<TokenCheck, StartError> {
    match (&args.token_file, args.allow_unauthenticated) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path).map_err(|source| StartError::TokenFile {
                path: path.display().to_string(),
                source,
            })?;
            let t = text.trim();
            if t.is_empty() {
                return Err(StartError::EmptyToken(path.display().to_string()));
            }
            Ok(TokenCheck::Required(t.to_owned()))
        }
        (None, true) => {
            tracing::warn!(
                "--allow-unauthenticated: accepting pushes WITHOUT a token (requireToken: false)"
            );
            Ok(TokenCheck::Disabled)
        }
        (None, false) => Err(StartError::NoToken),
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        } else {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("draining: no new connections, finishing in-flight pushes");
}

async fn run(args: Args) -> Result<(), StartError> {
    let token = token(&args)?;
    let config = PipelineConfig::load(&args.config)?;
    let guard = Guard::from_config(&config.event_time_guard).ok_or(StartError::Guard)?;
    let options = match &args.database_url {
        Some(url) => connect::from_url(url, &config.database.schema)?,
        None => connect::from_config(&config.database, &args.db_credentials_dir)?,
    };
    // Lazy: the receiver starts (and /readyz says why) even while the
    // database is down; pushes get 503 until it is back.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(args.db_connections)
        .acquire_timeout(Duration::from_secs(3))
        .connect_lazy_with(options);
    let mut registry = Registry::default();
    let metrics = WebhookMetrics::register(&mut registry);
    let state = Arc::new(AppState {
        token,
        guard,
        store: Arc::new(PgPushStore::new(pool)),
        metrics,
        registry,
    });
    let limits = Limits {
        max_body_bytes: args.max_body_bytes,
        request_timeout: Duration::from_secs(args.request_timeout_seconds),
        max_concurrent: args.max_concurrent,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: args.listen,
            source,
        })?;
    tracing::info!(addr = %args.listen, pipeline = %config.pipeline, schema = %config.database.schema, "receiving pushes");
    if let Err(e) = axum::serve(listener, router(state, &limits))
        .with_graceful_shutdown(shutdown_signal())
        .await
    {
        tracing::error!(error = %e, "server stopped");
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("fleet-webhook: {e}");
            ExitCode::from(2)
        }
    }
}
