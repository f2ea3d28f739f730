//! `fleet-bench`: benchmarks that print tables. Every comparison is a ratio
//! measured in the same run; nothing here asserts a wall-clock threshold.
//!
//! `fleet-bench webhook` posts push batches to the real receiver at rising
//! concurrency and compares, on the same rows in the same run, with the raw
//! insert limit and with an old-stack-style Python receiver (a comparison
//! baseline under bench/baseline/, not product code).
//!
//! `fleet-bench ingest --devices 100,1000,10000` runs the release
//! `fleet-ingest positions` against the simulator: rows/s, CPU time per
//! 1,000 positions and peak RSS of the job.
//!
//! `fleet-bench operator --pipelines 100,500` measures the operator on the
//! test apiserver: time until every pipeline is Ready, write requests counted
//! in the apiserver's audit log against the minimum (one apply per child plus
//! one status write per pipeline), writes during two idle resync periods, and
//! the operator's peak RSS. The operator runs as the real release binary under
//! the minimal RBAC (a ServiceAccount token), so its writes are told apart
//! from everyone else's by user name.

mod ingest;
mod operator;
mod webhook;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "fleet-bench", about = "FleetPipeline benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Operator scale on the test apiserver.
    Operator(operator::Args),
    /// Push receiver throughput into PostgreSQL, against the raw insert
    /// limit and the old-stack-style baseline.
    Webhook(webhook::Args),
    /// `fleet-ingest positions` cost per fleet size, against the simulator.
    Ingest(ingest::Args),
    /// Internal (used by `ingest`): runs a command and prints its own CPU
    /// time and peak RSS.
    #[command(hide = true)]
    MeasureChild(ingest::MeasureArgs),
}

fn main() -> anyhow::Result<()> {
    let command = Cli::parse().command;
    // Before any runtime: the spawner is to stay as small as it can.
    if let Command::MeasureChild(args) = command {
        return ingest::measure_child(args);
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        match command {
            Command::Operator(args) => operator::run(args).await,
            Command::Webhook(args) => webhook::run(args).await,
            Command::Ingest(args) => ingest::run(args).await,
            Command::MeasureChild(_) => Ok(()),
        }
    })
}
