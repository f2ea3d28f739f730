//! Execute a plan: each role's steps in one transaction (all or nothing for
//! that role), PUBLIC's last; a failing role does not stop the others. The
//! report names the role, the step and the SQLSTATE — never the statement.

use super::catalog::observe;
use super::error::{DbError, SqlClass, SqlError, classify, sql_error};
use super::plan::{Action, RoleConflict, conflicts, plan};
use super::roles::DesiredRoles;
use sqlx::{Connection, PgConnection};
use std::time::Duration;
use tracing::{Instrument, debug, info, info_span, warn};

/// Why a role is not as desired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoleFailure {
    /// A statement failed; the role's transaction was rolled back.
    Sql(SqlError),
    /// The role exists but belongs to someone else: left untouched.
    OwnedElsewhere { found: Option<String> },
}

/// One role's error, safe for `status.roles[].message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleError {
    /// The role name, or `PUBLIC` for the schema-wide revokes.
    pub role: String,
    /// The kind of step that failed (a fixed label).
    pub step: &'static str,
    pub failure: RoleFailure,
}

impl RoleError {
    /// One line: `grant privileges: SQLSTATE 42501: permission denied …`.
    pub fn message(&self) -> String {
        match &self.failure {
            RoleFailure::Sql(e) => format!("{}: {e}", self.step),
            RoleFailure::OwnedElsewhere { found: Some(c) } => {
                format!("role exists and is not this pipeline's ({c}); left untouched")
            }
            RoleFailure::OwnedElsewhere { found: None } => {
                "role exists and was not created by FleetPipeline; left untouched".to_owned()
            }
        }
    }

    /// SQLSTATE, when the server returned one.
    pub fn sqlstate(&self) -> Option<&str> {
        match &self.failure {
            RoleFailure::Sql(e) if !e.sqlstate.is_empty() => Some(&e.sqlstate),
            _ => None,
        }
    }

    /// When to try again: expected errors (42501, a foreign role) wait for a
    /// person; transient ones retry soon.
    pub fn requeue_after(&self) -> Duration {
        match &self.failure {
            RoleFailure::Sql(e) => e.class.requeue_after(),
            RoleFailure::OwnedElsewhere { .. } => SqlClass::InsufficientPrivilege.requeue_after(),
        }
    }
}

/// The state of one role after a reconcile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleOutcome {
    pub role: String,
    /// Steps applied (0 in a steady state).
    pub applied: usize,
    pub error: Option<RoleError>,
}

/// What [`apply`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// One per pipeline role, in plan order.
    pub roles: Vec<RoleOutcome>,
    /// The PUBLIC revokes, when they failed.
    pub public_error: Option<RoleError>,
    /// Steps applied in total.
    pub applied: usize,
}

impl ApplyReport {
    pub fn is_ready(&self) -> bool {
        self.public_error.is_none() && self.roles.iter().all(|r| r.error.is_none())
    }

    pub fn errors(&self) -> impl Iterator<Item = &RoleError> {
        self.roles
            .iter()
            .filter_map(|r| r.error.as_ref())
            .chain(self.public_error.as_ref())
    }

    /// The shortest requeue any error asks for, `None` when all is well.
    pub fn requeue_after(&self) -> Option<Duration> {
        self.errors().map(RoleError::requeue_after).min()
    }

    /// `status.roles`: Ready, Failed or Conflict, with a message.
    pub fn role_statuses(&self) -> Vec<crate::crd::RoleStatus> {
        self.roles
            .iter()
            .map(|r| match &r.error {
                None => crate::crd::RoleStatus {
                    name: r.role.clone(),
                    state: "Ready".into(),
                    message: None,
                },
                Some(e) => crate::crd::RoleStatus {
                    name: r.role.clone(),
                    state: match e.failure {
                        RoleFailure::OwnedElsewhere { .. } => "Conflict".into(),
                        RoleFailure::Sql(_) => "Failed".into(),
                    },
                    message: Some(e.message()),
                },
            })
            .collect()
    }
}

async fn execute(tx: &mut PgConnection, action: &Action) -> Result<(), sqlx::Error> {
    match action {
        Action::RecordPassword {
            role, fingerprint, ..
        } => {
            sqlx::query(sqlx::AssertSqlSafe(action.sql()))
                .bind(role)
                .bind(fingerprint)
                .persistent(false)
                .execute(&mut *tx)
                .await?;
        }
        _ => {
            // Simple-query protocol: no prepared statement keeps the text
            // (a password verifier) in the connection's statement cache.
            sqlx::raw_sql(sqlx::AssertSqlSafe(action.sql()))
                .execute(&mut *tx)
                .await?;
        }
    }
    Ok(())
}

/// Is this a failure of the connection rather than of one statement?
fn connection_lost(e: &sqlx::Error) -> bool {
    match sql_error(e) {
        Some(s) => s.class == SqlClass::Connection,
        None => !matches!(e, sqlx::Error::Database(_)),
    }
}

/// Run one group of steps in a transaction.
async fn run_group(
    conn: &mut PgConnection,
    label: &str,
    steps: &[&Action],
) -> Result<Result<usize, RoleError>, DbError> {
    let mut tx = conn.begin().await.map_err(classify)?;
    for action in steps {
        debug!(step = %action.describe(), "applying");
        if let Err(e) = execute(&mut tx, action).await {
            if connection_lost(&e) {
                return Err(classify(e));
            }
            let sql = sql_error(&e).unwrap_or_else(|| SqlError::new("", "statement failed"));
            // Dropping the transaction rolls it back.
            let _ = tx.rollback().await;
            return Ok(Err(RoleError {
                role: label.to_owned(),
                step: action.label(),
                failure: RoleFailure::Sql(sql),
            }));
        }
    }
    tx.commit().await.map_err(classify)?;
    Ok(Ok(steps.len()))
}

/// Execute `actions` (from [`plan`]) in order, one transaction per role and
/// one for PUBLIC. Roles of `desired` without steps are reported as done.
/// Fails as a whole only when the connection is lost.
pub async fn apply(
    conn: &mut PgConnection,
    desired: &DesiredRoles,
    actions: &[Action],
) -> Result<ApplyReport, DbError> {
    let mut report = ApplyReport::default();
    for role in &desired.roles {
        let steps: Vec<&Action> = actions
            .iter()
            .filter(|a| a.role() == Some(role.name.as_str()))
            .collect();
        let outcome = if steps.is_empty() {
            RoleOutcome {
                role: role.name.clone(),
                applied: 0,
                error: None,
            }
        } else {
            let span = info_span!("role", role = %role.name, steps = steps.len());
            match run_group(conn, &role.name, &steps).instrument(span).await? {
                Ok(n) => {
                    info!(role = %role.name, steps = n, "role reconciled");
                    report.applied += n;
                    RoleOutcome {
                        role: role.name.clone(),
                        applied: n,
                        error: None,
                    }
                }
                Err(e) => {
                    warn!(role = %role.name, step = e.step, sqlstate = e.sqlstate().unwrap_or(""), error = %e.message(), "role not reconciled");
                    RoleOutcome {
                        role: role.name.clone(),
                        applied: 0,
                        error: Some(e),
                    }
                }
            }
        };
        report.roles.push(outcome);
    }
    let public: Vec<&Action> = actions.iter().filter(|a| a.role().is_none()).collect();
    if !public.is_empty() {
        match run_group(conn, "PUBLIC", &public).await? {
            Ok(n) => report.applied += n,
            Err(e) => {
                warn!(step = e.step, sqlstate = e.sqlstate().unwrap_or(""), error = %e.message(), "PUBLIC revokes failed");
                report.public_error = Some(e);
            }
        }
    }
    Ok(report)
}

fn conflict_error(c: RoleConflict) -> RoleError {
    RoleError {
        role: c.role,
        step: "check role ownership",
        failure: RoleFailure::OwnedElsewhere { found: c.found },
    }
}

/// Observe, plan and apply under an advisory lock keyed by the role prefix
/// (two operator replicas never interleave). Roles owned by someone else
/// are reported as `Conflict`. Run [`super::migrate::migrate`] first: grants
/// go to the objects that exist.
#[tracing::instrument(skip_all, fields(schema = %desired.schema, prefix = %desired.prefix))]
pub async fn reconcile_roles(
    conn: &mut PgConnection,
    desired: &DesiredRoles,
) -> Result<ApplyReport, DbError> {
    let key = super::lock_key("fleetops-roles", &desired.prefix);
    super::advisory_lock(conn, key).await?;
    let result = async {
        let observed = observe(conn, desired).await?;
        let found = conflicts(desired, &observed);
        let actions = plan(desired, &observed);
        info!(steps = actions.len(), conflicts = found.len(), "role plan");
        let mut report = apply(conn, desired, &actions).await?;
        for c in found {
            if let Some(r) = report.roles.iter_mut().find(|r| r.role == c.role) {
                r.error = Some(conflict_error(c));
            }
        }
        Ok(report)
    }
    .await;
    super::advisory_unlock(conn, key).await;
    result
}
