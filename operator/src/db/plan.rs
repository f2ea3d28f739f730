//! The pure role planner: compare [`DesiredRoles`] with an
//! [`ObservedCatalog`] and list, in order, the statements that make the
//! database match — CloudNativePG's role manager, for one pipeline.
//!
//! Order per role: create → ownership comment → attributes → expiry →
//! password → connection limit → settings → memberships → database →
//! schema USAGE → object privileges → column privileges → default
//! privileges. Then PUBLIC's privileges in the schema are revoked. A steady
//! state plans nothing.
//!
//! A role that exists but carries another owner's marker (or none) is left
//! untouched and reported by [`conflicts`].

use super::catalog::{AclEntry, Grantee, ObservedCatalog, ObservedObject, ObservedRole};
use super::ident::{qualified, quote_ident, quote_literal};
use super::password::{fingerprint, scram_verifier};
use super::privileges::{ObjectType, Privilege};
use super::roles::{DefaultObjectType, DesiredRole, DesiredRoles};
use super::secret::SecretString;
use std::collections::{BTreeMap, BTreeSet};

/// A role attribute the planner keeps at a fixed value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleAttribute {
    Login,
    Superuser,
    CreateDb,
    CreateRole,
    Inherit,
    Replication,
    BypassRls,
}

impl RoleAttribute {
    fn keyword(self, on: bool) -> &'static str {
        match (self, on) {
            (RoleAttribute::Login, true) => "LOGIN",
            (RoleAttribute::Login, false) => "NOLOGIN",
            (RoleAttribute::Superuser, true) => "SUPERUSER",
            (RoleAttribute::Superuser, false) => "NOSUPERUSER",
            (RoleAttribute::CreateDb, true) => "CREATEDB",
            (RoleAttribute::CreateDb, false) => "NOCREATEDB",
            (RoleAttribute::CreateRole, true) => "CREATEROLE",
            (RoleAttribute::CreateRole, false) => "NOCREATEROLE",
            (RoleAttribute::Inherit, true) => "INHERIT",
            (RoleAttribute::Inherit, false) => "NOINHERIT",
            (RoleAttribute::Replication, true) => "REPLICATION",
            (RoleAttribute::Replication, false) => "NOREPLICATION",
            (RoleAttribute::BypassRls, true) => "BYPASSRLS",
            (RoleAttribute::BypassRls, false) => "NOBYPASSRLS",
        }
    }

    /// The value every workload role has: LOGIN, nothing else (NOINHERIT:
    /// no privilege can reach it through a membership either).
    fn wanted(self) -> bool {
        matches!(self, RoleAttribute::Login)
    }

    fn observed(self, r: &ObservedRole) -> bool {
        match self {
            RoleAttribute::Login => r.login,
            RoleAttribute::Superuser => r.superuser,
            RoleAttribute::CreateDb => r.create_db,
            RoleAttribute::CreateRole => r.create_role,
            RoleAttribute::Inherit => r.inherit,
            RoleAttribute::Replication => r.replication,
            RoleAttribute::BypassRls => r.bypass_rls,
        }
    }

    const ALL: [RoleAttribute; 7] = [
        RoleAttribute::Login,
        RoleAttribute::Superuser,
        RoleAttribute::CreateDb,
        RoleAttribute::CreateRole,
        RoleAttribute::Inherit,
        RoleAttribute::Replication,
        RoleAttribute::BypassRls,
    ];
}

/// What a GRANT or REVOKE is on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Database(String),
    Schema(String),
    /// Table, view or materialized view.
    Table {
        schema: String,
        name: String,
    },
    Sequence {
        schema: String,
        name: String,
    },
    /// A function by name and identity arguments (as the catalog prints them).
    Routine {
        schema: String,
        name: String,
        arguments: String,
    },
}

impl Target {
    fn sql(&self) -> String {
        match self {
            Target::Database(d) => format!("DATABASE {}", quote_ident(d)),
            Target::Schema(s) => format!("SCHEMA {}", quote_ident(s)),
            Target::Table { schema, name } => format!("TABLE {}", qualified(schema, name)),
            Target::Sequence { schema, name } => format!("SEQUENCE {}", qualified(schema, name)),
            // The argument list comes from pg_get_function_identity_arguments
            // of a function in the pipeline schema (created by our migrations,
            // as only the admin login may create there); its type names are
            // already quoted by the server where needed.
            Target::Routine {
                schema,
                name,
                arguments,
            } => format!("ROUTINE {}({arguments})", qualified(schema, name)),
        }
    }

    fn describe(&self) -> String {
        match self {
            Target::Database(d) => format!("database {d}"),
            Target::Schema(s) => format!("schema {s}"),
            Target::Table { schema, name } => format!("table {schema}.{name}"),
            Target::Sequence { schema, name } => format!("sequence {schema}.{name}"),
            Target::Routine { schema, name, .. } => format!("function {schema}.{name}"),
        }
    }
}

fn privilege_list(p: &Option<BTreeSet<Privilege>>) -> String {
    match p {
        None => "ALL PRIVILEGES".to_owned(),
        Some(set) => set
            .iter()
            .map(|p| p.keyword())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn grantee_sql(g: &Grantee) -> String {
    match g {
        Grantee::Public => "PUBLIC".to_owned(),
        Grantee::Role(r) => quote_ident(r),
    }
}

/// One step of a plan. `Debug` never shows a password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    CreateRole {
        role: String,
    },
    /// The ownership marker.
    CommentOnRole {
        role: String,
        comment: String,
    },
    AlterAttributes {
        role: String,
        attributes: Vec<(RoleAttribute, bool)>,
    },
    /// `VALID UNTIL 'infinity'`.
    ClearValidUntil {
        role: String,
    },
    /// Sent as a SCRAM-SHA-256 verifier, never as the password.
    SetPassword {
        role: String,
        password: SecretString,
    },
    /// Record the password's fingerprint in `<schema>.fleetops_role_state`.
    RecordPassword {
        role: String,
        schema: String,
        fingerprint: String,
    },
    SetConnectionLimit {
        role: String,
        limit: i32,
    },
    SetSetting {
        role: String,
        name: String,
        value: String,
    },
    ResetSetting {
        role: String,
        name: String,
    },
    RevokeMembership {
        role: String,
        group: String,
    },
    Grant {
        grantee: Grantee,
        target: Target,
        privileges: BTreeSet<Privilege>,
    },
    /// `privileges: None` revokes ALL PRIVILEGES; `grant_option_only`
    /// revokes just the right to grant them on.
    Revoke {
        grantee: Grantee,
        target: Target,
        privileges: Option<BTreeSet<Privilege>>,
        grant_option_only: bool,
    },
    RevokeColumn {
        grantee: Grantee,
        schema: String,
        table: String,
        column: String,
        privileges: Option<BTreeSet<Privilege>>,
    },
    GrantColumn {
        grantee: Grantee,
        schema: String,
        table: String,
        column: String,
        privileges: BTreeSet<Privilege>,
    },
    /// `ALTER DEFAULT PRIVILEGES FOR ROLE owner [IN SCHEMA s] GRANT|REVOKE …`.
    DefaultPrivileges {
        owner: String,
        schema: Option<String>,
        object_type: DefaultObjectType,
        grantee: Grantee,
        privileges: Option<BTreeSet<Privilege>>,
        grant: bool,
    },
}

impl Action {
    /// The pipeline role this step is about (`None`: PUBLIC).
    pub fn role(&self) -> Option<&str> {
        match self {
            Action::CreateRole { role }
            | Action::CommentOnRole { role, .. }
            | Action::AlterAttributes { role, .. }
            | Action::ClearValidUntil { role }
            | Action::SetPassword { role, .. }
            | Action::RecordPassword { role, .. }
            | Action::SetConnectionLimit { role, .. }
            | Action::SetSetting { role, .. }
            | Action::ResetSetting { role, .. }
            | Action::RevokeMembership { role, .. } => Some(role),
            Action::Grant { grantee, .. }
            | Action::Revoke { grantee, .. }
            | Action::RevokeColumn { grantee, .. }
            | Action::GrantColumn { grantee, .. }
            | Action::DefaultPrivileges { grantee, .. } => grantee.role(),
        }
    }

    /// A short fixed label of the kind of step, safe for status.
    pub fn label(&self) -> &'static str {
        match self {
            Action::CreateRole { .. } => "create role",
            Action::CommentOnRole { .. } => "mark role ownership",
            Action::AlterAttributes { .. } => "alter role attributes",
            Action::ClearValidUntil { .. } => "clear role expiry",
            Action::SetPassword { .. } => "set password",
            Action::RecordPassword { .. } => "record password fingerprint",
            Action::SetConnectionLimit { .. } => "set connection limit",
            Action::SetSetting { .. } => "set role setting",
            Action::ResetSetting { .. } => "reset role setting",
            Action::RevokeMembership { .. } => "revoke role membership",
            Action::Grant { .. } => "grant privileges",
            Action::Revoke { .. } => "revoke privileges",
            Action::RevokeColumn { .. } => "revoke column privileges",
            Action::GrantColumn { .. } => "grant column privileges",
            Action::DefaultPrivileges { grant: true, .. } => "grant default privileges",
            Action::DefaultPrivileges { grant: false, .. } => "revoke default privileges",
        }
    }

    /// One line for logs and events: names and privileges, never SQL text or
    /// a password.
    pub fn describe(&self) -> String {
        match self {
            Action::CreateRole { role } => format!("create role {role}"),
            Action::CommentOnRole { role, .. } => format!("mark role {role} as the pipeline's"),
            Action::AlterAttributes { role, attributes } => format!(
                "alter role {role}: {}",
                attributes
                    .iter()
                    .map(|(a, on)| a.keyword(*on))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Action::ClearValidUntil { role } => format!("clear expiry of role {role}"),
            Action::SetPassword { role, .. } => format!("set password of role {role}"),
            Action::RecordPassword { role, .. } => format!("record password of role {role}"),
            Action::SetConnectionLimit { role, limit } => {
                format!("set connection limit of role {role} to {limit}")
            }
            Action::SetSetting { role, name, .. } => format!("set {name} for role {role}"),
            Action::ResetSetting { role, name } => format!("reset {name} for role {role}"),
            Action::RevokeMembership { role, group } => {
                format!("revoke membership of {role} in {group}")
            }
            Action::Grant {
                grantee,
                target,
                privileges,
            } => format!(
                "grant {} on {} to {grantee}",
                privilege_list(&Some(privileges.clone())),
                target.describe()
            ),
            Action::Revoke {
                grantee,
                target,
                privileges,
                grant_option_only,
            } => format!(
                "revoke {}{} on {} from {grantee}",
                if *grant_option_only {
                    "grant option for "
                } else {
                    ""
                },
                privilege_list(privileges),
                target.describe()
            ),
            Action::RevokeColumn {
                grantee,
                schema,
                table,
                column,
                privileges,
            } => format!(
                "revoke {} ({column}) on table {schema}.{table} from {grantee}",
                privilege_list(privileges)
            ),
            Action::GrantColumn {
                grantee,
                schema,
                table,
                column,
                privileges,
            } => format!(
                "grant {} ({column}) on table {schema}.{table} to {grantee}",
                privilege_list(&Some(privileges.clone()))
            ),
            Action::DefaultPrivileges {
                owner,
                schema,
                object_type,
                grantee,
                privileges,
                grant,
            } => format!(
                "{} default {} on {} created by {owner}{} {} {grantee}",
                if *grant { "grant" } else { "revoke" },
                privilege_list(privileges),
                object_type.keyword().to_lowercase(),
                schema
                    .as_deref()
                    .map(|s| format!(" in schema {s}"))
                    .unwrap_or_default(),
                if *grant { "to" } else { "from" },
            ),
        }
    }

    /// The statement. Contains a password verifier for [`Action::SetPassword`]
    /// (computed here, with a fresh salt): never log it. `RecordPassword` is
    /// executed with bind parameters instead (see [`mod@super::apply`]).
    pub fn sql(&self) -> String {
        match self {
            Action::CreateRole { role } => {
                format!("CREATE ROLE {} WITH LOGIN NOINHERIT", quote_ident(role))
            }
            Action::CommentOnRole { role, comment } => format!(
                "COMMENT ON ROLE {} IS {}",
                quote_ident(role),
                quote_literal(comment)
            ),
            Action::AlterAttributes { role, attributes } => format!(
                "ALTER ROLE {} WITH {}",
                quote_ident(role),
                attributes
                    .iter()
                    .map(|(a, on)| a.keyword(*on))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Action::ClearValidUntil { role } => {
                format!("ALTER ROLE {} VALID UNTIL 'infinity'", quote_ident(role))
            }
            Action::SetPassword { role, password } => format!(
                "ALTER ROLE {} WITH PASSWORD {}",
                quote_ident(role),
                quote_literal(&scram_verifier(password))
            ),
            Action::RecordPassword { schema, .. } => format!(
                "INSERT INTO {}.fleetops_role_state (role_name, password_fingerprint, updated_at)
                 VALUES ($1, $2, now())
                 ON CONFLICT (role_name) DO UPDATE
                 SET password_fingerprint = excluded.password_fingerprint, updated_at = now()",
                quote_ident(schema)
            ),
            Action::SetConnectionLimit { role, limit } => format!(
                "ALTER ROLE {} WITH CONNECTION LIMIT {limit}",
                quote_ident(role)
            ),
            Action::SetSetting { role, name, value } => format!(
                "ALTER ROLE {} SET {} = {}",
                quote_ident(role),
                quote_ident(name),
                quote_literal(value)
            ),
            Action::ResetSetting { role, name } => {
                format!(
                    "ALTER ROLE {} RESET {}",
                    quote_ident(role),
                    quote_ident(name)
                )
            }
            Action::RevokeMembership { role, group } => {
                format!("REVOKE {} FROM {}", quote_ident(group), quote_ident(role))
            }
            Action::Grant {
                grantee,
                target,
                privileges,
            } => format!(
                "GRANT {} ON {} TO {}",
                privilege_list(&Some(privileges.clone())),
                target.sql(),
                grantee_sql(grantee)
            ),
            Action::Revoke {
                grantee,
                target,
                privileges,
                grant_option_only,
            } => format!(
                // CASCADE: should the role have passed a privilege on (it
                // never holds a grant option by design), those grants go too.
                "REVOKE {}{} ON {} FROM {} CASCADE",
                if *grant_option_only {
                    "GRANT OPTION FOR "
                } else {
                    ""
                },
                privilege_list(privileges),
                target.sql(),
                grantee_sql(grantee)
            ),
            Action::RevokeColumn {
                grantee,
                schema,
                table,
                column,
                privileges,
            } => format!(
                "REVOKE {} ({}) ON TABLE {} FROM {} CASCADE",
                privilege_list(privileges),
                quote_ident(column),
                qualified(schema, table),
                grantee_sql(grantee)
            ),
            Action::GrantColumn {
                grantee,
                schema,
                table,
                column,
                privileges,
            } => format!(
                "GRANT {} ({}) ON TABLE {} TO {}",
                privilege_list(&Some(privileges.clone())),
                quote_ident(column),
                qualified(schema, table),
                grantee_sql(grantee)
            ),
            Action::DefaultPrivileges {
                owner,
                schema,
                object_type,
                grantee,
                privileges,
                grant,
            } => format!(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {}{} {} {} ON {} {} {}",
                quote_ident(owner),
                schema
                    .as_deref()
                    .map(|s| format!(" IN SCHEMA {}", quote_ident(s)))
                    .unwrap_or_default(),
                if *grant { "GRANT" } else { "REVOKE" },
                privilege_list(privileges),
                object_type.keyword(),
                if *grant { "TO" } else { "FROM" },
                grantee_sql(grantee)
            ),
        }
    }
}

/// A pipeline role name held by a role this pipeline does not own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleConflict {
    pub role: String,
    /// The comment found (another pipeline's marker, or none).
    pub found: Option<String>,
}

/// Desired roles that exist without this pipeline's ownership marker.
pub fn conflicts(desired: &DesiredRoles, observed: &ObservedCatalog) -> Vec<RoleConflict> {
    let marker = desired.marker();
    desired
        .roles
        .iter()
        .filter_map(|d| {
            let o = observed.roles.get(&d.name)?;
            (o.comment.as_deref() != Some(marker.as_str())).then(|| RoleConflict {
                role: d.name.clone(),
                found: o.comment.clone(),
            })
        })
        .collect()
}

/// The ordered steps from `observed` to `desired`.
pub fn plan(desired: &DesiredRoles, observed: &ObservedCatalog) -> Vec<Action> {
    let skip: BTreeSet<String> = conflicts(desired, observed)
        .into_iter()
        .map(|c| c.role)
        .collect();
    let mut actions = Vec::new();
    for role in &desired.roles {
        if !skip.contains(&role.name) {
            plan_role(desired, role, observed, &mut actions);
        }
    }
    plan_public(desired, observed, &mut actions);
    actions
}

/// The server stores `search_path` (a list setting) with each element passed
/// through `quote_identifier`: `"My Schema"` for a name that needs quotes,
/// bare otherwise. Compare a one-element path unquoted.
fn setting_matches(name: &str, stored: &str, wanted: &str) -> bool {
    if name != "search_path" {
        return stored == wanted;
    }
    let unquoted = match stored.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) if !inner.replace("\"\"", "").contains('"') => inner.replace("\"\"", "\""),
        _ => stored.to_owned(),
    };
    unquoted == wanted
}

/// A privilege set split by grant option, from ACL entries of one grantee.
#[derive(Default)]
struct Held {
    privileges: BTreeSet<Privilege>,
    grantable: BTreeSet<Privilege>,
    unknown: bool,
}

fn held<'a>(acl: impl IntoIterator<Item = &'a AclEntry>, grantee: &Grantee) -> Held {
    let mut h = Held::default();
    for e in acl.into_iter().filter(|e| &e.grantee == grantee) {
        match e.privilege {
            Some(p) => {
                h.privileges.insert(p);
                if e.grantable {
                    h.grantable.insert(p);
                }
            }
            None => h.unknown = true,
        }
    }
    h
}

/// Grant what is missing, revoke what is extra, drop grant options.
fn converge(
    actions: &mut Vec<Action>,
    grantee: &Grantee,
    target: Target,
    want: &BTreeSet<Privilege>,
    have: Held,
) {
    if have.unknown {
        actions.push(Action::Revoke {
            grantee: grantee.clone(),
            target: target.clone(),
            privileges: None,
            grant_option_only: false,
        });
        if !want.is_empty() {
            actions.push(Action::Grant {
                grantee: grantee.clone(),
                target,
                privileges: want.clone(),
            });
        }
        return;
    }
    let extra: BTreeSet<Privilege> = have.privileges.difference(want).copied().collect();
    let missing: BTreeSet<Privilege> = want.difference(&have.privileges).copied().collect();
    let options: BTreeSet<Privilege> = have.grantable.intersection(want).copied().collect();
    if !extra.is_empty() {
        actions.push(Action::Revoke {
            grantee: grantee.clone(),
            target: target.clone(),
            privileges: Some(extra),
            grant_option_only: false,
        });
    }
    if !options.is_empty() {
        actions.push(Action::Revoke {
            grantee: grantee.clone(),
            target: target.clone(),
            privileges: Some(options),
            grant_option_only: true,
        });
    }
    if !missing.is_empty() {
        actions.push(Action::Grant {
            grantee: grantee.clone(),
            target,
            privileges: missing,
        });
    }
}

fn object_target(schema: &str, o: &ObservedObject) -> Target {
    match o.object_type {
        ObjectType::Relation => Target::Table {
            schema: schema.to_owned(),
            name: o.name.clone(),
        },
        ObjectType::Sequence => Target::Sequence {
            schema: schema.to_owned(),
            name: o.name.clone(),
        },
        ObjectType::Function => Target::Routine {
            schema: schema.to_owned(),
            name: o.name.clone(),
            arguments: o.arguments.clone().unwrap_or_default(),
        },
    }
}

fn plan_role(
    desired: &DesiredRoles,
    role: &DesiredRole,
    observed: &ObservedCatalog,
    actions: &mut Vec<Action>,
) {
    let name = &role.name;
    let existing = observed.roles.get(name);
    let grantee = Grantee::Role(name.clone());

    // Create, mark, attributes, expiry.
    match existing {
        None => {
            actions.push(Action::CreateRole { role: name.clone() });
            actions.push(Action::CommentOnRole {
                role: name.clone(),
                comment: desired.marker(),
            });
        }
        Some(o) => {
            let attributes: Vec<(RoleAttribute, bool)> = RoleAttribute::ALL
                .iter()
                .filter(|a| a.observed(o) != a.wanted())
                .map(|a| (*a, a.wanted()))
                .collect();
            if !attributes.is_empty() {
                actions.push(Action::AlterAttributes {
                    role: name.clone(),
                    attributes,
                });
            }
            if o.valid_until.as_deref().is_some_and(|v| v != "infinity") {
                actions.push(Action::ClearValidUntil { role: name.clone() });
            }
        }
    }

    // Password: set when the role is new or the recorded fingerprint differs.
    if let Some(password) = &role.password {
        let fp = fingerprint(name, password);
        let current = existing.is_some() && observed.password_fingerprints.get(name) == Some(&fp);
        if !current {
            actions.push(Action::SetPassword {
                role: name.clone(),
                password: password.clone(),
            });
            if observed.role_state_table {
                actions.push(Action::RecordPassword {
                    role: name.clone(),
                    schema: desired.schema.clone(),
                    fingerprint: fp,
                });
            }
        }
    }

    // Connection limit (a new role starts at -1).
    let limit = existing.map_or(-1, |o| o.connection_limit);
    if limit != role.connection_limit {
        actions.push(Action::SetConnectionLimit {
            role: name.clone(),
            limit: role.connection_limit,
        });
    }

    // Settings: exactly the desired ones.
    let empty = BTreeMap::new();
    let have = existing.map_or(&empty, |o| &o.settings);
    for (k, v) in &role.settings {
        if !have.get(k).is_some_and(|h| setting_matches(k, h, v)) {
            actions.push(Action::SetSetting {
                role: name.clone(),
                name: k.clone(),
                value: v.clone(),
            });
        }
    }
    for k in have.keys().filter(|k| !role.settings.contains_key(*k)) {
        actions.push(Action::ResetSetting {
            role: name.clone(),
            name: k.clone(),
        });
    }

    // Memberships: none.
    for group in existing.map(|o| o.member_of.iter()).into_iter().flatten() {
        actions.push(Action::RevokeMembership {
            role: name.clone(),
            group: group.clone(),
        });
    }

    // Database: CONNECT (explicitly only when PUBLIC may not), nothing else.
    let db_have = held(&observed.database_acl, &grantee);
    let mut db_want = BTreeSet::new();
    if observed.public_can_connect() {
        // An explicit CONNECT is harmless: keep one if present.
        if db_have.privileges.contains(&Privilege::Connect) {
            db_want.insert(Privilege::Connect);
        }
    } else {
        db_want.insert(Privilege::Connect);
    }
    converge(
        actions,
        &grantee,
        Target::Database(observed.database.clone()),
        &db_want,
        db_have,
    );

    if !observed.schema_exists {
        return;
    }

    // Schema: USAGE only (never CREATE).
    converge(
        actions,
        &grantee,
        Target::Schema(desired.schema.clone()),
        &BTreeSet::from([Privilege::Usage]),
        held(&observed.schema_acl, &grantee),
    );

    // Every object in the schema: exactly the matrix.
    let none = BTreeSet::new();
    for o in &observed.objects {
        let want = role
            .grants
            .get(&(o.object_type, o.name.clone()))
            .unwrap_or(&none);
        converge(
            actions,
            &grantee,
            object_target(&desired.schema, o),
            want,
            held(&o.acl, &grantee),
        );
    }

    // Column privileges: exactly the column matrix.
    plan_columns(desired, observed, &grantee, &role.columns, actions);

    // Default privileges: only the desired ones, for objects the migration
    // login (the current user) creates in this schema.
    let mut groups: BTreeMap<(String, Option<String>, DefaultObjectType), Held> = BTreeMap::new();
    for d in observed
        .default_acls
        .iter()
        .filter(|d| d.entry.grantee == grantee)
    {
        let h = groups
            .entry((d.owner.clone(), d.schema.clone(), d.object_type))
            .or_default();
        match d.entry.privilege {
            Some(p) => {
                h.privileges.insert(p);
            }
            None => h.unknown = true,
        }
    }
    let wanted_defaults: BTreeMap<DefaultObjectType, BTreeSet<Privilege>> = desired
        .default_privileges
        .iter()
        .filter(|d| &d.role == name)
        .map(|d| (d.object_type, d.privileges.clone()))
        .collect();
    for object_type in wanted_defaults.keys() {
        groups
            .entry((
                observed.current_user.clone(),
                Some(desired.schema.clone()),
                *object_type,
            ))
            .or_default();
    }
    for ((owner, schema, object_type), h) in groups {
        let mine = owner == observed.current_user && schema.as_deref() == Some(&desired.schema);
        let want = if mine {
            wanted_defaults
                .get(&object_type)
                .cloned()
                .unwrap_or_default()
        } else {
            BTreeSet::new()
        };
        let (revoke, grant) = if h.unknown {
            (None, want)
        } else {
            (
                Some(
                    h.privileges
                        .difference(&want)
                        .copied()
                        .collect::<BTreeSet<_>>(),
                ),
                want.difference(&h.privileges).copied().collect(),
            )
        };
        if revoke.as_ref().is_none_or(|r| !r.is_empty()) {
            actions.push(Action::DefaultPrivileges {
                owner: owner.clone(),
                schema: schema.clone(),
                object_type,
                grantee: grantee.clone(),
                privileges: revoke,
                grant: false,
            });
        }
        if !grant.is_empty() {
            actions.push(Action::DefaultPrivileges {
                owner,
                schema,
                object_type,
                grantee: grantee.clone(),
                privileges: Some(grant),
                grant: true,
            });
        }
    }
}

/// Column privileges: exactly `want` ((table, column) → privileges) on the
/// tables that exist. A table-level REVOKE planned just before also takes
/// the matching column privileges away (PostgreSQL cascades it), so those
/// count as not held.
fn plan_columns(
    desired: &DesiredRoles,
    observed: &ObservedCatalog,
    grantee: &Grantee,
    want: &BTreeMap<(String, String), BTreeSet<Privilege>>,
    actions: &mut Vec<Action>,
) {
    let mut revoked_on_table: BTreeMap<String, Option<BTreeSet<Privilege>>> = BTreeMap::new();
    for a in actions.iter() {
        if let Action::Revoke {
            grantee: g,
            target: Target::Table { name, .. },
            privileges,
            grant_option_only: false,
        } = a
            && g == grantee
        {
            revoked_on_table.insert(name.clone(), privileges.clone());
        }
    }
    let cascaded = |table: &str, p: Privilege| match revoked_on_table.get(table) {
        Some(None) => true,
        Some(Some(set)) => set.contains(&p),
        None => false,
    };
    let mut cols: BTreeMap<(String, String), Held> = BTreeMap::new();
    for c in observed
        .column_grants
        .iter()
        .filter(|c| &c.entry.grantee == grantee)
    {
        let h = cols.entry((c.table.clone(), c.column.clone())).or_default();
        match c.entry.privilege {
            Some(p) if cascaded(&c.table, p) => {}
            Some(p) => {
                h.privileges.insert(p);
                if c.entry.grantable {
                    h.grantable.insert(p);
                }
            }
            None => h.unknown = true,
        }
    }
    let table_exists = |t: &str| {
        observed
            .objects
            .iter()
            .any(|o| o.object_type == ObjectType::Relation && o.name == t)
    };
    for key in want.keys() {
        if table_exists(&key.0) {
            cols.entry(key.clone()).or_default();
        }
    }
    let none = BTreeSet::new();
    for ((table, column), h) in cols {
        let w = want.get(&(table.clone(), column.clone())).unwrap_or(&none);
        let (revoke, grant): (Option<BTreeSet<Privilege>>, BTreeSet<Privilege>) = if h.unknown {
            (None, w.clone())
        } else {
            let mut extra: BTreeSet<Privilege> = h.privileges.difference(w).copied().collect();
            // A grant option on a wanted privilege: revoke and grant again.
            extra.extend(h.grantable.intersection(w).copied());
            let mut missing: BTreeSet<Privilege> = w.difference(&h.privileges).copied().collect();
            missing.extend(h.grantable.intersection(w).copied());
            (Some(extra), missing)
        };
        if revoke.as_ref().is_none_or(|r| !r.is_empty()) {
            actions.push(Action::RevokeColumn {
                grantee: grantee.clone(),
                schema: desired.schema.clone(),
                table: table.clone(),
                column: column.clone(),
                privileges: revoke,
            });
        }
        if !grant.is_empty() {
            actions.push(Action::GrantColumn {
                grantee: grantee.clone(),
                schema: desired.schema.clone(),
                table,
                column,
                privileges: grant,
            });
        }
    }
}

/// PUBLIC holds nothing in the pipeline schema.
fn plan_public(desired: &DesiredRoles, observed: &ObservedCatalog, actions: &mut Vec<Action>) {
    if !observed.schema_exists {
        return;
    }
    let public = Grantee::Public;
    if observed.schema_acl.iter().any(|e| e.grantee == public) {
        actions.push(Action::Revoke {
            grantee: public.clone(),
            target: Target::Schema(desired.schema.clone()),
            privileges: None,
            grant_option_only: false,
        });
    }
    for o in &observed.objects {
        if o.acl.iter().any(|e| e.grantee == public) {
            actions.push(Action::Revoke {
                grantee: public.clone(),
                target: object_target(&desired.schema, o),
                privileges: None,
                grant_option_only: false,
            });
        }
    }
    plan_columns(desired, observed, &public, &BTreeMap::new(), actions);
    let mut seen = BTreeSet::new();
    for d in &observed.default_acls {
        if d.entry.grantee == public
            && d.schema.as_deref() == Some(&desired.schema)
            && seen.insert((d.owner.clone(), d.object_type))
        {
            actions.push(Action::DefaultPrivileges {
                owner: d.owner.clone(),
                schema: d.schema.clone(),
                object_type: d.object_type,
                grantee: public.clone(),
                privileges: None,
                grant: false,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::catalog::{ColumnGrant, DefaultAcl};
    use crate::db::privileges::{MATRIX, WorkloadRole};
    use crate::db::roles::{DesiredDefaultPrivilege, PipelineRef, RoleOverrides};

    const ADMIN: &str = "fleet_admin";

    fn desired_with(passwords: bool) -> DesiredRoles {
        let owner = PipelineRef::new("fleet", "kenya-fleet", "uid-1");
        let pw: BTreeMap<WorkloadRole, SecretString> = if passwords {
            WorkloadRole::ALL
                .iter()
                .map(|r| (*r, SecretString::new(format!("pw-{r}"))))
                .collect()
        } else {
            BTreeMap::new()
        };
        DesiredRoles::new(&owner, "tracksolid", &pw, &BTreeMap::new()).expect("desired")
    }

    fn acl(grantee: Grantee, privileges: &[Privilege]) -> Vec<AclEntry> {
        privileges
            .iter()
            .map(|p| AclEntry {
                grantee: grantee.clone(),
                privilege: Some(*p),
                grantable: false,
            })
            .collect()
    }

    /// A freshly migrated schema: every matrix object exists, owned by the
    /// admin, with only the owner's privileges (functions: PUBLIC revoked).
    fn empty_catalog() -> ObservedCatalog {
        let owner = Grantee::Role(ADMIN.into());
        let mut objects: Vec<ObservedObject> = MATRIX
            .iter()
            .map(|g| ObservedObject {
                object_type: g.object_type,
                name: g.object.to_owned(),
                arguments: (g.object_type == ObjectType::Function).then(String::new),
                owner: ADMIN.into(),
                acl: acl(owner.clone(), &[Privilege::Select, Privilege::Insert]),
            })
            .collect();
        objects.push(ObservedObject {
            object_type: ObjectType::Relation,
            name: "fleetops_claim".into(),
            arguments: None,
            owner: ADMIN.into(),
            acl: acl(owner.clone(), &[Privilege::Select]),
        });
        ObservedCatalog {
            database: "fleet".into(),
            current_user: ADMIN.into(),
            roles: BTreeMap::new(),
            database_acl: [
                acl(Grantee::Public, &[Privilege::Connect, Privilege::Temporary]),
                acl(owner.clone(), &[Privilege::Connect, Privilege::Create]),
            ]
            .concat(),
            schema_exists: true,
            schema_acl: acl(owner, &[Privilege::Usage, Privilege::Create]),
            objects,
            column_grants: vec![],
            default_acls: vec![],
            role_state_table: true,
            password_fingerprints: BTreeMap::new(),
        }
    }

    /// What the database looks like after `plan` was applied (a tiny model
    /// of PostgreSQL for the steady-state tests).
    fn simulate(
        desired: &DesiredRoles,
        mut cat: ObservedCatalog,
        actions: &[Action],
    ) -> ObservedCatalog {
        let _ = desired;
        for a in actions {
            match a {
                Action::CreateRole { role } => {
                    cat.roles.insert(
                        role.clone(),
                        ObservedRole {
                            name: role.clone(),
                            login: true,
                            connection_limit: -1,
                            ..ObservedRole::default()
                        },
                    );
                }
                Action::CommentOnRole { role, comment } => {
                    if let Some(r) = cat.roles.get_mut(role) {
                        r.comment = Some(comment.clone());
                    }
                }
                Action::AlterAttributes { role, attributes } => {
                    if let Some(r) = cat.roles.get_mut(role) {
                        for (a, on) in attributes {
                            match a {
                                RoleAttribute::Login => r.login = *on,
                                RoleAttribute::Superuser => r.superuser = *on,
                                RoleAttribute::CreateDb => r.create_db = *on,
                                RoleAttribute::CreateRole => r.create_role = *on,
                                RoleAttribute::Inherit => r.inherit = *on,
                                RoleAttribute::Replication => r.replication = *on,
                                RoleAttribute::BypassRls => r.bypass_rls = *on,
                            }
                        }
                    }
                }
                Action::ClearValidUntil { role } => {
                    if let Some(r) = cat.roles.get_mut(role) {
                        r.valid_until = None;
                    }
                }
                Action::SetPassword { .. } => {}
                Action::RecordPassword {
                    role, fingerprint, ..
                } => {
                    cat.password_fingerprints
                        .insert(role.clone(), fingerprint.clone());
                }
                Action::SetConnectionLimit { role, limit } => {
                    if let Some(r) = cat.roles.get_mut(role) {
                        r.connection_limit = *limit;
                    }
                }
                Action::SetSetting { role, name, value } => {
                    if let Some(r) = cat.roles.get_mut(role) {
                        r.settings.insert(name.clone(), value.clone());
                    }
                }
                Action::ResetSetting { role, name } => {
                    if let Some(r) = cat.roles.get_mut(role) {
                        r.settings.remove(name);
                    }
                }
                Action::RevokeMembership { role, group } => {
                    if let Some(r) = cat.roles.get_mut(role) {
                        r.member_of.remove(group);
                    }
                }
                Action::Grant {
                    grantee,
                    target,
                    privileges,
                } => {
                    let entries = acl(
                        grantee.clone(),
                        &privileges.iter().copied().collect::<Vec<_>>(),
                    );
                    acl_of(&mut cat, target).extend(entries);
                }
                Action::Revoke {
                    grantee,
                    target,
                    privileges,
                    grant_option_only,
                } => {
                    let list = acl_of(&mut cat, target);
                    if *grant_option_only {
                        for e in list.iter_mut().filter(|e| &e.grantee == grantee) {
                            e.grantable = false;
                        }
                    } else {
                        list.retain(|e| {
                            &e.grantee != grantee
                                || privileges
                                    .as_ref()
                                    .is_some_and(|p| e.privilege.is_some_and(|x| !p.contains(&x)))
                        });
                        // PostgreSQL: a table-level REVOKE takes the column
                        // privileges with it.
                        if let Target::Table { name, .. } = target {
                            cat.column_grants.retain(|c| {
                                !(&c.entry.grantee == grantee
                                    && &c.table == name
                                    && privileges.as_ref().is_none_or(|p| {
                                        c.entry.privilege.is_some_and(|x| p.contains(&x))
                                    }))
                            });
                        }
                    }
                }
                Action::RevokeColumn {
                    grantee,
                    table,
                    column,
                    ..
                } => cat.column_grants.retain(|c| {
                    !(&c.entry.grantee == grantee && &c.table == table && &c.column == column)
                }),
                Action::GrantColumn {
                    grantee,
                    table,
                    column,
                    privileges,
                    ..
                } => {
                    for p in privileges {
                        cat.column_grants.push(ColumnGrant {
                            table: table.clone(),
                            column: column.clone(),
                            entry: AclEntry {
                                grantee: grantee.clone(),
                                privilege: Some(*p),
                                grantable: false,
                            },
                        });
                    }
                }
                Action::DefaultPrivileges {
                    owner,
                    schema,
                    object_type,
                    grantee,
                    privileges,
                    grant,
                } => {
                    if *grant {
                        for p in privileges.iter().flatten() {
                            cat.default_acls.push(DefaultAcl {
                                owner: owner.clone(),
                                schema: schema.clone(),
                                object_type: *object_type,
                                entry: AclEntry {
                                    grantee: grantee.clone(),
                                    privilege: Some(*p),
                                    grantable: false,
                                },
                            });
                        }
                    } else {
                        cat.default_acls.retain(|d| {
                            !(&d.owner == owner
                                && &d.schema == schema
                                && d.object_type == *object_type
                                && &d.entry.grantee == grantee
                                && privileges.as_ref().is_none_or(|p| {
                                    d.entry.privilege.is_some_and(|x| p.contains(&x))
                                }))
                        });
                    }
                }
            }
        }
        cat
    }

    fn acl_of<'a>(cat: &'a mut ObservedCatalog, target: &Target) -> &'a mut Vec<AclEntry> {
        match target {
            Target::Database(_) => &mut cat.database_acl,
            Target::Schema(_) => &mut cat.schema_acl,
            Target::Table { name, .. }
            | Target::Sequence { name, .. }
            | Target::Routine { name, .. } => {
                let i = cat
                    .objects
                    .iter()
                    .position(|o| &o.name == name)
                    .expect("object exists");
                &mut cat.objects[i].acl
            }
        }
    }

    fn converged() -> (DesiredRoles, ObservedCatalog) {
        let d = desired_with(true);
        let cat = empty_catalog();
        let first = plan(&d, &cat);
        (d.clone(), simulate(&d, cat, &first))
    }

    #[test]
    fn create_from_empty_creates_marks_and_grants_in_order() {
        let d = desired_with(true);
        let actions = plan(&d, &empty_catalog());
        let ingest = "fleet_kenya_fleet_ingest";
        let mine: Vec<&Action> = actions
            .iter()
            .filter(|a| a.role() == Some(ingest))
            .collect();
        let labels: Vec<&str> = mine.iter().map(|a| a.label()).collect();
        assert_eq!(
            &labels[..5],
            [
                "create role",
                "mark role ownership",
                "set password",
                "record password fingerprint",
                "set connection limit"
            ]
        );
        // Order: settings before schema usage before table grants.
        let pos = |label: &str| labels.iter().position(|l| *l == label).expect(label);
        assert!(pos("set role setting") < pos("grant privileges"));
        let first_grant = &mine[pos("grant privileges")];
        assert!(
            matches!(first_grant, Action::Grant { target: Target::Schema(_), privileges, .. } if privileges == &BTreeSet::from([Privilege::Usage]))
        );
        // The ingest role gets the token table, the webhook does not; nobody
        // gets CREATE or anything on the operator's table.
        assert!(actions.iter().any(|a| matches!(a,
            Action::Grant { grantee: Grantee::Role(r), target: Target::Table { name, .. }, .. }
                if r == ingest && name == "api_token")));
        for a in &actions {
            if let Action::Grant {
                target, privileges, ..
            } = a
            {
                assert!(!privileges.contains(&Privilege::Create), "{}", a.describe());
                assert!(!matches!(target, Target::Table { name, .. } if name == "fleetops_claim"));
                assert!(
                    !matches!(target, Target::Database(_)),
                    "PUBLIC may connect: no grant needed"
                );
            }
            if let Action::Grant {
                grantee: Grantee::Role(r),
                target: Target::Table { name, .. },
                ..
            } = a
            {
                assert!(!(r.ends_with("_webhook") && name == "devices"));
            }
        }
        // Four roles, four creates.
        assert_eq!(
            actions
                .iter()
                .filter(|a| a.label() == "create role")
                .count(),
            4
        );
    }

    #[test]
    fn steady_state_plans_nothing() {
        let (d, cat) = converged();
        assert_eq!(plan(&d, &cat), vec![]);
    }

    #[test]
    fn without_passwords_no_password_is_touched() {
        let d = desired_with(false);
        let actions = plan(&d, &empty_catalog());
        assert!(actions.iter().all(|a| !matches!(
            a,
            Action::SetPassword { .. } | Action::RecordPassword { .. }
        )));
    }

    #[test]
    fn an_extra_privilege_is_revoked() {
        let (d, mut cat) = converged();
        let webhook = "fleet_kenya_fleet_webhook".to_owned();
        let positions = cat
            .objects
            .iter_mut()
            .find(|o| o.name == "positions")
            .expect("positions");
        positions.acl.extend(acl(
            Grantee::Role(webhook.clone()),
            &[Privilege::Delete, Privilege::Truncate],
        ));
        cat.schema_acl
            .extend(acl(Grantee::Role(webhook.clone()), &[Privilege::Create]));
        let devices = cat
            .objects
            .iter_mut()
            .find(|o| o.name == "devices")
            .expect("devices");
        devices.acl.push(AclEntry {
            grantee: Grantee::Role(webhook.clone()),
            privilege: Some(Privilege::Select),
            grantable: true,
        });
        let actions = plan(&d, &cat);
        assert_eq!(
            actions,
            vec![
                Action::Revoke {
                    grantee: Grantee::Role(webhook.clone()),
                    target: Target::Schema("tracksolid".into()),
                    privileges: Some(BTreeSet::from([Privilege::Create])),
                    grant_option_only: false,
                },
                Action::Revoke {
                    grantee: Grantee::Role(webhook.clone()),
                    target: Target::Table {
                        schema: "tracksolid".into(),
                        name: "devices".into()
                    },
                    privileges: Some(BTreeSet::from([Privilege::Select])),
                    grant_option_only: false,
                },
                Action::Revoke {
                    grantee: Grantee::Role(webhook.clone()),
                    target: Target::Table {
                        schema: "tracksolid".into(),
                        name: "positions".into()
                    },
                    privileges: Some(BTreeSet::from([Privilege::Delete, Privilege::Truncate])),
                    grant_option_only: false,
                },
            ]
        );
        assert_eq!(
            actions[2].sql(),
            "REVOKE DELETE, TRUNCATE ON TABLE \"tracksolid\".\"positions\" FROM \"fleet_kenya_fleet_webhook\" CASCADE"
        );
        let after = simulate(&d, cat, &actions);
        assert_eq!(plan(&d, &after), vec![]);
    }

    #[test]
    fn grant_options_memberships_columns_public_and_unknown_privileges_are_removed() {
        let (d, mut cat) = converged();
        let reader = "fleet_kenya_fleet_reader".to_owned();
        let r = Grantee::Role(reader.clone());
        let trips = cat
            .objects
            .iter_mut()
            .find(|o| o.name == "trips")
            .expect("trips");
        for e in trips.acl.iter_mut().filter(|e| e.grantee == r) {
            e.grantable = true;
        }
        trips.acl.extend(acl(Grantee::Public, &[Privilege::Select]));
        let token = cat
            .objects
            .iter_mut()
            .find(|o| o.name == "api_token")
            .expect("token");
        token.acl.push(AclEntry {
            grantee: r.clone(),
            privilege: None,
            grantable: false,
        });
        cat.column_grants.push(ColumnGrant {
            table: "geocode_cache".into(),
            column: "address".into(),
            entry: AclEntry {
                grantee: r.clone(),
                privilege: Some(Privilege::Select),
                grantable: false,
            },
        });
        cat.roles
            .get_mut(&reader)
            .expect("reader")
            .member_of
            .insert("pg_read_all_data".into());
        cat.schema_acl
            .extend(acl(Grantee::Public, &[Privilege::Usage]));
        let actions = plan(&d, &cat);
        let sql: Vec<String> = actions.iter().map(Action::sql).collect();
        assert_eq!(
            sql,
            vec![
                "REVOKE \"pg_read_all_data\" FROM \"fleet_kenya_fleet_reader\"",
                "REVOKE GRANT OPTION FOR SELECT ON TABLE \"tracksolid\".\"trips\" FROM \"fleet_kenya_fleet_reader\" CASCADE",
                "REVOKE ALL PRIVILEGES ON TABLE \"tracksolid\".\"api_token\" FROM \"fleet_kenya_fleet_reader\" CASCADE",
                "REVOKE SELECT (\"address\") ON TABLE \"tracksolid\".\"geocode_cache\" FROM \"fleet_kenya_fleet_reader\" CASCADE",
                "REVOKE ALL PRIVILEGES ON SCHEMA \"tracksolid\" FROM PUBLIC CASCADE",
                "REVOKE ALL PRIVILEGES ON TABLE \"tracksolid\".\"trips\" FROM PUBLIC CASCADE",
            ]
        );
        let after = simulate(&d, cat, &actions);
        assert_eq!(plan(&d, &after), vec![]);
    }

    #[test]
    fn the_webhook_gets_key_columns_only_and_a_table_grant_is_narrowed_back() {
        let (d, mut cat) = converged();
        let webhook = Grantee::Role("fleet_kenya_fleet_webhook".into());
        let held: BTreeSet<(String, String)> = cat
            .column_grants
            .iter()
            .filter(|c| c.entry.grantee == webhook)
            .map(|c| (c.table.clone(), c.column.clone()))
            .collect();
        assert!(held.contains(&("positions".into(), "gps_time".into())));
        assert!(held.contains(&("push_events".into(), "payload_hash".into())));
        assert!(!held.iter().any(|(_, c)| c == "lat" || c == "payload"));

        // Someone grants the whole table: revoked, and the key columns (which
        // the table-level REVOKE takes along) granted again, in one plan.
        let positions = cat
            .objects
            .iter_mut()
            .find(|o| o.name == "positions")
            .expect("positions");
        positions
            .acl
            .extend(acl(webhook.clone(), &[Privilege::Select]));
        let actions = plan(&d, &cat);
        let sql: Vec<String> = actions.iter().map(Action::sql).collect();
        assert_eq!(
            sql,
            vec![
                "REVOKE SELECT ON TABLE \"tracksolid\".\"positions\" FROM \"fleet_kenya_fleet_webhook\" CASCADE",
                "GRANT SELECT (\"gps_time\") ON TABLE \"tracksolid\".\"positions\" TO \"fleet_kenya_fleet_webhook\"",
                "GRANT SELECT (\"imei\") ON TABLE \"tracksolid\".\"positions\" TO \"fleet_kenya_fleet_webhook\"",
            ]
        );
        let after = simulate(&d, cat, &actions);
        assert_eq!(plan(&d, &after), vec![]);
    }

    #[test]
    fn changed_settings_limits_and_attributes_are_altered() {
        let (d, mut cat) = converged();
        let ingest = "fleet_kenya_fleet_ingest".to_owned();
        {
            let r = cat.roles.get_mut(&ingest).expect("ingest");
            r.settings.insert("statement_timeout".into(), "0".into());
            r.settings.insert("work_mem".into(), "1GB".into());
            r.connection_limit = -1;
            r.create_db = true;
            r.valid_until = Some("2020-01-01 00:00:00+00".into());
        }
        let actions = plan(&d, &cat);
        assert_eq!(
            actions,
            vec![
                Action::AlterAttributes {
                    role: ingest.clone(),
                    attributes: vec![(RoleAttribute::CreateDb, false)]
                },
                Action::ClearValidUntil {
                    role: ingest.clone()
                },
                Action::SetConnectionLimit {
                    role: ingest.clone(),
                    limit: 20
                },
                Action::SetSetting {
                    role: ingest.clone(),
                    name: "statement_timeout".into(),
                    value: "60s".into()
                },
                Action::ResetSetting {
                    role: ingest.clone(),
                    name: "work_mem".into()
                },
            ]
        );
        assert_eq!(
            actions[0].sql(),
            "ALTER ROLE \"fleet_kenya_fleet_ingest\" WITH NOCREATEDB"
        );
        assert_eq!(
            actions[3].sql(),
            "ALTER ROLE \"fleet_kenya_fleet_ingest\" SET \"statement_timeout\" = '60s'"
        );

        // An override is a change of the desired state.
        let mut o = BTreeMap::new();
        o.insert(
            WorkloadRole::Reader,
            RoleOverrides {
                connection_limit: Some(2),
                settings: BTreeMap::new(),
            },
        );
        let d2 = DesiredRoles::new(&d.owner, &d.schema, &BTreeMap::new(), &o).expect("desired");
        let (_, cat) = converged();
        assert_eq!(
            plan(&d2, &cat),
            vec![Action::SetConnectionLimit {
                role: "fleet_kenya_fleet_reader".into(),
                limit: 2
            }]
        );
    }

    #[test]
    fn a_rotated_password_is_set_again() {
        let (d, cat) = converged();
        let mut rotated = d.clone();
        rotated.roles[1].password = Some(SecretString::new("new"));
        let actions = plan(&rotated, &cat);
        assert_eq!(actions.len(), 2);
        assert!(
            matches!(&actions[0], Action::SetPassword { role, .. } if role == "fleet_kenya_fleet_webhook")
        );
        assert!(
            matches!(&actions[1], Action::RecordPassword { role, .. } if role == "fleet_kenya_fleet_webhook")
        );
        // The statement carries a SCRAM verifier, the debug output nothing.
        assert!(actions[0].sql().contains("'SCRAM-SHA-256$4096:"));
        assert!(!actions[0].sql().contains("'new'"));
        assert!(!format!("{actions:?}").contains("\"new\""));
        assert!(!actions[0].describe().contains("new"));
    }

    #[test]
    fn foreign_roles_are_left_alone_and_reported() {
        let (d, mut cat) = converged();
        let webhook = "fleet_kenya_fleet_webhook".to_owned();
        {
            let r = cat.roles.get_mut(&webhook).expect("webhook");
            r.comment = Some("fleetops: FleetPipeline other/pipeline".into());
            r.superuser = true;
        }
        assert_eq!(
            conflicts(&d, &cat),
            vec![RoleConflict {
                role: webhook.clone(),
                found: Some("fleetops: FleetPipeline other/pipeline".into())
            }]
        );
        assert!(
            plan(&d, &cat)
                .iter()
                .all(|a| a.role() != Some(webhook.as_str()))
        );
        cat.roles.get_mut(&webhook).expect("webhook").comment = None;
        assert_eq!(conflicts(&d, &cat).len(), 1);
    }

    #[test]
    fn default_privileges_are_granted_when_desired_and_revoked_otherwise() {
        let (mut d, mut cat) = converged();
        let reader = "fleet_kenya_fleet_reader".to_owned();
        let webhook = "fleet_kenya_fleet_webhook".to_owned();
        d.default_privileges.push(DesiredDefaultPrivilege {
            role: reader.clone(),
            object_type: DefaultObjectType::Tables,
            privileges: BTreeSet::from([Privilege::Select]),
        });
        cat.default_acls.push(DefaultAcl {
            owner: ADMIN.into(),
            schema: Some("tracksolid".into()),
            object_type: DefaultObjectType::Tables,
            entry: AclEntry {
                grantee: Grantee::Role(webhook.clone()),
                privilege: Some(Privilege::Delete),
                grantable: false,
            },
        });
        cat.default_acls.push(DefaultAcl {
            owner: ADMIN.into(),
            schema: None,
            object_type: DefaultObjectType::Functions,
            entry: AclEntry {
                grantee: Grantee::Role(webhook.clone()),
                privilege: Some(Privilege::Execute),
                grantable: false,
            },
        });
        let actions = plan(&d, &cat);
        let sql: Vec<String> = actions.iter().map(Action::sql).collect();
        assert_eq!(
            sql,
            vec![
                "ALTER DEFAULT PRIVILEGES FOR ROLE \"fleet_admin\" REVOKE EXECUTE ON FUNCTIONS FROM \"fleet_kenya_fleet_webhook\"",
                "ALTER DEFAULT PRIVILEGES FOR ROLE \"fleet_admin\" IN SCHEMA \"tracksolid\" REVOKE DELETE ON TABLES FROM \"fleet_kenya_fleet_webhook\"",
                "ALTER DEFAULT PRIVILEGES FOR ROLE \"fleet_admin\" IN SCHEMA \"tracksolid\" GRANT SELECT ON TABLES TO \"fleet_kenya_fleet_reader\"",
            ]
        );
        let after = simulate(&d, cat, &actions);
        assert_eq!(plan(&d, &after), vec![]);
    }

    #[test]
    fn a_database_without_public_connect_gets_explicit_connect() {
        let (d, mut cat) = converged();
        cat.database_acl.retain(|e| e.grantee != Grantee::Public);
        let actions = plan(&d, &cat);
        assert_eq!(actions.len(), 4);
        assert_eq!(
            actions[0].sql(),
            "GRANT CONNECT ON DATABASE \"fleet\" TO \"fleet_kenya_fleet_ingest\""
        );
        let after = simulate(&d, cat, &actions);
        assert_eq!(plan(&d, &after), vec![]);
    }

    #[test]
    fn injection_through_names_stays_quoted() {
        let owner = PipelineRef::new("ns", "p", "u");
        let schema = r#"s"; DROP ROLE postgres; --"#;
        let d =
            DesiredRoles::new(&owner, schema, &BTreeMap::new(), &BTreeMap::new()).expect("desired");
        let mut cat = empty_catalog();
        cat.schema_acl.clear();
        let actions = plan(&d, &cat);
        let usage = actions
            .iter()
            .find(|a| {
                matches!(
                    a,
                    Action::Grant {
                        target: Target::Schema(_),
                        ..
                    }
                )
            })
            .expect("usage");
        assert_eq!(
            usage.sql(),
            r#"GRANT USAGE ON SCHEMA "s""; DROP ROLE postgres; --" TO "ns_p_ingest""#
        );
        let setting = actions
            .iter()
            .find(|a| matches!(a, Action::SetSetting { name, .. } if name == "search_path"))
            .expect("search_path");
        assert_eq!(
            setting.sql(),
            r#"ALTER ROLE "ns_p_ingest" SET "search_path" = 's"; DROP ROLE postgres; --'"#
        );
        let comment = Action::CommentOnRole {
            role: "r".into(),
            comment: "x'; DROP ROLE postgres; --".into(),
        };
        assert_eq!(
            comment.sql(),
            "COMMENT ON ROLE \"r\" IS 'x''; DROP ROLE postgres; --'"
        );
    }

    #[test]
    fn search_path_is_compared_as_the_server_stores_it() {
        assert!(setting_matches("search_path", "tracksolid", "tracksolid"));
        assert!(setting_matches("search_path", "\"user\"", "user"));
        assert!(setting_matches("search_path", "\"a\"\"b\"", "a\"b"));
        assert!(!setting_matches(
            "search_path",
            "tracksolid, public",
            "tracksolid"
        ));
        assert!(!setting_matches("statement_timeout", "\"60s\"", "60s"));
    }

    #[test]
    fn a_missing_schema_plans_roles_only() {
        let d = desired_with(false);
        let cat = ObservedCatalog {
            database: "fleet".into(),
            current_user: ADMIN.into(),
            database_acl: acl(Grantee::Public, &[Privilege::Connect]),
            ..ObservedCatalog::default()
        };
        let actions = plan(&d, &cat);
        assert!(
            actions
                .iter()
                .all(|a| !matches!(a, Action::Grant { .. } | Action::Revoke { .. }))
        );
        assert!(!actions.is_empty());
    }
}
