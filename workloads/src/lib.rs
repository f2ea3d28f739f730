pub mod config;
pub mod geocode;
pub mod ingest;
pub mod push;
pub mod store;
pub mod tracksolid;
pub mod webhook;
