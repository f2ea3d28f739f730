//! An in-memory [`PushStore`] with the same natural keys as the database, for
//! unit tests of the receiver (the PostgreSQL store is tested against a real
//! server). It can be told to fail, like a database that is down.

use super::store::{Batch, PushStore, StoreError, Stored};
use crate::push::Event;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Default)]
pub struct MemoryStore {
    pub down: AtomicBool,
    rows: Mutex<Rows>,
}

#[derive(Default, Debug, Clone)]
pub struct Rows {
    pub raw: HashSet<(String, String)>,
    pub positions: HashSet<(String, i64)>,
    pub alarms: HashSet<(String, String, i64)>,
    pub heartbeats: HashSet<(String, i64)>,
}

impl MemoryStore {
    pub fn rows(&self) -> Rows {
        self.rows.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl PushStore for MemoryStore {
    fn store<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Result<Stored, StoreError>> {
        Box::pin(async move {
            if self.down.load(Ordering::SeqCst) {
                return Err(StoreError::Unavailable("memory store is down".into()));
            }
            let mut rows = self
                .rows
                .lock()
                .map_err(|_| StoreError::Write("poisoned".into()))?;
            let mut stored = Stored::default();
            for item in &batch.items {
                let key = (batch.kind.name().to_owned(), item.raw.to_string());
                stored.raw += u64::from(rows.raw.insert(key));
                if item.rejected.is_some() {
                    continue;
                }
                match &item.event {
                    Some(Event::Gps(g)) => {
                        stored.positions += u64::from(
                            rows.positions
                                .insert((g.imei.clone(), g.gps_time.as_second())),
                        );
                    }
                    Some(Event::Alarm(a)) => {
                        stored.alarms += u64::from(rows.alarms.insert((
                            a.imei.clone(),
                            a.alarm_type.clone(),
                            a.alarm_time.as_second(),
                        )));
                    }
                    Some(Event::Heartbeat(h)) => {
                        stored.heartbeats += u64::from(
                            rows.heartbeats
                                .insert((h.imei.clone(), h.gate_time.as_second())),
                        );
                    }
                    Some(Event::Raw) | None => {}
                }
            }
            Ok(stored)
        })
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            if self.down.load(Ordering::SeqCst) {
                Err(StoreError::Unavailable("memory store is down".into()))
            } else {
                Ok(())
            }
        })
    }

    fn ingest_health(&self) -> BoxFuture<'_, Result<Value, StoreError>> {
        Box::pin(async move { Ok(json!({"endpoints": []})) })
    }
}
