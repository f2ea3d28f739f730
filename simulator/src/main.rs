//! `tracksolid-sim`: the simulator as a process.
//!
//! ```text
//! tracksolid-sim --listen 127.0.0.1:8089 --devices 50 --seed 7 \
//!     --account KEY:SECRET:USER:PASSWORD --account KEY2:SECRET2:USER2:PASSWORD2
//! tracksolid-sim --config sim.json          # a JSON SimConfig (any subset of fields)
//! curl -X POST 127.0.0.1:8089/_sim/faults -d '{"fail_next":3}'
//! ```

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use tracksolid_sim::{AccountConfig, SimConfig, SimServer};

#[derive(Parser, Debug)]
#[command(
    name = "tracksolid-sim",
    about = "Tracksolid Pro Open API simulator (loopback only by default)"
)]
struct Args {
    /// A JSON file with a SimConfig; flags below override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Listen address [default: 127.0.0.1:8089].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Devices per account [default: 25].
    #[arg(long)]
    devices: Option<usize>,
    /// Fleet seed [default: 1].
    #[arg(long)]
    seed: Option<u64>,
    /// An account as APP_KEY:APP_SECRET:USER_ID:PASSWORD (repeatable; replaces the config's).
    #[arg(long = "account", value_parser = parse_account)]
    accounts: Vec<AccountConfig>,
    /// A JSON file with a list of accounts ({app_key, app_secret, user_id, password, devices?}).
    #[arg(long)]
    accounts_file: Option<PathBuf>,
    /// Longest token lifetime handed out, seconds (force expiry in tests).
    #[arg(long)]
    token_ttl_cap: Option<i64>,
    /// Added latency per API answer, milliseconds.
    #[arg(long)]
    latency_ms: Option<u64>,
    /// The first N API requests fail with HTTP 500.
    #[arg(long)]
    fail_next: Option<u32>,
    /// At most N requests per second and account; the rest get 1006.
    #[arg(long)]
    rate_limit_per_sec: Option<u32>,
    /// An app key or user id whose requests get HTTP 503 (repeatable).
    #[arg(long = "down")]
    down: Vec<String>,
    /// The first N devices of each account report (0,0).
    #[arg(long)]
    zero_fix_devices: Option<usize>,
    /// The next N devices have clocks in 2019.
    #[arg(long)]
    clock_2019_devices: Option<usize>,
    /// The next N devices have clocks in the future.
    #[arg(long)]
    future_clock_devices: Option<usize>,
    /// Some track points come twice.
    #[arg(long)]
    duplicate_points: bool,
    /// Some track points arrive late (gpsMode 1).
    #[arg(long)]
    late_points: bool,
    /// Send `code` as a string.
    #[arg(long)]
    codes_as_strings: bool,
}

fn parse_account(s: &str) -> Result<AccountConfig, String> {
    let parts: Vec<&str> = s.splitn(4, ':').collect();
    match parts.as_slice() {
        [k, sec, u, p] if !k.is_empty() && !sec.is_empty() && !u.is_empty() && !p.is_empty() => {
            Ok(AccountConfig {
                app_key: (*k).into(),
                app_secret: (*sec).into(),
                user_id: (*u).into(),
                password: (*p).into(),
                devices: None,
            })
        }
        _ => Err("expected APP_KEY:APP_SECRET:USER_ID:PASSWORD".into()),
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &PathBuf) -> Result<T, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn build_config(a: Args) -> Result<SimConfig, String> {
    let mut c: SimConfig = match &a.config {
        Some(p) => read_json(p)?,
        None => SimConfig::default(),
    };
    if let Some(v) = a.listen {
        c.listen = v;
    }
    if let Some(v) = a.devices {
        c.devices = v;
    }
    if let Some(v) = a.seed {
        c.seed = v;
    }
    if let Some(p) = &a.accounts_file {
        c.accounts = read_json(p)?;
    }
    if !a.accounts.is_empty() {
        c.accounts = a.accounts;
    }
    if let Some(v) = a.token_ttl_cap {
        c.limits.token_ttl_cap_secs = v;
    }
    let f = &mut c.faults;
    if let Some(v) = a.latency_ms {
        f.latency_ms = v;
    }
    if let Some(v) = a.fail_next {
        f.fail_next = v;
    }
    if let Some(v) = a.rate_limit_per_sec {
        f.rate_limit_per_sec = (v > 0).then_some(v);
    }
    f.down_accounts.extend(a.down);
    if let Some(v) = a.zero_fix_devices {
        f.zero_fix_devices = v;
    }
    if let Some(v) = a.clock_2019_devices {
        f.clock_2019_devices = v;
    }
    if let Some(v) = a.future_clock_devices {
        f.future_clock_devices = v;
    }
    f.duplicate_points |= a.duplicate_points;
    f.late_points |= a.late_points;
    f.codes_as_strings |= a.codes_as_strings;
    Ok(c)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config = match build_config(Args::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tracksolid-sim: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if !config.listen.ip().is_loopback() {
        tracing::warn!(listen = %config.listen, "listening on a non-loopback address");
    }
    let accounts: Vec<String> = config
        .accounts
        .iter()
        .map(|a| format!("{} (user {})", a.app_key, a.user_id))
        .collect();
    let server = match SimServer::start(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tracksolid-sim: cannot listen: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    tracing::info!(endpoint = %server.endpoint(), admin = %server.admin_base(), ?accounts, "serving");
    let stop = tokio::signal::ctrl_c();
    tokio::select! {
        r = server_wait(server) => match r {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => { eprintln!("tracksolid-sim: {e}"); std::process::ExitCode::from(1) }
        },
        _ = stop => std::process::ExitCode::SUCCESS,
    }
}

async fn server_wait(s: SimServer) -> std::io::Result<()> {
    s.wait().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_defaults() {
        let a = Args::parse_from([
            "tracksolid-sim",
            "--devices",
            "7",
            "--account",
            "K:S:U:P:with:colons",
            "--fail-next",
            "2",
            "--down",
            "K",
            "--late-points",
        ]);
        let c = build_config(a).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.devices, 7);
        assert_eq!(c.accounts[0].password, "P:with:colons");
        assert_eq!(c.faults.fail_next, 2);
        assert!(c.faults.down_accounts.contains("K"));
        assert!(c.faults.late_points);
        assert!(c.listen.ip().is_loopback());
        assert!(parse_account("K:S:U").is_err());
    }
}
