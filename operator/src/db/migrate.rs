//! Claim the pipeline schema and apply the migrations into it.
//!
//! Under a PostgreSQL advisory lock keyed by the schema name (session level,
//! on the caller's connection):
//! 1. check the claim: a schema claimed by another FleetPipeline
//!    (namespace/name), or one holding objects FleetPipeline never created,
//!    is refused and nothing is changed;
//! 2. create the schema, `fleetops_claim` and `fleetops_role_state`, and
//!    record the claim (one transaction);
//! 3. apply `migrations/` with the schema as `search_path` (unqualified names
//!    in the SQL land in it, `_sqlx_migrations` included);
//! 4. report the latest applied version.
//!
//! A pipeline deleted with `Retain` and created again under the same
//! namespace/name gets a new uid; it adopts its schema (and roles) again,
//! which is what Retain is for. A different namespace/name never does.

use super::error::{DbError, classify, classify_migrate};
use super::ident::quote_ident;
use super::roles::{MAX_IDENT, PipelineRef};
use sqlx::PgConnection;
use tracing::info;

/// The migrations, embedded at build time once, in `fleet-workloads` (the
/// same set the workloads' by-hand path applies).
pub use fleet_workloads::store::schema::MIGRATOR;

/// The newest migration this build carries.
pub fn latest_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// What [`migrate`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationReport {
    /// Latest applied migration: `status.schemaVersion`.
    pub version: i64,
    /// Versions applied by this call (empty when up to date).
    pub applied: Vec<i64>,
    /// Set when the claim was adopted from an earlier uid of the same
    /// namespace/name (a pipeline re-created after `Retain`).
    pub adopted_from_uid: Option<String>,
}

pub(crate) fn check_schema_name(schema: &str) -> Result<(), DbError> {
    if schema.is_empty() || schema.len() > MAX_IDENT || schema.contains('\0') {
        return Err(DbError::Invalid {
            what: "schema",
            reason: format!("must be 1 to {MAX_IDENT} bytes without NUL"),
        });
    }
    Ok(())
}

/// Claim `schema` for `owner` and apply every pending migration into it.
#[tracing::instrument(skip_all, fields(schema = %schema, pipeline = %owner))]
pub async fn migrate(
    conn: &mut PgConnection,
    schema: &str,
    owner: &PipelineRef,
) -> Result<MigrationReport, DbError> {
    check_schema_name(schema)?;
    let key = super::schema_lock_key(schema);
    super::advisory_lock(conn, key).await?;
    let result = migrate_locked(conn, schema, owner).await;
    super::advisory_unlock(conn, key).await;
    result
}

async fn migrate_locked(
    conn: &mut PgConnection,
    schema: &str,
    owner: &PipelineRef,
) -> Result<MigrationReport, DbError> {
    let adopted_from_uid = claim(conn, schema, owner).await?;
    let before = applied_versions(conn, schema).await?;

    // Run with the pipeline schema first and pg_temp explicitly last (so the
    // SECURITY DEFINER functions capture a safe search_path).
    let (saved,): (String,) = sqlx::query_as("SELECT current_setting('search_path')")
        .fetch_one(&mut *conn)
        .await
        .map_err(classify)?;
    let set = format!("SET search_path TO {}, pg_temp", quote_ident(schema));
    sqlx::raw_sql(sqlx::AssertSqlSafe(set))
        .execute(&mut *conn)
        .await
        .map_err(classify)?;
    // `run_direct` (public, used by sqlx-cli) instead of `run`: `run` goes
    // through `Acquire`, whose impl for `&mut PgConnection` makes the future
    // not `Send` for every lifetime, and the controller spawns it.
    let run = MIGRATOR
        .run_direct(None, &mut *conn, false)
        .await
        .map_err(classify_migrate);
    let restore = sqlx::query("SELECT set_config('search_path', $1, false)")
        .bind(&saved)
        .execute(&mut *conn)
        .await
        .map_err(classify);
    run?;
    restore?;

    let after = applied_versions(conn, schema).await?;
    let applied: Vec<i64> = after
        .iter()
        .filter(|v| !before.contains(v))
        .copied()
        .collect();
    let version = after.iter().copied().max().unwrap_or(0);
    if !applied.is_empty() {
        info!(version, applied = ?applied, "migrations applied");
    }
    Ok(MigrationReport {
        version,
        applied,
        adopted_from_uid,
    })
}

async fn applied_versions(conn: &mut PgConnection, schema: &str) -> Result<Vec<i64>, DbError> {
    let (exists,): (bool,) =
        sqlx::query_as("SELECT to_regclass(format('%I._sqlx_migrations', $1::text)) IS NOT NULL")
            .bind(schema)
            .fetch_one(&mut *conn)
            .await
            .map_err(classify)?;
    if !exists {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT version FROM {}._sqlx_migrations WHERE success ORDER BY version",
        quote_ident(schema)
    );
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await
        .map_err(classify)
}

/// Who holds a schema, if anyone: `(namespace, name, uid)`.
pub async fn read_claim(
    conn: &mut PgConnection,
    schema: &str,
) -> Result<Option<(String, String, String)>, DbError> {
    let (exists,): (bool,) =
        sqlx::query_as("SELECT to_regclass(format('%I.fleetops_claim', $1::text)) IS NOT NULL")
            .bind(schema)
            .fetch_one(&mut *conn)
            .await
            .map_err(classify)?;
    if !exists {
        return Ok(None);
    }
    let sql = format!(
        "SELECT namespace, name, uid FROM {}.fleetops_claim",
        quote_ident(schema)
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_optional(&mut *conn)
        .await
        .map_err(classify)
}

/// Does the schema hold anything (tables, views, sequences, functions,
/// types)?
async fn schema_has_objects(conn: &mut PgConnection, schema: &str) -> Result<bool, DbError> {
    let (n,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                        WHERE n.nspname = $1)
             OR EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                        WHERE n.nspname = $1)
             OR EXISTS (SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                        WHERE n.nspname = $1 AND t.typtype IN ('d', 'e', 'r', 'm'))",
    )
    .bind(schema)
    .fetch_one(&mut *conn)
    .await
    .map_err(classify)?;
    Ok(n)
}

/// Check and record the claim. Returns the previous uid when adopted.
async fn claim(
    conn: &mut PgConnection,
    schema: &str,
    owner: &PipelineRef,
) -> Result<Option<String>, DbError> {
    let claimed = |ns: &str, name: &str| DbError::SchemaClaimed {
        schema: schema.to_owned(),
        owner: format!("{ns}/{name}"),
    };
    let (exists,): (bool,) =
        sqlx::query_as("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
            .bind(schema)
            .fetch_one(&mut *conn)
            .await
            .map_err(classify)?;
    let mut adopted = None;
    if exists {
        match read_claim(conn, schema).await? {
            Some((ns, name, _)) if ns != owner.namespace || name != owner.name => {
                return Err(claimed(&ns, &name));
            }
            Some((_, _, uid)) if uid != owner.uid => adopted = Some(uid),
            Some(_) => {}
            None => {
                let (migrated,): (bool,) = sqlx::query_as(
                    "SELECT to_regclass(format('%I._sqlx_migrations', $1::text)) IS NOT NULL",
                )
                .bind(schema)
                .fetch_one(&mut *conn)
                .await
                .map_err(classify)?;
                if !migrated && schema_has_objects(conn, schema).await? {
                    return Err(DbError::SchemaNotEmpty {
                        schema: schema.to_owned(),
                    });
                }
            }
        }
    }

    let q = quote_ident(schema);
    let mut tx = sqlx::Connection::begin(&mut *conn)
        .await
        .map_err(classify)?;
    for ddl in [
        format!("CREATE SCHEMA IF NOT EXISTS {q}"),
        // Same shape as operator::database (one row: the owner).
        format!(
            "CREATE TABLE IF NOT EXISTS {q}.fleetops_claim (
                 singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
                 namespace text NOT NULL, name text NOT NULL, uid text NOT NULL,
                 claimed_at timestamptz NOT NULL DEFAULT now())"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {q}.fleetops_role_state (
                 role_name text PRIMARY KEY,
                 password_fingerprint text NOT NULL,
                 updated_at timestamptz NOT NULL DEFAULT now())"
        ),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
    }
    let upsert = format!(
        "INSERT INTO {q}.fleetops_claim AS c (namespace, name, uid) VALUES ($1, $2, $3)
         ON CONFLICT (singleton) DO UPDATE SET uid = excluded.uid
         WHERE c.namespace = excluded.namespace AND c.name = excluded.name AND c.uid <> excluded.uid"
    );
    sqlx::query(sqlx::AssertSqlSafe(upsert))
        .bind(&owner.namespace)
        .bind(&owner.name)
        .bind(&owner.uid)
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
    // Re-read inside the transaction: a writer that does not take our lock
    // may have claimed it first.
    let read = format!("SELECT namespace, name FROM {q}.fleetops_claim");
    let (ns, name): (String, String) = sqlx::query_as(sqlx::AssertSqlSafe(read))
        .fetch_one(&mut *tx)
        .await
        .map_err(classify)?;
    if ns != owner.namespace || name != owner.name {
        // Dropping the transaction rolls back anything we created.
        return Err(claimed(&ns, &name));
    }
    tx.commit().await.map_err(classify)?;
    if let Some(old) = &adopted {
        info!(previous_uid = %old, "schema claim adopted by the re-created pipeline");
    }
    Ok(adopted)
}

/// Remove `owner`'s claim on `schema` (after its roles were dropped), so
/// another pipeline may take the schema. Data stays. Returns whether a claim
/// was removed.
#[tracing::instrument(skip_all, fields(schema = %schema, pipeline = %owner))]
pub async fn release_claim(
    conn: &mut PgConnection,
    schema: &str,
    owner: &PipelineRef,
) -> Result<bool, DbError> {
    check_schema_name(schema)?;
    if read_claim(conn, schema).await?.is_none() {
        return Ok(false);
    }
    let sql = format!(
        "DELETE FROM {}.fleetops_claim WHERE namespace = $1 AND name = $2",
        quote_ident(schema)
    );
    let n = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&owner.namespace)
        .bind(&owner.name)
        .execute(&mut *conn)
        .await
        .map_err(classify)?
        .rows_affected();
    Ok(n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_embedded_in_order() {
        let versions: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
        assert!(!versions.is_empty());
        assert!(versions.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(latest_version(), *versions.last().unwrap_or(&0));
    }

    #[test]
    fn schema_names_are_checked() {
        assert!(check_schema_name("tracksolid").is_ok());
        assert!(check_schema_name("").is_err());
        assert!(check_schema_name(&"x".repeat(64)).is_err());
        assert!(check_schema_name("a\0b").is_err());
        // Quotes are fine: the name is always quoted.
        assert!(check_schema_name("x\"; DROP ROLE postgres; --").is_ok());
    }
}
