pub mod config;
pub mod push;
pub mod webhook;
