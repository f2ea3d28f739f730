//! Prometheus metrics of the operator process.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    pub kind: String,
}

#[derive(Clone)]
pub struct Metrics {
    pub reconciles: Counter,
    pub failures: Family<ErrorLabels, Counter>,
    pub duration: Histogram,
    /// The database step alone (connect, claim, migrate, roles, health).
    pub database_duration: Histogram,
    pub writes: Family<WriteLabels, Counter>,
}

impl Metrics {
    /// Create the metrics and register them under `fleet_operator_`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Metrics {
            reconciles: Counter::default(),
            failures: Family::default(),
            duration: Histogram::new(exponential_buckets(0.005, 2.0, 12)),
            database_duration: Histogram::new(exponential_buckets(0.005, 2.0, 12)),
            writes: Family::default(),
        };
        let r = registry.sub_registry_with_prefix("fleet_operator");
        r.register("reconciles", "Reconciles started", m.reconciles.clone());
        r.register(
            "reconcile_errors",
            "Reconciles that failed, by error category",
            m.failures.clone(),
        );
        r.register(
            "reconcile_duration_seconds",
            "Time spent in one reconcile",
            m.duration.clone(),
        );
        r.register(
            "database_step_duration_seconds",
            "Time spent in one reconcile's database step (connect, claim, migrate, roles, health)",
            m.database_duration.clone(),
        );
        r.register(
            "object_writes",
            "Server-side applies, deletes and status patches sent, by kind",
            m.writes.clone(),
        );
        m
    }

    pub fn wrote(&self, kind: &str) {
        self.writes
            .get_or_create(&WriteLabels {
                kind: kind.to_owned(),
            })
            .inc();
    }
}
