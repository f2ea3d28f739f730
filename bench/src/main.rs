//! `fleet-bench`: benchmarks that print tables. Every comparison is a ratio
//! measured in the same run; nothing here asserts a wall-clock threshold.
//!
//! `fleet-bench webhook` posts push batches to the real receiver at rising
//! concurrency and compares with the raw insert limit of the same rows.
//!
//! `fleet-bench operator --pipelines 100,500` measures the operator on the
//! test apiserver: time until every pipeline is Ready, write requests counted
//! in the apiserver's audit log against the minimum (one apply per child plus
//! one status write per pipeline), writes during two idle resync periods, and
//! the operator's peak RSS. The operator runs as the real release binary under
//! the minimal RBAC (a ServiceAccount token), so its writes are told apart
//! from everyone else's by user name.

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
    /// Push receiver throughput into PostgreSQL, against the raw insert limit.
    Webhook(webhook::Args),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Operator(args) => operator::run(args).await,
        Command::Webhook(args) => webhook::run(args).await,
    }
}
