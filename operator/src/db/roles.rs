//! The desired state of a pipeline's four login roles: names, passwords,
//! connection limits, session settings and grants (from [`privileges`]).
//!
//! [`privileges`]: super::privileges

use super::error::DbError;
use super::ident::is_setting_name;
use super::privileges::{COLUMN_MATRIX, MATRIX, ObjectType, Privilege, WorkloadRole};
use super::secret::SecretString;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// PostgreSQL's identifier limit (NAMEDATALEN - 1).
pub const MAX_IDENT: usize = 63;

/// The FleetPipeline a schema and its roles belong to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineRef {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl PipelineRef {
    pub fn new(namespace: &str, name: &str, uid: &str) -> PipelineRef {
        PipelineRef {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            uid: uid.to_owned(),
        }
    }

    /// The `COMMENT ON ROLE` text that marks a role as this pipeline's. A role
    /// with any other comment (or none) is never altered or dropped.
    pub fn role_marker(&self) -> String {
        format!("fleetops: FleetPipeline {}/{}", self.namespace, self.name)
    }
}

impl fmt::Display for PipelineRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

fn sanitize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '_'
        };
        // Collapse runs of '_' so "a--b" and "a-b" read alike.
        if !(c == '_' && out.ends_with('_')) {
            out.push(c);
        }
    }
    out.trim_matches('_').to_owned()
}

/// The role-name prefix of a pipeline: `<namespace>_<name>` lower-cased, with
/// every character outside `[a-z0-9]` turned into `_` (e.g. `fleet_kenya_fleet`
/// for `fleet/kenya-fleet`). `fp_` is put in front when the result would start
/// with a digit or with `pg_` (reserved by PostgreSQL). When longer than
/// 50 characters (so that `_housekeeping` still fits in 63) it is cut and
/// ends with `_` and 8 hex digits of SHA-256 of `namespace/name`, which keeps
/// distinct pipelines apart.
///
/// Two pipelines may still map to one prefix (`a-b/c` and `a/b-c`); the
/// ownership comment on each role refuses the second one.
pub fn role_prefix(namespace: &str, name: &str) -> String {
    const MAX_PREFIX: usize = MAX_IDENT - "_housekeeping".len();
    let mut p = sanitize(&format!("{namespace}_{name}"));
    if p.is_empty() || p.starts_with("pg_") || p.starts_with(|c: char| c.is_ascii_digit()) {
        p = format!("fp_{p}");
    }
    let p = p.trim_end_matches('_').to_owned();
    if p.len() <= MAX_PREFIX {
        return p;
    }
    let hash = hex::encode(Sha256::digest(format!("{namespace}/{name}").as_bytes()));
    let keep = MAX_PREFIX - 9;
    // All ASCII after sanitize: byte slicing is char slicing.
    let head = p[..keep].trim_end_matches('_');
    format!("{head}_{}", &hash[..8])
}

/// `<prefix>_<suffix>`.
pub fn role_name(prefix: &str, role: WorkloadRole) -> String {
    format!("{prefix}_{}", role.suffix())
}

/// Per-role knobs a pipeline may override.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleOverrides {
    pub connection_limit: Option<i32>,
    /// Extra or replacing settings (`statement_timeout` → `"5min"`).
    pub settings: BTreeMap<String, String>,
}

/// Default connection limit of each role. The webhook's should follow its
/// replicas (see [`webhook_connection_limit`]).
pub fn default_connection_limit(role: WorkloadRole) -> i32 {
    match role {
        WorkloadRole::Ingest => 20,
        WorkloadRole::Webhook => webhook_connection_limit(2, 8),
        WorkloadRole::Housekeeping => 4,
        WorkloadRole::Reader => 10,
    }
}

/// Room for `replicas` webhook pods of `per_replica` pooled connections,
/// twice over (a rolling update runs old and new pods side by side), plus 2.
pub fn webhook_connection_limit(replicas: i32, per_replica: i32) -> i32 {
    replicas
        .saturating_mul(per_replica)
        .saturating_mul(2)
        .saturating_add(2)
}

/// Default session settings of each role (stored with `ALTER ROLE … SET`,
/// in force for every session of the role).
pub fn default_settings(role: WorkloadRole, schema: &str) -> BTreeMap<String, String> {
    let (statement, idle_tx, lock) = match role {
        // One short write per fetch; never a transaction across a network call.
        WorkloadRole::Ingest => ("60s", "30s", "10s"),
        // A push is answered in seconds; a stuck write must fail fast (503,
        // the sender retries).
        WorkloadRole::Webhook => ("10s", "10s", "5s"),
        // Retention deletes and a concurrent refresh may take a while.
        WorkloadRole::Housekeeping => ("30min", "60s", "60s"),
        // Dashboards: a runaway query is cut off.
        WorkloadRole::Reader => ("60s", "30s", "5s"),
    };
    BTreeMap::from([
        ("statement_timeout".to_owned(), statement.to_owned()),
        (
            "idle_in_transaction_session_timeout".to_owned(),
            idle_tx.to_owned(),
        ),
        ("lock_timeout".to_owned(), lock.to_owned()),
        // Unqualified names resolve in the pipeline schema (Grafana queries).
        // The raw name: the server quotes list elements itself.
        ("search_path".to_owned(), schema.to_owned()),
    ])
}

/// One role as it should be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredRole {
    pub kind: WorkloadRole,
    pub name: String,
    /// The password the role must have; `None` leaves it alone (a new role
    /// then has none and cannot log in).
    pub password: Option<SecretString>,
    pub connection_limit: i32,
    pub settings: BTreeMap<String, String>,
    /// Privileges on schema objects, by type and name.
    pub grants: BTreeMap<(ObjectType, String), BTreeSet<Privilege>>,
    /// Column privileges, by (table, column).
    pub columns: BTreeMap<(String, String), BTreeSet<Privilege>>,
}

/// Object types for `ALTER DEFAULT PRIVILEGES`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DefaultObjectType {
    Tables,
    Sequences,
    Functions,
}

impl DefaultObjectType {
    /// `pg_default_acl.defaclobjtype`.
    pub fn from_code(c: &str) -> Option<DefaultObjectType> {
        match c {
            "r" => Some(DefaultObjectType::Tables),
            "S" => Some(DefaultObjectType::Sequences),
            "f" => Some(DefaultObjectType::Functions),
            _ => None,
        }
    }

    pub fn keyword(self) -> &'static str {
        match self {
            DefaultObjectType::Tables => "TABLES",
            DefaultObjectType::Sequences => "SEQUENCES",
            DefaultObjectType::Functions => "FUNCTIONS",
        }
    }
}

/// A default privilege for objects the migration login creates later in the
/// schema. The pipeline default is none: every object is granted explicitly
/// from the matrix, so a future table (say, another secret like `api_token`)
/// is not readable by anyone until the matrix says so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredDefaultPrivilege {
    pub role: String,
    pub object_type: DefaultObjectType,
    pub privileges: BTreeSet<Privilege>,
}

/// Everything the planner needs to know about what should be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredRoles {
    pub owner: PipelineRef,
    pub schema: String,
    pub prefix: String,
    pub roles: Vec<DesiredRole>,
    pub default_privileges: Vec<DesiredDefaultPrivilege>,
}

impl DesiredRoles {
    /// The four roles of `owner` in `schema`, with the passwords given (a
    /// role missing from `passwords` keeps whatever it has), the defaults
    /// above and `overrides`.
    pub fn new(
        owner: &PipelineRef,
        schema: &str,
        passwords: &BTreeMap<WorkloadRole, SecretString>,
        overrides: &BTreeMap<WorkloadRole, RoleOverrides>,
    ) -> Result<DesiredRoles, DbError> {
        if schema.is_empty() || schema.len() > MAX_IDENT {
            return Err(DbError::Invalid {
                what: "schema",
                reason: format!("must be 1 to {MAX_IDENT} characters"),
            });
        }
        let prefix = role_prefix(&owner.namespace, &owner.name);
        let mut roles = Vec::with_capacity(4);
        for kind in WorkloadRole::ALL {
            let o = overrides.get(&kind).cloned().unwrap_or_default();
            let mut settings = default_settings(kind, schema);
            for (k, v) in o.settings {
                if !is_setting_name(&k) {
                    return Err(DbError::Invalid {
                        what: "role setting",
                        reason: format!("{k:?} is not a configuration parameter name"),
                    });
                }
                settings.insert(k, v);
            }
            let connection_limit = o
                .connection_limit
                .unwrap_or_else(|| default_connection_limit(kind));
            if connection_limit < -1 {
                return Err(DbError::Invalid {
                    what: "connection limit",
                    reason: "must be -1 (unlimited) or more".into(),
                });
            }
            let grants = MATRIX
                .iter()
                .filter(|g| !g.for_role(kind).is_empty())
                .map(|g| {
                    (
                        (g.object_type, g.object.to_owned()),
                        g.for_role(kind).iter().copied().collect(),
                    )
                })
                .collect();
            let mut columns: BTreeMap<(String, String), BTreeSet<Privilege>> = BTreeMap::new();
            for c in COLUMN_MATRIX.iter().filter(|c| c.role == kind) {
                for col in c.columns {
                    columns
                        .entry((c.table.to_owned(), (*col).to_owned()))
                        .or_default()
                        .insert(c.privilege);
                }
            }
            roles.push(DesiredRole {
                kind,
                name: role_name(&prefix, kind),
                password: passwords.get(&kind).cloned(),
                connection_limit,
                settings,
                grants,
                columns,
            });
        }
        Ok(DesiredRoles {
            owner: owner.clone(),
            schema: schema.to_owned(),
            prefix,
            roles,
            default_privileges: Vec::new(),
        })
    }

    pub fn role(&self, kind: WorkloadRole) -> Option<&DesiredRole> {
        self.roles.iter().find(|r| r.kind == kind)
    }

    pub fn role_names(&self) -> Vec<String> {
        self.roles.iter().map(|r| r.name.clone()).collect()
    }

    pub fn marker(&self) -> String {
        self.owner.role_marker()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_safe_lower_case_identifiers() {
        assert_eq!(role_prefix("fleet", "kenya-fleet"), "fleet_kenya_fleet");
        assert_eq!(role_prefix("pg-x", "y"), "fp_pg_x_y");
        assert_eq!(role_prefix("1ns", "y"), "fp_1ns_y");
        assert_eq!(role_prefix("a--b", "c.d"), "a_b_c_d");
        let evil = role_prefix(r#"x"; DROP ROLE postgres; --"#, "Y");
        assert_eq!(evil, "x_drop_role_postgres_y");
        for p in [&evil, &role_prefix("", "")] {
            assert!(
                p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            );
        }
    }

    #[test]
    fn long_prefixes_are_cut_with_a_hash() {
        let ns = "n".repeat(63);
        let a = role_prefix(&ns, &"a".repeat(39));
        let b = role_prefix(&ns, &format!("{}b", "a".repeat(38)));
        assert_ne!(a, b);
        for p in [&a, &b] {
            assert!(
                role_name(p, WorkloadRole::Housekeeping).len() <= MAX_IDENT,
                "{p}"
            );
            assert_eq!(p.len(), 50);
        }
        // Deterministic.
        assert_eq!(a, role_prefix(&ns, &"a".repeat(39)));
    }

    #[test]
    fn desired_roles_follow_the_matrix() {
        let owner = PipelineRef::new("fleet", "kenya-fleet", "u1");
        let d = DesiredRoles::new(&owner, "tracksolid", &BTreeMap::new(), &BTreeMap::new())
            .expect("desired");
        assert_eq!(
            d.role_names(),
            [
                "fleet_kenya_fleet_ingest",
                "fleet_kenya_fleet_webhook",
                "fleet_kenya_fleet_housekeeping",
                "fleet_kenya_fleet_reader"
            ]
        );
        let webhook = d.role(WorkloadRole::Webhook).expect("webhook");
        assert!(
            !webhook
                .grants
                .contains_key(&(ObjectType::Relation, "devices".to_owned()))
        );
        assert_eq!(webhook.settings["search_path"], "tracksolid");
        assert_eq!(webhook.settings["statement_timeout"], "10s");
    }

    #[test]
    fn overrides_replace_defaults_and_bad_setting_names_are_refused() {
        let owner = PipelineRef::new("a", "b", "u");
        let mut o = BTreeMap::new();
        o.insert(
            WorkloadRole::Reader,
            RoleOverrides {
                connection_limit: Some(3),
                settings: BTreeMap::from([("statement_timeout".into(), "5min".into())]),
            },
        );
        let d = DesiredRoles::new(&owner, "s", &BTreeMap::new(), &o).expect("desired");
        let r = d.role(WorkloadRole::Reader).expect("reader");
        assert_eq!(r.connection_limit, 3);
        assert_eq!(r.settings["statement_timeout"], "5min");

        o.insert(
            WorkloadRole::Ingest,
            RoleOverrides {
                connection_limit: None,
                settings: BTreeMap::from([("x = 1; DROP ROLE postgres".into(), "1".into())]),
            },
        );
        assert!(matches!(
            DesiredRoles::new(&owner, "s", &BTreeMap::new(), &o),
            Err(DbError::Invalid { .. })
        ));
    }
}
