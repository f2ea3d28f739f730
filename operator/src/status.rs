//! Status: conditions with observedGeneration, per-job state and the printer
//! column summaries. Computed as a pure function of the previous status and
//! what this reconcile saw, so an unchanged pipeline produces an identical
//! status and no write.

use crate::crd::{FleetPipelineStatus, JobStatus, WebhookStatus};
use crate::database::DbState;
use crate::db::{DbError, RoleFailure};
use crate::desired::DesiredPipeline;
use crate::resources::cronjob;
use crate::resources::webhook;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

pub const READY: &str = "Ready";
pub const PROGRESSING: &str = "Progressing";
pub const DEGRADED: &str = "Degraded";
pub const DATABASE_READY: &str = "DatabaseReady";
pub const INGEST_HEALTHY: &str = "IngestHealthy";
pub const WEBHOOK_SECURED: &str = "WebhookSecured";

/// Live objects whose status feeds the pipeline's status. (CronJob run
/// times are deliberately not copied: they change on every run and would
/// make status churn; ingest health comes from the database instead.)
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub webhook: Option<Deployment>,
    /// The database step's result (None when it was not attempted).
    pub database: Option<Result<DbState, DbError>>,
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
            let db = observed.database.as_ref();
            let db_ok = db.and_then(|r| r.as_ref().ok());
            let health = db_ok.map(|d| d.health.as_slice()).unwrap_or(&[]);
            let problem = database_problem(db);
            let (ready, reason, message) = match &problem {
                Some((reason, message)) => (false, *reason, message.clone()),
                _ if desired.suspend => (
                    true,
                    "Suspended",
                    "spec.suspend is true: every CronJob is suspended".to_owned(),
                ),
                _ => (
                    true,
                    "Reconciled",
                    "every owned object matches the spec".to_owned(),
                ),
            };
            set_condition(conds, READY, ready, reason, &message, generation, now);
            set_condition(conds, PROGRESSING, false, "UpToDate", "", generation, now);
            if ready {
                set_condition(conds, DEGRADED, false, "AsExpected", "", generation, now);
            } else {
                set_condition(conds, DEGRADED, true, reason, &message, generation, now);
            }
            if let Some(Ok(d)) = db {
                status.schema_version = Some(d.schema_version);
                status.roles = d.roles.role_statuses();
            }
            match (db, &problem) {
                (Some(Ok(d)), None) => set_condition(
                    conds,
                    DATABASE_READY,
                    true,
                    "Migrated",
                    &format!(
                        "schema at version {}; {} roles ready",
                        d.schema_version,
                        d.roles.roles.len()
                    ),
                    generation,
                    now,
                ),
                (Some(_), Some((reason, message))) => set_condition(
                    conds,
                    DATABASE_READY,
                    false,
                    reason,
                    message,
                    generation,
                    now,
                ),
                _ => {}
            }
            let ingest = if desired.suspend {
                "Suspended"
            } else if db_ok.is_none() {
                "Unknown"
            } else {
                summarize(health)
            };
            status.ingest = Some(ingest.to_owned());
            if db_ok.is_some() {
                let healthy = ingest == "Healthy" || ingest == "Suspended";
                let detail = health
                    .iter()
                    .filter(|h| h.state != "Healthy")
                    .map(|h| format!("{}: {}", h.endpoint, h.state))
                    .collect::<Vec<_>>()
                    .join(", ");
                set_condition(
                    conds,
                    INGEST_HEALTHY,
                    healthy,
                    ingest,
                    &detail,
                    generation,
                    now,
                );
            }
            match &desired.webhook {
                Some(w) if w.require_token => set_condition(
                    conds,
                    WEBHOOK_SECURED,
                    true,
                    "TokenRequired",
                    "pushes without the token from webhook.tokenSecretRef are refused",
                    generation,
                    now,
                ),
                Some(_) => set_condition(
                    conds,
                    WEBHOOK_SECURED,
                    false,
                    "TokenNotRequired",
                    "webhook.requireToken is false: the receiver accepts pushes from anyone who can reach it",
                    generation,
                    now,
                ),
                None => conds.retain(|c| c.type_ != WEBHOOK_SECURED),
            }
            status.targets = i32::try_from(desired.config.targets.len()).ok();
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
                    let h = health.iter().find(|h| h.endpoint == job.kind.as_str());
                    JobStatus {
                        name: job.kind.as_str().to_owned(),
                        cron_job: cj_name,
                        schedule: job.schedule.clone(),
                        suspended: Some(job.suspend),
                        last_run: h.and_then(|h| h.last_run.clone()),
                        last_rows_inserted: h.and_then(|h| h.last_rows_inserted),
                        state: Some(
                            h.map(|h| h.state.clone())
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

/// Why the database is not ready, as a condition reason and message: the
/// step failed, or some role did not converge (each role's own error is in
/// `status.roles`).
pub fn database_problem(db: Option<&Result<DbState, DbError>>) -> Option<(&'static str, String)> {
    match db? {
        Err(e) => Some((e.reason(), e.to_string())),
        Ok(d) if d.roles.is_ready() => None,
        Ok(d) => {
            let conflict = d
                .roles
                .errors()
                .any(|e| matches!(e.failure, RoleFailure::OwnedElsewhere { .. }));
            let failed: Vec<String> = d.roles.errors().map(|e| e.role.clone()).collect();
            Some((
                if conflict {
                    "RoleConflict"
                } else {
                    "RoleFailed"
                },
                format!(
                    "roles not converged: {} (see status.roles)",
                    failed.join(", ")
                ),
            ))
        }
    }
}

/// One word for the pipeline's ingest: Failing if any active endpoint
/// fails, else Stale if any is late, else Healthy once all have run, else
/// Unknown (nothing has run yet).
pub fn summarize(health: &[crate::database::EndpointHealth]) -> &'static str {
    let any = |state: &str| health.iter().any(|h| h.state == state);
    if any("Failing") {
        "Failing"
    } else if any("Stale") {
        "Stale"
    } else if !health.is_empty() && health.iter().all(|h| h.state == "Healthy") {
        "Healthy"
    } else {
        "Unknown"
    }
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
    fn an_unauthenticated_webhook_is_flagged_in_status() {
        let mut fp = example();
        let now = t("2026-01-01T00:00:00Z");
        let secured = |fp: &crate::crd::FleetPipeline| {
            let d = resolve(fp, "img").unwrap();
            let observed = Observed::default();
            let st = compute(
                None,
                Some(1),
                &Outcome::Reconciled {
                    desired: &d,
                    observed: &observed,
                },
                &now,
            );
            st.conditions
                .iter()
                .find(|c| c.type_ == WEBHOOK_SECURED)
                .map(|c| (c.status.clone(), c.reason.clone()))
        };
        assert_eq!(
            secured(&fp),
            Some(("True".to_owned(), "TokenRequired".to_owned()))
        );
        if let Some(w) = fp.spec.webhook.as_mut() {
            w.require_token = Some(false);
        }
        assert_eq!(
            secured(&fp),
            Some(("False".to_owned(), "TokenNotRequired".to_owned()))
        );
        if let Some(w) = fp.spec.webhook.as_mut() {
            w.enabled = Some(false);
        }
        assert_eq!(secured(&fp), None);
    }

    #[test]
    fn database_state_reaches_conditions_and_columns() {
        use crate::database::{DbState, EndpointHealth};
        use crate::db::DbError;
        let d = resolve(&example(), "img").unwrap();
        let now = t("2026-01-01T00:00:00Z");
        let down = Observed {
            webhook: None,
            database: Some(Err(DbError::Unreachable("connection refused".into()))),
        };
        let st = compute(
            None,
            Some(1),
            &Outcome::Reconciled {
                desired: &d,
                observed: &down,
            },
            &now,
        );
        let ready = st.conditions.iter().find(|c| c.type_ == READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "Unreachable")
        );
        let db = st
            .conditions
            .iter()
            .find(|c| c.type_ == DATABASE_READY)
            .unwrap();
        assert_eq!(db.status, "False");
        assert_eq!(st.ingest.as_deref(), Some("Unknown"));

        let h = |e: &str, s: &str| EndpointHealth {
            endpoint: e.into(),
            state: s.into(),
            last_run: Some("2026-01-01T00:00:00Z".into()),
            last_rows_inserted: Some(3),
        };
        let up = Observed {
            webhook: None,
            database: Some(Ok(DbState {
                schema_version: 7,
                health: vec![h("alarms", "Healthy"), h("positions", "Stale")],
                roles: Default::default(),
            })),
        };
        let st = compute(
            None,
            Some(1),
            &Outcome::Reconciled {
                desired: &d,
                observed: &up,
            },
            &now,
        );
        assert_eq!(st.schema_version, Some(7));
        assert_eq!(st.ingest.as_deref(), Some("Stale"));
        let ingest = st
            .conditions
            .iter()
            .find(|c| c.type_ == INGEST_HEALTHY)
            .unwrap();
        assert_eq!(
            (ingest.status.as_str(), ingest.message.as_str()),
            ("False", "positions: Stale")
        );
        let alarms = st.jobs.iter().find(|j| j.name == "alarms").unwrap();
        assert_eq!(
            (alarms.state.as_deref(), alarms.last_rows_inserted),
            (Some("Healthy"), Some(3))
        );
        assert_eq!(
            summarize(&[h("a", "Healthy"), h("b", "Failing")]),
            "Failing"
        );
        assert_eq!(summarize(&[h("a", "Healthy")]), "Healthy");
        assert_eq!(summarize(&[]), "Unknown");
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
