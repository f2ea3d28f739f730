//! Prometheus metrics of the push receiver.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub kind: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableLabels {
    pub table: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone)]
pub struct WebhookMetrics {
    pub requests: Family<RequestLabels, Counter>,
    pub stored: Family<TableLabels, Counter>,
    pub rejected: Family<ReasonLabels, Counter>,
    pub db_seconds: Histogram,
}

impl WebhookMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = WebhookMetrics {
            requests: Family::default(),
            stored: Family::default(),
            rejected: Family::default(),
            db_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
        };
        let r = registry.sub_registry_with_prefix("fleet_webhook");
        r.register(
            "requests",
            "Push requests by message kind and result",
            m.requests.clone(),
        );
        r.register(
            "events_stored",
            "Rows inserted, by table (duplicates insert none)",
            m.stored.clone(),
        );
        r.register(
            "events_rejected",
            "Items not stored as data, by reason",
            m.rejected.clone(),
        );
        r.register(
            "db_seconds",
            "Time to commit one push batch",
            m.db_seconds.clone(),
        );
        m
    }

    pub fn request(&self, kind: &str, result: &str) {
        self.requests
            .get_or_create(&RequestLabels {
                kind: kind.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    pub fn rejected(&self, reason: &str) {
        self.rejected
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    pub fn stored(&self, table: &str, n: u64) {
        if n > 0 {
            self.stored
                .get_or_create(&TableLabels {
                    table: table.to_owned(),
                })
                .inc_by(n);
        }
    }
}
