//! FleetPipeline operator: the `FleetPipeline` resource and its controller.
//!
//! A reconcile is one pipeline of small steps, each in its own module:
//! dereference (read the pipeline and its live children) → validate
//! ([`desired`]) → build ([`resources`], pure) → apply ([`apply`], server-side
//! apply with one field manager) → status ([`status`]).

pub mod apply;
pub mod controller;
pub mod crd;
pub mod credentials;
pub mod database;
pub mod db;
pub mod dereference;
pub mod desired;
pub mod duration;
pub mod error;
pub mod metrics;
pub mod resources;
pub mod server;
pub mod status;
