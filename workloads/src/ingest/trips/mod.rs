//! `fleet-ingest trips` (FIX-M23): the trips of every device of each account
//! (`jimi.device.track.mileage`, distances in metres), enriched from the
//! stored positions and reverse-geocoded through the cache, strictly phased
//! so that no database connection is held while waiting on the network:
//!
//! 1. **fetch** — the device list and the trips of the look-back window from
//!    the API. Only the token cache is touched, on a connection closed as
//!    soon as it is released.
//! 2. **read** — one connection, two queries: which trips are stored already
//!    (and with which addresses), the device's positions during each new trip
//!    (missing start/end points, top speed), and the cached addresses of the
//!    wanted points. The connection is closed after.
//! 3. **geocode** — the points the cache did not answer, one request at a
//!    time at `geocoding.requestsPerSecond`, with no connection at all.
//! 4. **write** — one transaction: new cache rows, new trips
//!    (`ON CONFLICT (imei, start_time) DO NOTHING`) and addresses still
//!    missing on stored trips.
//!
//! Each target runs on a [`transient_pool`] (no idle connections), and the
//! job's shared pool is emptied of idle connections before each target, so
//! during phases 1 and 3 the process has no database connection open.
//!
//! Then one `ingestion_log` row per target with the exact trips inserted and
//! the trips refused (outside the event-time guard, no times, reversed).

pub mod options;
pub mod plan;

pub use options::TripsOptions;

use super::log::{self, LogRow};
use super::{JobContext, TargetOutcome, client_for};
use crate::config::TargetConfig;
use crate::geocode::{
    self, Nominatim, NominatimOptions, RateLimiter, Resolved, ReverseGeocoder, cache,
};
use crate::store::connect::{release_idle, transient_pool};
use crate::tracksolid::TracksolidError;
use jiff::{SignedDuration, Timestamp};
use plan::{Action, Candidate, TripRow};
use std::collections::BTreeSet;
use tracing::{Instrument, info, info_span, warn};

/// The `ingestion_log.endpoint` of this job.
pub const ENDPOINT: &str = "trips";

#[derive(Debug, thiserror::Error)]
pub enum TripsError {
    #[error("{0}")]
    Setup(String),
    #[error("tracksolid: {0}")]
    Api(#[from] TracksolidError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// What one target's run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TripCounts {
    pub fetched: usize,
    pub rejected: u64,
    pub inserted: u64,
    /// Stored trips whose missing addresses were filled.
    pub addresses_filled: u64,
    /// Points answered by the cache.
    pub cache_hits: usize,
    pub geocoder_requests: usize,
    pub geocoder_failures: usize,
    /// Points left for a later run (budget, geocoder down or not configured).
    pub geocode_skipped: usize,
    pub cache_rows_inserted: u64,
}

/// [`run`] with the options of the environment ([`TripsOptions::from_env`]).
pub async fn run_from_env(ctx: &JobContext) -> Result<Vec<TargetOutcome>, options::OptionError> {
    let opts = TripsOptions::from_env()?;
    Ok(run(ctx, &opts).await)
}

/// Runs the job for every target with the geocoder of the config (none:
/// addresses come from the cache only).
pub async fn run(ctx: &JobContext, opts: &TripsOptions) -> Vec<TargetOutcome> {
    let Some(g) = &ctx.config.geocoding else {
        return run_with::<Nominatim>(ctx, opts, None, RateLimiter::per_second(1)).await;
    };
    let nominatim = Nominatim::new(&NominatimOptions {
        base_url: g.url.clone(),
        // The pipeline's setting, else the environment's or the default.
        user_agent: g
            .user_agent
            .clone()
            .unwrap_or_else(|| opts.user_agent.clone()),
        timeout: opts.geocoder_timeout,
    });
    match nominatim {
        Ok(n) => {
            let limiter = RateLimiter::per_second(g.requests_per_second);
            run_with(ctx, opts, Some(&n), limiter).await
        }
        Err(e) => {
            let error = e.to_string();
            let mut out = Vec::new();
            for target in &ctx.config.targets {
                let started = Timestamp::now();
                out.push(finish(ctx, target, started, Err(TripsError::Setup(error.clone()))).await);
            }
            out
        }
    }
}

/// Runs the job with any geocoder; one rate limit across all targets.
pub async fn run_with<G: ReverseGeocoder>(
    ctx: &JobContext,
    opts: &TripsOptions,
    geocoder: Option<&G>,
    mut limiter: RateLimiter,
) -> Vec<TargetOutcome> {
    let mut out = Vec::new();
    for target in &ctx.config.targets {
        let span = info_span!("trips", target = %target.name);
        let outcome = async {
            let started = Timestamp::now();
            let result = phases(ctx, opts, target, geocoder, &mut limiter).await;
            finish(ctx, target, started, result).await
        }
        .instrument(span)
        .await;
        out.push(outcome);
    }
    out
}

async fn phases<G: ReverseGeocoder>(
    ctx: &JobContext,
    opts: &TripsOptions,
    target: &TargetConfig,
    geocoder: Option<&G>,
    limiter: &mut RateLimiter,
) -> Result<TripCounts, TripsError> {
    let mut counts = TripCounts::default();
    // The shared pool still has the previous target's log connection.
    release_idle(&ctx.pool).await;
    let pool = transient_pool(&ctx.pool, 2);

    // 1. Fetch, holding no connection.
    let rows = async {
        let client = client_for(target, &pool).map_err(TripsError::Setup)?;
        let end = Timestamp::now();
        let lookback = SignedDuration::try_from(opts.lookback).unwrap_or(SignedDuration::ZERO);
        let begin = end.checked_sub(lookback).unwrap_or(end);
        let imeis: Vec<String> = client
            .device_list()
            .await?
            .into_iter()
            .map(|d| d.imei.trim().to_owned())
            .filter(|i| !i.is_empty())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let page = client.trips(&imeis, begin, end).await?;
        counts.fetched = page.trips.len();
        let (rows, rejected) = plan::accept(&page.trips, &ctx.guard, Timestamp::now());
        counts.rejected = rejected;
        info!(
            devices = imeis.len(),
            trips = counts.fetched,
            rejected,
            "fetched"
        );
        Ok::<_, TripsError>(rows)
    }
    .instrument(info_span!("fetch"))
    .await?;

    // 2. One short read.
    let (mut candidates, wanted, cached) = async {
        let mut conn = pool.acquire().await?;
        let known = crate::store::trips::known(&mut conn, &rows).await?;
        let candidates: Vec<Candidate> = rows
            .into_iter()
            .zip(known.iter())
            .map(|(row, k)| Candidate::enrich(row, k))
            .collect();
        let wanted = plan::wanted_keys(&candidates);
        let cached = cache::lookup(&mut conn, &wanted).await?;
        conn.close().await?;
        Ok::<_, TripsError>((candidates, wanted, cached))
    }
    .instrument(info_span!("read"))
    .await?;

    // 3. Geocode, holding no connection.
    let ask = plan::to_ask(&wanted, &cached);
    counts.cache_hits = wanted.len().saturating_sub(ask.len());
    let resolved = match geocoder {
        Some(g) if !ask.is_empty() => {
            geocode::resolve(g, limiter, &ask, opts.limits)
                .instrument(info_span!("geocode", points = ask.len()))
                .await
        }
        _ => Resolved {
            skipped: ask.len(),
            ..Resolved::default()
        },
    };
    counts.geocoder_requests = resolved.requests;
    counts.geocoder_failures = resolved.failed;
    counts.geocode_skipped = resolved.skipped;

    // 4. One write transaction.
    let mut addresses = cached;
    addresses.extend(resolved.answers.iter().map(|(k, v)| (*k, v.clone())));
    for c in &mut candidates {
        c.fill_addresses(&addresses);
    }
    let (new, fill): (Vec<TripRow>, Vec<TripRow>) = {
        let mut new = Vec::new();
        let mut fill = Vec::new();
        for c in candidates {
            match c.action {
                Action::Insert => new.push(c.row),
                Action::FillAddresses { .. } => fill.push(c.row),
                Action::Skip => {}
            }
        }
        (new, fill)
    };
    async {
        let mut tx = pool.begin().await?;
        counts.cache_rows_inserted = cache::store(&mut tx, &resolved.answers).await?;
        counts.inserted = crate::store::trips::insert(&mut tx, &new).await?;
        counts.addresses_filled = crate::store::trips::fill_addresses(&mut tx, &fill).await?;
        tx.commit().await?;
        Ok::<_, TripsError>(())
    }
    .instrument(info_span!("write"))
    .await?;
    pool.close().await;
    Ok(counts)
}

/// Writes the target's `ingestion_log` row and reports.
async fn finish(
    ctx: &JobContext,
    target: &TargetConfig,
    started: Timestamp,
    result: Result<TripCounts, TripsError>,
) -> TargetOutcome {
    let (counts, error) = match result {
        Ok(c) => (c, None),
        Err(e) => (TripCounts::default(), Some(e.to_string())),
    };
    let row = LogRow {
        endpoint: ENDPOINT,
        target: &target.name,
        started_at: started,
        finished_at: Timestamp::now(),
        inserted: counts.inserted,
        rejected: counts.rejected,
        error: error.as_deref(),
    };
    let error = match log::write(&ctx.pool, &row).await {
        Ok(()) => error,
        Err(e) => Some(error.unwrap_or_else(|| format!("ingestion_log: {e}"))),
    };
    match &error {
        None => info!(
            target = %target.name,
            inserted = counts.inserted,
            rejected = counts.rejected,
            addresses_filled = counts.addresses_filled,
            cache_hits = counts.cache_hits,
            geocoder_requests = counts.geocoder_requests,
            geocoder_failures = counts.geocoder_failures,
            geocode_skipped = counts.geocode_skipped,
            cache_rows_inserted = counts.cache_rows_inserted,
            "trips stored"
        ),
        Some(e) => warn!(target = %target.name, error = %e, "trips failed"),
    }
    TargetOutcome {
        target: target.name.clone(),
        inserted: counts.inserted,
        rejected: counts.rejected,
        error,
    }
}
