pub mod config;
pub mod ingest;
pub mod push;
pub mod store;
pub mod tracksolid;
pub mod webhook;
