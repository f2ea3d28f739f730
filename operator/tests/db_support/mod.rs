//! Shared setup of the database tests: a real PostgreSQL (the project's
//! harness), one throw-away database per test (so tests run in parallel), an
//! operator login that is NOT a superuser (CREATEROLE, owner of the test
//! database — what a managed PostgreSQL gives you), and cleanup of the
//! database and every role the test created, even when it panics.
//!
//! The server URL comes from `DATABASE_URL`, or else from the harness env
//! file `$FP_STATE_DIR/env`, `/tmp/fleetpipeline/e2e-state/env` or
//! `target/e2e-state/env` (start one with `tests/harness/up.sh DIR`).

#![allow(dead_code)]

use fleet_operator::db::{self, DbError, Endpoint, PipelineRef, SecretString, WorkloadRole};
use rand::RngExt;
use rand::distr::Alphanumeric;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Mutex;

fn env_file_candidates() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(dir) = std::env::var_os("FP_STATE_DIR") {
        v.push(PathBuf::from(dir).join("env"));
    }
    v.push(PathBuf::from("/tmp/fleetpipeline/e2e-state/env"));
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    v.push(repo.join("target/e2e-state/env"));
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        v.push(PathBuf::from(t).join("e2e-state/env"));
    }
    v
}

fn url_from_env_file(path: &PathBuf) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        let l = l.trim();
        let l = l.strip_prefix("export ").unwrap_or(l);
        let v = l.strip_prefix("DATABASE_URL=")?;
        Some(v.trim_matches(|c| c == '\'' || c == '"').to_owned())
    })
}

/// The superuser URL of the test server.
pub fn server_url() -> String {
    if let Ok(u) = std::env::var("DATABASE_URL")
        && !u.is_empty()
    {
        return u;
    }
    for f in env_file_candidates() {
        if let Some(u) = url_from_env_file(&f) {
            return u;
        }
    }
    panic!(
        "no PostgreSQL for the database tests: set DATABASE_URL, or start one with \
         tests/harness/up.sh DIR and export FP_STATE_DIR=DIR (looked in {:?})",
        env_file_candidates()
    );
}

pub fn random(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| char::from(rng.sample(Alphanumeric)).to_ascii_lowercase())
        .collect()
}

/// A throw-away database with its own non-superuser operator login.
pub struct TestDb {
    pub name: String,
    server: PgConnectOptions,
    pub endpoint: Endpoint,
    pub admin_user: String,
    pub admin_password: SecretString,
    roles: Mutex<Vec<String>>,
}

async fn super_conn(opts: &PgConnectOptions) -> PgConnection {
    opts.clone()
        .disable_statement_logging()
        .connect()
        .await
        .expect("connect as the test superuser")
}

async fn exec(conn: &mut PgConnection, sql: String) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

impl TestDb {
    pub async fn new() -> TestDb {
        let server = PgConnectOptions::from_str(&server_url()).expect("DATABASE_URL parses");
        let id = random(10);
        let name = format!("fp_test_{id}");
        let admin_user = format!("fp_test_{id}_admin");
        let admin_password = db::password::generate();
        let mut su = super_conn(&server).await;
        exec(
            &mut su,
            format!(
                "CREATE ROLE \"{admin_user}\" LOGIN CREATEROLE PASSWORD '{}'",
                admin_password.expose()
            ),
        )
        .await;
        exec(
            &mut su,
            format!("CREATE DATABASE \"{name}\" OWNER \"{admin_user}\""),
        )
        .await;
        let _ = su.close().await;
        let endpoint = Endpoint {
            host: server.get_host().to_owned(),
            port: server.get_port(),
            database: name.clone(),
            ssl_mode: "disable".into(),
        };
        TestDb {
            name,
            server,
            endpoint,
            admin_user: admin_user.clone(),
            admin_password,
            roles: Mutex::new(vec![admin_user]),
        }
    }

    /// The operator's login (CREATEROLE, owns the database, not superuser).
    pub async fn operator(&self) -> PgConnection {
        db::connect(&self.endpoint, &self.admin_user, &self.admin_password)
            .await
            .expect("connect as the operator login")
    }

    /// The server's superuser, in the test database (for manual tampering).
    pub async fn superuser(&self) -> PgConnection {
        super_conn(&self.server.clone().database(&self.name)).await
    }

    pub async fn connect_as(
        &self,
        user: &str,
        password: &SecretString,
    ) -> Result<PgConnection, DbError> {
        db::connect(&self.endpoint, user, password).await
    }

    /// `postgres://user:password@host:port/db` for the workloads' own
    /// connection code (passwords are alphanumeric).
    pub fn url_for(&self, user: &str, password: &SecretString) -> String {
        format!(
            "postgres://{user}:{}@{}:{}/{}?sslmode=disable",
            password.expose(),
            self.endpoint.host,
            self.endpoint.port,
            self.name
        )
    }

    /// A pipeline with a unique namespace/name; its roles are dropped at the
    /// end of the test.
    pub fn pipeline(&self) -> PipelineRef {
        let p = PipelineRef::new(
            &format!("ns-{}", random(6)),
            &format!("fleet-{}", random(6)),
            &format!("uid-{}", random(8)),
        );
        self.track(&p);
        p
    }

    /// Drop `p`'s roles at the end of the test.
    pub fn track(&self, p: &PipelineRef) {
        let prefix = db::role_prefix(&p.namespace, &p.name);
        if let Ok(mut roles) = self.roles.lock() {
            for r in WorkloadRole::ALL {
                roles.insert(0, db::role_name(&prefix, r));
            }
        }
    }

    /// Drop also this role at the end.
    pub fn track_role(&self, role: &str) {
        if let Ok(mut roles) = self.roles.lock() {
            roles.insert(0, role.to_owned());
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let server = self.server.clone();
        let name = self.name.clone();
        let roles = self.roles.lock().map(|r| r.clone()).unwrap_or_default();
        // A thread with its own runtime: Drop cannot await, and may run
        // while the test's runtime is unwinding.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let Ok(mut su) = server.disable_statement_logging().connect().await else {
                    return;
                };
                let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .execute(&mut su)
                .await;
                for r in roles {
                    let q = r.replace('"', "\"\"");
                    let _ =
                        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP ROLE IF EXISTS \"{q}\"")))
                            .execute(&mut su)
                            .await;
                }
                let _ = su.close().await;
            });
        });
        let _ = done.join();
    }
}

/// The SQLSTATE of a failed statement, panicking on success.
pub fn sqlstate<T: std::fmt::Debug>(r: Result<T, sqlx::Error>) -> String {
    match r {
        Err(sqlx::Error::Database(e)) => e.code().map(|c| c.into_owned()).unwrap_or_default(),
        other => panic!("expected a database error, got {other:?}"),
    }
}

/// Run `sql` and return its SQLSTATE, which must be 42501.
pub async fn denied(conn: &mut PgConnection, sql: &str) {
    let r = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut *conn)
        .await;
    assert_eq!(
        sqlstate(r),
        "42501",
        "expected permission denied for: {sql}"
    );
}

/// Run `sql`, which must succeed.
pub async fn allowed(conn: &mut PgConnection, sql: &str) {
    if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut *conn)
        .await
    {
        panic!("expected success for: {sql}: {e}");
    }
}
