//! Status: conditions with observedGeneration, per-job state and the printer
//! column summaries. Computed as a pure function of the previous status and
//! what this reconcile saw, so an unchanged pipeline produces an identical
//! status and no write.

use crate::crd::{FleetPipelineStatus, JobStatus, WebhookStatus};
use crate::desired::DesiredPipeline;
use crate::resources::cronjob;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

pub const READY: &str = "Ready";
pub const PROGRESSING: &str = "Progressing";
pub const DEGRADED: &str = "Degraded";

/// What a reconcile found.
pub enum Outcome<'a> {
    /// Every owned object matches the spec.
    Reconciled {
        desired: &'a DesiredPipeline,
        cron_jobs: &'a [CronJob],
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
        Outcome::Reconciled { desired, cron_jobs } => {
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
                // The webhook Deployment is not rendered by this version yet.
                Some(_) => WebhookStatus {
                    summary: "NotDeployed".to_owned(),
                    ..Default::default()
                },
            });
            status.jobs = desired
                .jobs
                .iter()
                .map(|job| {
                    let cj_name = cronjob::name(&desired.name, job.kind);
                    let live = cron_jobs
                        .iter()
                        .find(|c| c.metadata.name.as_deref() == Some(&cj_name));
                    let previous =
                        previous.and_then(|p| p.jobs.iter().find(|j| j.name == job.kind.as_str()));
                    JobStatus {
                        name: job.kind.as_str().to_owned(),
                        cron_job: cj_name,
                        schedule: job.schedule.clone(),
                        suspended: Some(job.suspend),
                        last_schedule_time: live
                            .and_then(|c| c.status.as_ref())
                            .and_then(|s| s.last_schedule_time.as_ref())
                            .map(|t| t.0.to_string()),
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
        let outcome = Outcome::Reconciled {
            desired: &d,
            cron_jobs: &[],
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
                cron_jobs: &[],
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
