//! Where a push batch goes. The receiver answers 2xx only after `store`
//! returned Ok, i.e. after the batch is committed; any error is a 503 so the
//! sender retries and nothing acknowledged is lost.

use crate::push::{Event, PushKind};
use futures::future::BoxFuture;
use jiff::Timestamp;
use serde_json::Value;
use thiserror::Error;

/// One raw item of a push, typed where possible, with the guard's verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchItem {
    pub raw: Value,
    pub imei: Option<String>,
    /// Typed event; None when the kind is known but a field was missing.
    pub event: Option<Event>,
    /// Why the typed event is not stored as data (time guard, (0,0) fix,
    /// missing field). The raw item is kept in push_events regardless.
    pub rejected: Option<&'static str>,
}

/// A whole push request.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub kind: PushKind,
    pub received_at: Timestamp,
    pub items: Vec<BatchItem>,
}

/// What a committed batch inserted (duplicates insert nothing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stored {
    pub raw: u64,
    pub positions: u64,
    pub alarms: u64,
    pub heartbeats: u64,
}

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database write failed: {0}")]
    Write(String),
}

/// The receiver's storage.
pub trait PushStore: Send + Sync + 'static {
    /// Store a batch in one transaction; Ok only once it is committed.
    fn store<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Result<Stored, StoreError>>;
    /// Is the database reachable (for /readyz)?
    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Ingest health of the active endpoints (for /health/ingest).
    fn ingest_health(&self) -> BoxFuture<'_, Result<Value, StoreError>>;
}
