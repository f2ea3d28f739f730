pub mod config;
pub mod push;
