//! Status: conditions with observedGeneration, per-job state and the printer
//! column summaries. Computed as a pure function of the previous status and
//! what this reconcile saw, so an unchanged pipeline produces an identical
//! status and no write.

use crate::crd::{FleetPipelineStatus, JobStatus, WebhookStatus};
use crate::desired::DesiredPipeline;
use crate::resources::cronjob;
use crate::resources::webhook;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

pub const READY: &str = "Ready";
pub const PROGRESSING: &str = "Progressing";
pub const DEGRADED: &str = "Degraded";

/// Live objects whose status feeds the pipeline's status. (CronJob run
/// times are deliberately not copied: they change on every run and would
/// make status churn; ingest health comes from the database instead.)
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub webhook: Option<Deployment>,
}

/// What a reconcile found.
pub enum Outcome<'a> {
    /// Every owned object matches the spec.
    Reconciled {
        desired: &'a DesiredPipeline,
        observed: &'a Observed,
    },
    /// The reconcile stopped on an error.
    Failed { reason: &'a str, message: String },
}

/// Set a condition, keeping `lastTransitionTime` while its status holds.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: &Time,
) {
    let status = if status { "True" } else { "False" };
    let transition = conditions
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    conditions.retain(|c| c.type_ != type_);
    conditions.push(Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: message.to_owned(),
        observed_generation: generation,
        last_transition_time: transition,
    });
    conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
}

/// The status a reconcile should leave behind.
pub fn compute(
    previous: Option<&FleetPipelineStatus>,
    generation: Option<i64>,
    outcome: &Outcome<'_>,
    now: &Time,
) -> FleetPipelineStatus {
    let mut status = previous.cloned().unwrap_or_default();
    let conds = &mut status.conditions;
    match outcome {
        Outcome::Reconciled { desired, observed } => {
            status.observed_generation = generation;
            let (reason, message) = if desired.suspend {
                (
                    "Suspended",
                    "spec.suspend is true: every CronJob is suspended",
                )
            } else {
                ("Reconciled", "every owned object matches the spec")
            };
            set_condition(conds, READY, true, reason, message, generation, now);
            set_condition(conds, PROGRESSING, false, "UpToDate", "", generation, now);
            set_condition(conds, DEGRADED, false, "AsExpected", "", generation, now);
            status.targets = i32::try_from(desired.config.targets.len()).ok();
            status.ingest = Some(
                if desired.suspend {
                    "Suspended"
                } else {
                    "Unknown"
                }
                .to_owned(),
            );
            status.webhook = Some(match &desired.webhook {
                None => WebhookStatus {
                    summary: "Disabled".to_owned(),
                    ..Default::default()
                },
                Some(w) => {
                    let ready = observed
                        .webhook
                        .as_ref()
                        .and_then(|d| d.status.as_ref())
                        .and_then(|s| s.ready_replicas)
                        .unwrap_or(0);
                    WebhookStatus {
                        url: Some(webhook::url(&desired.name, &desired.namespace)),
                        ready_replicas: Some(ready),
                        summary: if desired.suspend {
                            "Suspended".to_owned()
                        } else {
                            format!("{ready}/{}", w.replicas)
                        },
                    }
                }
            });
            status.jobs = desired
                .jobs
                .iter()
                .map(|job| {
                    let cj_name = cronjob::name(&desired.name, job.kind);
                    let previous =
                        previous.and_then(|p| p.jobs.iter().find(|j| j.name == job.kind.as_str()));
                    JobStatus {
                        name: job.kind.as_str().to_owned(),
                        cron_job: cj_name,
                        schedule: job.schedule.clone(),
                        suspended: Some(job.suspend),
                        last_run: previous.and_then(|p| p.last_run.clone()),
                        last_rows_inserted: previous.and_then(|p| p.last_rows_inserted),
                        state: Some(
                            previous
                                .and_then(|p| p.state.clone())
                                .unwrap_or_else(|| "Unknown".to_owned()),
                        ),
                    }
                })
                .collect();
        }
        Outcome::Failed { reason, message } => {
            // observedGeneration stays at the last generation fully reconciled.
            set_condition(conds, READY, false, reason, message, generation, now);
            set_condition(
                conds,
                PROGRESSING,
                true,
                "Retrying",
                message,
                generation,
                now,
            );
            set_condition(conds, DEGRADED, true, reason, message, generation, now);
        }
    }
    status
}

/// A merge patch must null out fields that disappeared, not omit them.
pub fn to_merge_patch(status: &FleetPipelineStatus) -> serde_json::Value {
    let mut value = serde_json::to_value(status).unwrap_or_default();
    if let Some(obj) = value.as_object_mut() {
        for key in [
            "observedGeneration",
            "conditions",
            "targets",
            "ingest",
            "schemaVersion",
            "webhook",
            "jobs",
            "roles",
        ] {
            obj.entry(key).or_insert(serde_json::Value::Null);
        }
    }
    value
}

/// A change of the Ready condition worth an Event.
#[derive(Debug, PartialEq, Eq)]
pub struct ReadyChange {
    pub ready: bool,
    pub reason: String,
    pub message: String,
}

/// The Ready condition's new state when its status or reason changed.
pub fn ready_change(
    old: Option<&FleetPipelineStatus>,
    new: &FleetPipelineStatus,
) -> Option<ReadyChange> {
    let find = |s: &FleetPipelineStatus| s.conditions.iter().find(|c| c.type_ == READY).cloned();
    let new_ready = find(new)?;
    let old_ready = old.and_then(find);
    let changed =
        old_ready.is_none_or(|o| o.status != new_ready.status || o.reason != new_ready.reason);
    changed.then(|| ReadyChange {
        ready: new_ready.status == "True",
        reason: new_ready.reason,
        message: if new_ready.message.is_empty() {
            "pipeline reconciled".to_owned()
        } else {
            new_ready.message
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{resolve, tests::example};

    fn t(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    #[test]
    fn unchanged_outcome_gives_identical_status() {
        let d = resolve(&example(), "img").unwrap();
        let observed = Observed::default();
        let outcome = Outcome::Reconciled {
            desired: &d,
            observed: &observed,
        };
        let first = compute(None, Some(1), &outcome, &t("2026-01-01T00:00:00Z"));
        let second = compute(Some(&first), Some(1), &outcome, &t("2026-01-01T01:00:00Z"));
        assert_eq!(
            first, second,
            "lastTransitionTime holds while nothing changes"
        );
        assert_eq!(first.observed_generation, Some(1));
        let ready = first.conditions.iter().find(|c| c.type_ == READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("True", "Reconciled")
        );
        assert_eq!(ready.observed_generation, Some(1));
        assert_eq!(first.jobs.len(), 7);
        assert_eq!(first.targets, Some(1));
    }

    #[test]
    fn failure_flips_ready_and_keeps_observed_generation() {
        let d = resolve(&example(), "img").unwrap();
        let ok = compute(
            None,
            Some(1),
            &Outcome::Reconciled {
                desired: &d,
                observed: &Observed::default(),
            },
            &t("2026-01-01T00:00:00Z"),
        );
        let failed = compute(
            Some(&ok),
            Some(2),
            &Outcome::Failed {
                reason: "InvalidSpec",
                message: "spec.retention.positions: bad".into(),
            },
            &t("2026-01-01T02:00:00Z"),
        );
        assert_eq!(failed.observed_generation, Some(1));
        let ready = failed.conditions.iter().find(|c| c.type_ == READY).unwrap();
        assert_eq!(ready.status, "False");
        assert_eq!(ready.reason, "InvalidSpec");
        assert_eq!(ready.last_transition_time, t("2026-01-01T02:00:00Z"));
        let degraded = failed
            .conditions
            .iter()
            .find(|c| c.type_ == DEGRADED)
            .unwrap();
        assert_eq!(degraded.status, "True");
    }
}
