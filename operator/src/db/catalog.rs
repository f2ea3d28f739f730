//! What the database holds now, for the planner: the pipeline's roles
//! (`pg_roles`, `pg_db_role_setting`, `pg_auth_members`), the ACLs of the
//! database, the schema and every object in it (`aclexplode` over
//! `pg_database`, `pg_namespace`, `pg_class`, `pg_attribute`, `pg_proc`), the
//! default ACLs (`pg_default_acl`) and the recorded password fingerprints.
//! Read-only; every value is bound, nothing is interpolated.

use super::error::{DbError, classify};
use super::privileges::{ObjectType, Privilege};
use super::roles::{DefaultObjectType, DesiredRoles};
use sqlx::PgConnection;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Who holds a privilege.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Grantee {
    Public,
    Role(String),
}

impl Grantee {
    fn from_db(name: Option<String>) -> Grantee {
        match name {
            None => Grantee::Public,
            Some(n) => Grantee::Role(n),
        }
    }

    pub fn role(&self) -> Option<&str> {
        match self {
            Grantee::Public => None,
            Grantee::Role(r) => Some(r),
        }
    }
}

impl fmt::Display for Grantee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Grantee::Public => f.write_str("PUBLIC"),
            Grantee::Role(r) => f.write_str(r),
        }
    }
}

/// One exploded ACL item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclEntry {
    pub grantee: Grantee,
    /// `None` for a privilege this code does not know (a newer server):
    /// the planner then revokes everything from that grantee and re-grants.
    pub privilege: Option<Privilege>,
    pub grantable: bool,
}

/// A role's row in `pg_roles`, with its settings and memberships.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedRole {
    pub name: String,
    pub superuser: bool,
    pub inherit: bool,
    pub create_role: bool,
    pub create_db: bool,
    pub login: bool,
    pub replication: bool,
    pub bypass_rls: bool,
    pub connection_limit: i32,
    /// `rolvaliduntil` as text (`None` = no expiry).
    pub valid_until: Option<String>,
    /// `COMMENT ON ROLE`: the ownership marker.
    pub comment: Option<String>,
    /// Database-independent `ALTER ROLE … SET` settings.
    pub settings: BTreeMap<String, String>,
    /// Roles this role is a member of.
    pub member_of: BTreeSet<String>,
}

/// A table, view, materialized view, sequence or function in the schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedObject {
    pub object_type: ObjectType,
    pub name: String,
    /// Function identity arguments (`pg_get_function_identity_arguments`).
    pub arguments: Option<String>,
    pub owner: String,
    pub acl: Vec<AclEntry>,
}

/// A column-level grant (`GRANT SELECT (col) ON t`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnGrant {
    pub table: String,
    pub column: String,
    pub entry: AclEntry,
}

/// One `pg_default_acl` item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultAcl {
    /// The role whose future objects it applies to (`FOR ROLE`).
    pub owner: String,
    /// `None` for a database-wide entry.
    pub schema: Option<String>,
    pub object_type: DefaultObjectType,
    pub entry: AclEntry,
}

/// Everything the planner compares the desired state with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedCatalog {
    pub database: String,
    pub current_user: String,
    /// The pipeline's roles that exist, by name.
    pub roles: BTreeMap<String, ObservedRole>,
    /// ACL of the current database (all grantees).
    pub database_acl: Vec<AclEntry>,
    pub schema_exists: bool,
    /// ACL of the pipeline schema (all grantees).
    pub schema_acl: Vec<AclEntry>,
    /// Objects of the schema, extension members excluded.
    pub objects: Vec<ObservedObject>,
    pub column_grants: Vec<ColumnGrant>,
    /// Entries for this schema or database-wide.
    pub default_acls: Vec<DefaultAcl>,
    /// Whether `fleetops_role_state` exists (migrate creates it).
    pub role_state_table: bool,
    /// Role name → recorded password fingerprint.
    pub password_fingerprints: BTreeMap<String, String>,
}

impl ObservedCatalog {
    /// Can PUBLIC connect to the database (the default)?
    pub fn public_can_connect(&self) -> bool {
        self.database_acl
            .iter()
            .any(|e| e.grantee == Grantee::Public && e.privilege == Some(Privilege::Connect))
    }
}

type AclRow = (Option<String>, Option<String>, Option<bool>);

fn entry((grantee, privilege, grantable): AclRow) -> Option<AclEntry> {
    let privilege = privilege?;
    Some(AclEntry {
        grantee: Grantee::from_db(grantee),
        privilege: Privilege::parse(&privilege),
        grantable: grantable.unwrap_or(false),
    })
}

/// `grantee` as a role name, NULL for PUBLIC (grantee 0); a literal, so the
/// queries below stay `&'static str`.
macro_rules! grantee {
    () => {
        "CASE WHEN x.grantee = 0 THEN NULL ELSE pg_get_userbyid(x.grantee)::text END"
    };
}

/// Read the current state for `desired` (its roles and schema).
#[tracing::instrument(skip_all, fields(schema = %desired.schema, prefix = %desired.prefix))]
pub async fn observe(
    conn: &mut PgConnection,
    desired: &DesiredRoles,
) -> Result<ObservedCatalog, DbError> {
    let names = desired.role_names();
    let schema = desired.schema.as_str();
    let mut cat = ObservedCatalog::default();

    let (database, current_user): (String, String) =
        sqlx::query_as("SELECT current_database()::text, current_user::text")
            .fetch_one(&mut *conn)
            .await
            .map_err(classify)?;
    cat.database = database;
    cat.current_user = current_user;

    // Roles.
    type RoleRow = (
        String,
        bool,
        bool,
        bool,
        bool,
        bool,
        bool,
        bool,
        i32,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<RoleRow> = sqlx::query_as(
        "SELECT r.rolname::text, r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb,
                r.rolcanlogin, r.rolreplication, r.rolbypassrls, r.rolconnlimit,
                r.rolvaliduntil::text, shobj_description(r.oid, 'pg_authid')
         FROM pg_roles r WHERE r.rolname = ANY($1) ORDER BY 1",
    )
    .bind(&names)
    .fetch_all(&mut *conn)
    .await
    .map_err(classify)?;
    for (name, su, inh, cr, cdb, login, repl, bypass, limit, valid, comment) in rows {
        cat.roles.insert(
            name.clone(),
            ObservedRole {
                name,
                superuser: su,
                inherit: inh,
                create_role: cr,
                create_db: cdb,
                login,
                replication: repl,
                bypass_rls: bypass,
                connection_limit: limit,
                valid_until: valid,
                comment,
                ..ObservedRole::default()
            },
        );
    }

    let settings: Vec<(String, Vec<String>)> = sqlx::query_as(
        "SELECT r.rolname::text, s.setconfig
         FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole
         WHERE s.setdatabase = 0 AND r.rolname = ANY($1)",
    )
    .bind(&names)
    .fetch_all(&mut *conn)
    .await
    .map_err(classify)?;
    for (name, config) in settings {
        if let Some(role) = cat.roles.get_mut(&name) {
            for item in config {
                if let Some((k, v)) = item.split_once('=') {
                    role.settings.insert(k.to_owned(), v.to_owned());
                }
            }
        }
    }

    let members: Vec<(String, String)> = sqlx::query_as(
        "SELECT m.rolname::text, g.rolname::text
         FROM pg_auth_members am
         JOIN pg_roles g ON g.oid = am.roleid
         JOIN pg_roles m ON m.oid = am.member
         WHERE m.rolname = ANY($1)",
    )
    .bind(&names)
    .fetch_all(&mut *conn)
    .await
    .map_err(classify)?;
    for (member, group) in members {
        if let Some(role) = cat.roles.get_mut(&member) {
            role.member_of.insert(group);
        }
    }

    // Database ACL.
    let rows: Vec<AclRow> = sqlx::query_as(concat!(
        "SELECT ",
        grantee!(),
        ", x.privilege_type::text, x.is_grantable
         FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) x
         WHERE d.datname = current_database()"
    ))
    .fetch_all(&mut *conn)
    .await
    .map_err(classify)?;
    cat.database_acl = rows.into_iter().filter_map(entry).collect();

    // Schema and its ACL.
    let rows: Vec<AclRow> = sqlx::query_as(concat!(
        "SELECT ",
        grantee!(),
        ", x.privilege_type::text, x.is_grantable
         FROM pg_namespace n
         LEFT JOIN LATERAL aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) x ON true
         WHERE n.nspname = $1"
    ))
    .bind(schema)
    .fetch_all(&mut *conn)
    .await
    .map_err(classify)?;
    cat.schema_exists = !rows.is_empty();
    cat.schema_acl = rows.into_iter().filter_map(entry).collect();
    if !cat.schema_exists {
        return Ok(cat);
    }

    // Relations and sequences (not those of extensions).
    type ObjRow = (
        String,
        String,
        Option<String>,
        String,
        Option<String>,
        Option<String>,
        Option<bool>,
    );
    let rel_rows: Vec<ObjRow> = sqlx::query_as(concat!("SELECT c.relname::text, c.relkind::text, NULL::text, pg_get_userbyid(c.relowner)::text,
                ", grantee!(), ", x.privilege_type::text, x.is_grantable
         FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN LATERAL aclexplode(coalesce(c.relacl,
              acldefault((CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END)::\"char\", c.relowner))) x ON true
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
           AND NOT EXISTS (SELECT 1 FROM pg_depend d
                           WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
         ORDER BY 1"))
    .bind(schema)
    .fetch_all(&mut *conn)
    .await
    .map_err(classify)?;
    let fn_rows: Vec<ObjRow> = sqlx::query_as(concat!("SELECT p.proname::text, 'function', pg_get_function_identity_arguments(p.oid),
                pg_get_userbyid(p.proowner)::text,
                ", grantee!(), ", x.privilege_type::text, x.is_grantable
         FROM pg_proc p
         JOIN pg_namespace n ON n.oid = p.pronamespace
         LEFT JOIN LATERAL aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) x ON true
         WHERE n.nspname = $1
           AND NOT EXISTS (SELECT 1 FROM pg_depend d
                           WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
         ORDER BY 1, 3"))
    .bind(schema)
    .fetch_all(&mut *conn)
    .await
    .map_err(classify)?;
    for (name, kind, arguments, owner, grantee, privilege, grantable) in
        rel_rows.into_iter().chain(fn_rows)
    {
        let object_type = match kind.as_str() {
            "S" => ObjectType::Sequence,
            "function" => ObjectType::Function,
            _ => ObjectType::Relation,
        };
        let same = cat.objects.last().is_some_and(|o| {
            o.object_type == object_type && o.name == name && o.arguments == arguments
        });
        if !same {
            cat.objects.push(ObservedObject {
                object_type,
                name,
                arguments,
                owner,
                acl: Vec::new(),
            });
        }
        if let (Some(e), Some(obj)) = (
            entry((grantee, privilege, grantable)),
            cat.objects.last_mut(),
        ) {
            obj.acl.push(e);
        }
    }

    // Column-level grants.
    type ColRow = (String, String, Option<String>, Option<String>, Option<bool>);
    let rows: Vec<ColRow> = sqlx::query_as(concat!(
        "SELECT c.relname::text, a.attname::text, ",
        grantee!(),
        ", x.privilege_type::text, x.is_grantable
             FROM pg_attribute a
             JOIN pg_class c ON c.oid = a.attrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace,
             LATERAL aclexplode(a.attacl) x
             WHERE n.nspname = $1 AND a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY 1, 2"
    ))
    .bind(schema)
    .fetch_all(&mut *conn)
    .await
    .map_err(classify)?;
    cat.column_grants = rows
        .into_iter()
        .filter_map(|(table, column, g, p, ga)| {
            entry((g, p, ga)).map(|entry| ColumnGrant {
                table,
                column,
                entry,
            })
        })
        .collect();

    // Default ACLs: this schema's and database-wide ones.
    type DefaultRow = (
        String,
        Option<String>,
        String,
        Option<String>,
        Option<String>,
        Option<bool>,
    );
    let rows: Vec<DefaultRow> = sqlx::query_as(concat!(
        "SELECT pg_get_userbyid(d.defaclrole)::text, n.nspname::text, d.defaclobjtype::text,
                ",
        grantee!(),
        ", x.privilege_type::text, x.is_grantable
         FROM pg_default_acl d
         LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace,
         LATERAL aclexplode(d.defaclacl) x
         WHERE d.defaclnamespace = 0 OR n.nspname = $1"
    ))
    .bind(schema)
    .fetch_all(&mut *conn)
    .await
    .map_err(classify)?;
    cat.default_acls = rows
        .into_iter()
        .filter_map(|(owner, nsp, objtype, g, p, ga)| {
            let object_type = DefaultObjectType::from_code(&objtype)?;
            entry((g, p, ga)).map(|entry| DefaultAcl {
                owner,
                schema: nsp,
                object_type,
                entry,
            })
        })
        .collect();

    // Recorded password fingerprints.
    let (has_state,): (bool,) = sqlx::query_as(
        "SELECT to_regclass(format('%I.fleetops_role_state', $1::text)) IS NOT NULL",
    )
    .bind(schema)
    .fetch_one(&mut *conn)
    .await
    .map_err(classify)?;
    cat.role_state_table = has_state;
    if has_state {
        let sql = format!(
            "SELECT role_name, password_fingerprint FROM {}.fleetops_role_state
             WHERE role_name = ANY($1)",
            super::ident::quote_ident(schema)
        );
        let rows: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(&names)
            .fetch_all(&mut *conn)
            .await
            .map_err(classify)?;
        cat.password_fingerprints = rows.into_iter().collect();
    }
    Ok(cat)
}
