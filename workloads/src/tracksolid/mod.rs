//! Tracksolid Pro / JIMI IoT Open API client (facts and their sources:
//! `reference/tracksolid-api.md`).
//!
//! - [`sign`]: the MD5 request signature (§2.2), with the reference's test vectors.
//! - [`request`]: the common parameters and the signed form (§2.1).
//! - [`envelope`], [`lenient`], [`rows`], [`time`], [`types`]: decoding the
//!   answers (§4, §5, pitfalls 3, 8–10).
//! - [`error`], [`retry`]: typed errors and the back-off policy (§4, §6).
//! - [`token`]: the token cache and the [`TokenStore`] trait (§3).
//! - [`client`]: [`TracksolidClient`] and the typed methods.
//!
//! ```ignore
//! let cfg = ClientConfig::new("hk", "https://hk-open.tracksolidpro.com/route/rest", credentials);
//! let client = TracksolidClient::new(cfg, MemoryTokenStore::new())?;
//! let devices = client.device_list().await?;
//! let positions = client.location_list().await?;
//! let alarms = client.alarms(&imeis, begin, end).await?;
//! ```

pub mod client;
pub mod envelope;
pub mod error;
mod http;
pub mod lenient;
pub mod methods;
pub mod options;
pub mod params;
pub mod request;
pub mod retry;
pub mod rows;
pub mod sign;
pub mod time;
pub mod token;
pub mod types;
pub mod window;

// The TLS set-up and loopback test, shared with the geocoder's HTTP client.
pub(crate) use http::{build_tls as tls_config, is_loopback as is_loopback_url};

pub use client::{AlarmScan, ClientStats, TracksolidClient};
pub use envelope::{ApiCode, Envelope};
pub use error::{ErrorClass, RejectKind, TracksolidError, TransientCause};
pub use options::{
    ClientConfig, Credentials, CredentialsError, ProtocolOptions, TokenPolicy, UserPassword,
};
pub use params::Params;
pub use retry::RetryPolicy;
pub use rows::{RowError, Rows};
pub use token::{CachedToken, MemoryTokenStore, TokenStore, TokenStoreError};
pub use types::{
    AccType, Alarm, Device, Location, MileagePage, MileageTotal, ParkingPage, ParkingRow,
    TokenGrant, Track, TrackPoint, Trip,
};
