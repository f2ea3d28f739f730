//! Drop a pipeline's roles (`deletionPolicy: Delete`; the caller skips this
//! for `Retain`). Only roles carrying this pipeline's ownership marker are
//! touched. Per role: stop new logins, end its sessions, then `REASSIGN
//! OWNED` / `DROP OWNED` (its privileges in this database) and `DROP ROLE`.
//! The schema and its data stay.

use super::apply::{RoleError, RoleFailure};
use super::error::{DbError, SqlError, classify, sql_error};
use super::ident::quote_ident;
use super::migrate::check_schema_name;
use super::privileges::WorkloadRole;
use super::roles::{PipelineRef, role_name, role_prefix};
use sqlx::{Connection, PgConnection};
use tracing::{info, warn};

/// What [`drop_roles`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DropReport {
    pub dropped: Vec<String>,
    /// Not there (already dropped, or never created).
    pub absent: Vec<String>,
    /// Failed, or not this pipeline's (left untouched).
    pub errors: Vec<RoleError>,
}

impl DropReport {
    pub fn is_complete(&self) -> bool {
        self.errors.is_empty()
    }
}

fn failed(role: &str, step: &'static str, e: sqlx::Error) -> Result<RoleError, DbError> {
    match sql_error(&e) {
        Some(sql) if !sql.class.is_transient() => Ok(RoleError {
            role: role.to_owned(),
            step,
            failure: RoleFailure::Sql(sql),
        }),
        _ => Err(classify(e)),
    }
}

async fn exec(conn: &mut PgConnection, sql: String) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Drop the four roles of `owner` and forget their password fingerprints in
/// `schema`. Idempotent: absent roles are reported as such.
#[tracing::instrument(skip_all, fields(schema = %schema, pipeline = %owner))]
pub async fn drop_roles(
    conn: &mut PgConnection,
    owner: &PipelineRef,
    schema: &str,
) -> Result<DropReport, DbError> {
    check_schema_name(schema)?;
    let prefix = role_prefix(&owner.namespace, &owner.name);
    let key = super::lock_key("fleetops-roles", &prefix);
    super::advisory_lock(conn, key).await?;
    let result = drop_locked(conn, owner, schema, &prefix).await;
    super::advisory_unlock(conn, key).await;
    result
}

async fn drop_locked(
    conn: &mut PgConnection,
    owner: &PipelineRef,
    schema: &str,
    prefix: &str,
) -> Result<DropReport, DbError> {
    let marker = owner.role_marker();
    let mut report = DropReport::default();
    let (has_state,): (bool,) = sqlx::query_as(
        "SELECT to_regclass(format('%I.fleetops_role_state', $1::text)) IS NOT NULL",
    )
    .bind(schema)
    .fetch_one(&mut *conn)
    .await
    .map_err(classify)?;

    for kind in WorkloadRole::ALL {
        let role = role_name(prefix, kind);
        let found: Option<(Option<String>,)> = sqlx::query_as(
            "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1",
        )
        .bind(&role)
        .fetch_optional(&mut *conn)
        .await
        .map_err(classify)?;
        let Some((comment,)) = found else {
            report.absent.push(role);
            continue;
        };
        if comment.as_deref() != Some(marker.as_str()) {
            report.errors.push(RoleError {
                role,
                step: "check role ownership",
                failure: RoleFailure::OwnedElsewhere { found: comment },
            });
            continue;
        }
        let q = quote_ident(&role);

        // 1. No new logins; make sure we may act for the role (a CREATEROLE
        //    admin that is not a superuser needs membership for DROP OWNED).
        let step1 = async {
            let mut tx = conn.begin().await?;
            exec(&mut tx, format!("ALTER ROLE {q} WITH NOLOGIN")).await?;
            let (member,): (bool,) =
                sqlx::query_as("SELECT pg_has_role(current_user, $1, 'MEMBER')")
                    .bind(&role)
                    .fetch_one(&mut *tx)
                    .await?;
            if !member {
                exec(&mut tx, format!("GRANT {q} TO CURRENT_USER")).await?;
            }
            tx.commit().await
        }
        .await;
        if let Err(e) = step1 {
            report.errors.push(failed(&role, "disable login", e)?);
            continue;
        }

        // 2. End its sessions (best effort: needs the right to signal them).
        match sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
             FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&role)
        .fetch_one(&mut *conn)
        .await
        {
            Ok(n) if n > 0 => info!(role = %role, sessions = n, "sessions ended"),
            Ok(_) => {}
            Err(e) => {
                let why = sql_error(&e).unwrap_or_else(|| SqlError::new("", "failed"));
                warn!(role = %role, sqlstate = %why.sqlstate, "could not end sessions");
            }
        }

        // 3. Drop its privileges and the role, forget its password.
        let step3 = async {
            let mut tx = conn.begin().await?;
            exec(&mut tx, format!("REASSIGN OWNED BY {q} TO CURRENT_USER")).await?;
            exec(&mut tx, format!("DROP OWNED BY {q}")).await?;
            exec(&mut tx, format!("DROP ROLE {q}")).await?;
            if has_state {
                let sql = format!(
                    "DELETE FROM {}.fleetops_role_state WHERE role_name = $1",
                    quote_ident(schema)
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(&role)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        }
        .await;
        match step3 {
            Ok(()) => {
                info!(role = %role, "role dropped");
                report.dropped.push(role);
            }
            Err(e) => report.errors.push(failed(&role, "drop role", e)?),
        }
    }
    Ok(report)
}
