//! Classified database errors. Messages are safe for `status` and logs: they
//! carry SQLSTATEs, role and schema names and the server's short message,
//! never SQL text or secrets.

use std::time::Duration;
use thiserror::Error;

/// Longest server message kept (status messages stay short).
const MAX_MESSAGE: usize = 200;

/// How to react to a SQLSTATE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SqlClass {
    /// Connection trouble, server shutting down, too many connections.
    Connection,
    /// Deadlock, serialization failure, lock timeout, statement timeout:
    /// retrying soon is right.
    Transient,
    /// 42501 insufficient_privilege (and 0LP01 invalid_grant_operation): the
    /// admin login lacks a right; nothing changes until someone grants it.
    InsufficientPrivilege,
    /// 28xxx: the login was refused.
    Authentication,
    /// 2BP01 dependent objects still exist, 55006 object in use.
    DependentObjects,
    /// Undefined or duplicate object, invalid parameter value: the database
    /// is not in the state the request assumed.
    ObjectState,
    /// Anything else.
    Other,
}

impl SqlClass {
    pub fn of(sqlstate: &str) -> SqlClass {
        match sqlstate {
            "42501" | "0LP01" => SqlClass::InsufficientPrivilege,
            "40001" | "40P01" | "55P03" | "57014" => SqlClass::Transient,
            "2BP01" | "55006" => SqlClass::DependentObjects,
            "42704" | "42P01" | "42883" | "3F000" | "42710" | "42P07" | "42P06" | "22023"
            | "42601" => SqlClass::ObjectState,
            s if s.starts_with("08") || s.starts_with("53") || s.starts_with("57P") => {
                SqlClass::Connection
            }
            s if s.starts_with("28") => SqlClass::Authentication,
            _ => SqlClass::Other,
        }
    }

    /// Worth retrying at the normal (short) back-off?
    pub fn is_transient(self) -> bool {
        matches!(self, SqlClass::Connection | SqlClass::Transient)
    }

    /// When to try again: soon for transient trouble, slowly for errors that
    /// need a person (a missing right is not fixed by retrying in a loop).
    pub fn requeue_after(self) -> Duration {
        match self {
            SqlClass::Connection | SqlClass::Transient => Duration::from_secs(10),
            SqlClass::InsufficientPrivilege | SqlClass::Authentication => Duration::from_secs(300),
            SqlClass::DependentObjects | SqlClass::ObjectState | SqlClass::Other => {
                Duration::from_secs(60)
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SqlClass::Connection => "Connection",
            SqlClass::Transient => "Transient",
            SqlClass::InsufficientPrivilege => "InsufficientPrivilege",
            SqlClass::Authentication => "Authentication",
            SqlClass::DependentObjects => "DependentObjects",
            SqlClass::ObjectState => "ObjectState",
            SqlClass::Other => "Other",
        }
    }
}

/// An error the server returned: SQLSTATE, its class and the short message.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("SQLSTATE {sqlstate}: {message}")]
pub struct SqlError {
    pub sqlstate: String,
    pub class: SqlClass,
    pub message: String,
}

impl SqlError {
    pub fn new(sqlstate: impl Into<String>, message: &str) -> SqlError {
        let sqlstate = sqlstate.into();
        SqlError {
            class: SqlClass::of(&sqlstate),
            sqlstate,
            message: short(message),
        }
    }
}

/// Why the database step failed; each variant is a stable condition reason.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DbError {
    /// Network, TLS, DNS, timeout, server starting or full.
    #[error("cannot reach the database: {0}")]
    Unreachable(String),
    /// The admin login was refused.
    #[error("the database refused the login: {0}")]
    AuthFailed(String),
    /// A migration failed or the applied migrations do not match ours.
    #[error("migration failed: {0}")]
    MigrationFailed(String),
    /// Another FleetPipeline owns this database schema; nothing was changed.
    #[error("schema {schema:?} is claimed by FleetPipeline {owner}; nothing was changed")]
    SchemaClaimed { schema: String, owner: String },
    /// The schema exists, holds objects and was never claimed by a
    /// FleetPipeline; nothing was changed.
    #[error(
        "schema {schema:?} already holds objects not created by FleetPipeline; nothing was changed"
    )]
    SchemaNotEmpty { schema: String },
    /// A caller-supplied value cannot be used (bad setting name, empty name).
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
    /// Any other error from the server.
    #[error("database error ({0})")]
    Sql(SqlError),
}

impl DbError {
    /// Stable `reason` for conditions and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            DbError::Unreachable(_) => "Unreachable",
            DbError::AuthFailed(_) => "AuthFailed",
            DbError::MigrationFailed(_) => "MigrationFailed",
            DbError::SchemaClaimed { .. } => "SchemaClaimed",
            DbError::SchemaNotEmpty { .. } => "SchemaNotEmpty",
            DbError::Invalid { .. } => "InvalidSpec",
            DbError::Sql(_) => "DatabaseError",
        }
    }

    /// Retry soon (true) or wait for a change (false).
    pub fn is_transient(&self) -> bool {
        match self {
            DbError::Unreachable(_) => true,
            DbError::Sql(e) => e.class.is_transient(),
            _ => false,
        }
    }

    /// Suggested requeue delay for the controller.
    pub fn requeue_after(&self) -> Duration {
        match self {
            DbError::Unreachable(_) => Duration::from_secs(15),
            DbError::Sql(e) => e.class.requeue_after(),
            DbError::MigrationFailed(_) => Duration::from_secs(120),
            DbError::AuthFailed(_)
            | DbError::SchemaClaimed { .. }
            | DbError::SchemaNotEmpty { .. }
            | DbError::Invalid { .. } => Duration::from_secs(300),
        }
    }
}

/// Truncate a server message to a status-sized single line.
pub(crate) fn short(message: &str) -> String {
    let line = message.lines().next().unwrap_or_default();
    if line.chars().count() <= MAX_MESSAGE {
        line.to_owned()
    } else {
        let mut s: String = line.chars().take(MAX_MESSAGE).collect();
        s.push('…');
        s
    }
}

/// The SQLSTATE and message of a server error, if it is one.
pub(crate) fn sql_error(e: &sqlx::Error) -> Option<SqlError> {
    match e {
        sqlx::Error::Database(db) => Some(SqlError::new(
            db.code().map(|c| c.into_owned()).unwrap_or_default(),
            db.message(),
        )),
        _ => None,
    }
}

/// Classify any sqlx error. The text kept is the server's message or the
/// client's error kind, never the statement.
pub(crate) fn classify(e: sqlx::Error) -> DbError {
    if let Some(sql) = sql_error(&e) {
        return match sql.class {
            SqlClass::Authentication => DbError::AuthFailed(sql.message),
            // 3D000 invalid_catalog_name: the database named in the spec
            // does not exist (yet) — the same to us as not reachable.
            SqlClass::Connection => DbError::Unreachable(sql.message),
            _ if sql.sqlstate == "3D000" => DbError::Unreachable(sql.message),
            _ => DbError::Sql(sql),
        };
    }
    match e {
        sqlx::Error::Io(io) => DbError::Unreachable(short(&io.to_string())),
        sqlx::Error::Tls(t) => DbError::Unreachable(format!("TLS: {}", short(&t.to_string()))),
        sqlx::Error::PoolTimedOut => DbError::Unreachable("connection pool timed out".into()),
        sqlx::Error::PoolClosed => DbError::Unreachable("connection pool closed".into()),
        sqlx::Error::Protocol(p) => DbError::Unreachable(format!("protocol: {}", short(&p))),
        sqlx::Error::Configuration(c) => DbError::Invalid {
            what: "connection options",
            reason: short(&c.to_string()),
        },
        other => DbError::Sql(SqlError::new("", &other.to_string())),
    }
}

/// Classify a migration error: server errors keep their SQLSTATE.
pub(crate) fn classify_migrate(e: sqlx::migrate::MigrateError) -> DbError {
    use sqlx::migrate::MigrateError as M;
    match e {
        M::Execute(inner) => match classify(inner) {
            DbError::Sql(s) => DbError::MigrationFailed(s.to_string()),
            other => other,
        },
        M::ExecuteMigration(inner, version) => match sql_error(&inner) {
            Some(s) => DbError::MigrationFailed(format!("migration {version}: {s}")),
            None => match classify(inner) {
                DbError::Unreachable(m) => DbError::Unreachable(m),
                other => DbError::MigrationFailed(format!("migration {version}: {other}")),
            },
        },
        other => DbError::MigrationFailed(short(&other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_are_classified() {
        assert_eq!(SqlClass::of("42501"), SqlClass::InsufficientPrivilege);
        assert_eq!(SqlClass::of("40P01"), SqlClass::Transient);
        assert_eq!(SqlClass::of("08006"), SqlClass::Connection);
        assert_eq!(SqlClass::of("53300"), SqlClass::Connection);
        assert_eq!(SqlClass::of("28P01"), SqlClass::Authentication);
        assert_eq!(SqlClass::of("2BP01"), SqlClass::DependentObjects);
        assert_eq!(SqlClass::of("42704"), SqlClass::ObjectState);
        assert_eq!(SqlClass::of("XX000"), SqlClass::Other);
    }

    #[test]
    fn expected_errors_are_not_retried_in_a_hot_loop() {
        let denied = SqlClass::of("42501");
        assert!(!denied.is_transient());
        assert!(denied.requeue_after() >= Duration::from_secs(300));
        assert!(SqlClass::of("40001").is_transient());
        assert!(SqlClass::of("40001").requeue_after() <= Duration::from_secs(10));
    }

    #[test]
    fn messages_are_short_single_lines() {
        let long = "x".repeat(1000);
        assert!(short(&long).chars().count() <= MAX_MESSAGE + 1);
        assert_eq!(short("first\nDETAIL: second"), "first");
    }

    #[test]
    fn reasons_are_stable() {
        let e = DbError::SchemaClaimed {
            schema: "s".into(),
            owner: "ns/other".into(),
        };
        assert_eq!(e.reason(), "SchemaClaimed");
        assert!(e.to_string().contains("ns/other"));
        assert!(!e.is_transient());
        assert!(DbError::Unreachable("x".into()).is_transient());
    }
}
