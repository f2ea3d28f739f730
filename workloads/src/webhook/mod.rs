//! `fleet-webhook`: the JIMI push receiver.

pub mod memory;
pub mod metrics;
pub mod server;
pub mod store;
