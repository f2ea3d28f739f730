//! A Tracksolid Pro / JIMI Open API simulator that speaks the real wire
//! protocol (`reference/tracksolid-api.md`): form-encoded `POST
//! /route/rest`, MD5 signatures, tokens with expiry, the documented error
//! codes and limits, paging, and a deterministic generated fleet. Fault
//! knobs (latency, 5xx bursts, 1004, 1006, accounts down, bad device clocks,
//! duplicate and late points, (0,0) fixes) are set by flags or at run time
//! through `POST /_sim/faults`.
//!
//! One process serves several accounts (targets), told apart by `app_key`.
//!
//! [`nominatim`] is a fake reverse geocoder for the trips job's tests.
//!
//! ```ignore
//! let sim = tracksolid_sim::SimServer::start(SimConfig::for_tests(250, 7)).await?;
//! let endpoint = sim.endpoint(); // http://127.0.0.1:PORT/route/rest
//! sim.state().patch_faults(&FaultsPatch { fail_next: Some(2), ..Default::default() });
//! ```

pub mod admin;
pub mod config;
pub mod faults;
pub mod fleet;
pub mod geo;
pub mod nominatim;
pub mod protocol;
pub mod rng;
pub mod server;
pub mod sign;
pub mod state;

pub use config::{AccountConfig, ErrorCodes, Limits, Motion, SimConfig};
pub use faults::{DeviceQuirk, Faults, FaultsPatch};
pub use nominatim::{FakeNominatim, FakeNominatimConfig};
pub use server::{API_PATH, SimServer};
pub use state::{SimState, Stats};
