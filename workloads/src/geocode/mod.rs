//! Reverse geocoding of trip start and end points through a
//! Nominatim-compatible service, at a limited rate, through a cache in
//! `geocode_cache`.
//!
//! - [`key`]: coordinates rounded to 1e-5 degrees, the cache key.
//! - [`limiter`]: request starts spaced `1 / requestsPerSecond` apart.
//! - [`nominatim`]: the HTTP client (`GET /reverse?format=jsonv2&lat=&lon=`).
//! - [`resolve`]: the loop that asks the geocoder about keys the cache did not
//!   know, within a per-run budget.
//! - [`cache`]: reading and writing `geocode_cache`.
//!
//! The geocoder is a trait ([`ReverseGeocoder`]) so tests can use a fake.
//! An answer is `Some(address)`, or `None` when the service knows no address
//! there (cached too, as an empty string, so the sea is not asked about again).

pub mod cache;
pub mod key;
pub mod limiter;
pub mod nominatim;
pub mod resolve;

pub use key::CacheKey;
pub use limiter::RateLimiter;
pub use nominatim::{Nominatim, NominatimOptions};
pub use resolve::{ResolveLimits, Resolved, resolve};

use std::future::Future;

/// Why one reverse-geocoding request failed.
#[derive(Debug, thiserror::Error)]
pub enum GeocodeError {
    #[error("geocoder client: {0}")]
    Build(String),
    #[error("geocoder request failed: {0}")]
    Transport(String),
    #[error("geocoder answered HTTP {0}")]
    HttpStatus(u16),
    #[error("geocoder answer is not valid JSON: {0}")]
    Decode(String),
    #[error("geocoder error: {0}")]
    Service(String),
}

/// A reverse geocoder: the address at a (rounded) point.
pub trait ReverseGeocoder {
    /// `Ok(None)`: the service has no address for this point.
    fn reverse(
        &self,
        at: CacheKey,
    ) -> impl Future<Output = Result<Option<String>, GeocodeError>> + Send;
}
