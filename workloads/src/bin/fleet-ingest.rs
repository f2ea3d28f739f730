//! `fleet-ingest <job>`: one run of one ingest job, what each CronJob runs,
//! and runnable by hand against any PostgreSQL (`--database-url`).
//! Exits non-zero when any target failed.

use clap::{Parser, Subcommand};
use fleet_workloads::config::PipelineConfig;
use fleet_workloads::ingest::window::WindowArgs;
use fleet_workloads::ingest::{self, JobContext};
use fleet_workloads::push::Guard;
use fleet_workloads::store::connect::{self, DB_CREDENTIALS_DIR};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "fleet-ingest",
    version,
    about = "One run of a FleetPipeline ingest job"
)]
struct Args {
    #[command(subcommand)]
    job: Job,
    /// The rendered pipeline config (the operator's ConfigMap).
    #[arg(
        long,
        global = true,
        env = "FLEET_CONFIG",
        default_value = "/etc/fleet/config.json"
    )]
    config: PathBuf,
    /// Directory with the database login (`username`, `password`).
    #[arg(long, global = true, env = "FLEET_DB_CREDENTIALS_DIR", default_value = DB_CREDENTIALS_DIR)]
    db_credentials_dir: PathBuf,
    /// A PostgreSQL URL instead of the config + credentials (running by hand).
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
}

#[derive(Subcommand, Clone, Copy, Debug)]
enum Job {
    /// Latest position of every device, per account.
    Positions,
    /// Dense trails of every device over an overlapping look-back.
    Track(WindowArgs),
    /// Alarms of every device over an overlapping look-back.
    Alarms(WindowArgs),
    /// Parking and idling periods over a look-back.
    Parking(WindowArgs),
    /// Device lists; disables devices gone from every account.
    Devices,
    /// Trips of the look-back window, reverse-geocoded through the cache
    /// (tuning: FLEET_TRIPS_LOOKBACK_HOURS, FLEET_GEOCODER_*; see the README).
    Trips,
    /// Retention of the logs and positions, and the reporting refresh.
    Housekeeping,
}

async fn run(args: Args) -> Result<bool, String> {
    let config = PipelineConfig::load(&args.config).map_err(|e| e.to_string())?;
    let guard = Guard::from_config(&config.event_time_guard)
        .ok_or_else(|| "eventTimeGuard in the config is not valid".to_owned())?;
    let options = match &args.database_url {
        Some(url) => connect::from_url(url, &config.database.schema),
        None => connect::from_config(&config.database, &args.db_credentials_dir),
    }
    .map_err(|e| e.to_string())?;
    // Each job shows up as itself in pg_stat_activity.
    let job_name = format!("fleet-ingest {:?}", args.job).to_lowercase();
    let options = options.application_name(&job_name);
    // Connect once up front (a wrong login fails the run at once), then work
    // through a pool that keeps no idle connection: between its short
    // database steps a job holds no connection while it waits on the API.
    let eager = connect::pool(options, 2).await.map_err(|e| e.to_string())?;
    let pool = connect::transient_pool(&eager, 2);
    eager.close().await;
    let ctx = JobContext {
        config,
        pool,
        guard,
    };
    let outcomes = match args.job {
        Job::Positions => ingest::positions::run(&ctx).await,
        Job::Track(w) => ingest::track::run(&ctx, &w).await,
        Job::Alarms(w) => ingest::alarms::run(&ctx, &w).await,
        Job::Parking(w) => ingest::parking::run(&ctx, &w).await,
        Job::Devices => ingest::devices::run(&ctx).await,
        Job::Trips => ingest::trips::run_from_env(&ctx)
            .await
            .map_err(|e| e.to_string())?,
        Job::Housekeeping => ingest::housekeeping::run(&ctx).await,
    };
    ctx.pool.close().await;
    Ok(outcomes.iter().all(|o| o.error.is_none()))
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    // The variant's name, without its flags.
    let job: String = format!("{:?}", args.job)
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_lowercase();
    let span = tracing::info_span!("job", job = %job);
    let _enter = span.enter();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("fleet-ingest: {e}");
            ExitCode::from(2)
        }
    }
}
