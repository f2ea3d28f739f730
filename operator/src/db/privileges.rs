//! Exactly which privileges each workload role holds in its pipeline schema.
//! This table is the contract with the workloads (`workloads/src/store`) and
//! is rendered into `docs/privileges.md` (a test keeps the two identical).
//! Anything a role holds beyond it is revoked by the next reconcile; objects
//! not listed here get no grants at all.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The four login roles of a pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WorkloadRole {
    /// `fleet-ingest` polling jobs (positions, track, alarms, trips, parking,
    /// devices).
    Ingest,
    /// `fleet-webhook` push receiver.
    Webhook,
    /// `fleet-ingest housekeeping`: retention and reporting refresh.
    Housekeeping,
    /// Grafana and other read-only reporting.
    Reader,
}

impl WorkloadRole {
    pub const ALL: [WorkloadRole; 4] = [
        WorkloadRole::Ingest,
        WorkloadRole::Webhook,
        WorkloadRole::Housekeeping,
        WorkloadRole::Reader,
    ];

    /// Role-name suffix (without the leading `_`).
    pub fn suffix(self) -> &'static str {
        match self {
            WorkloadRole::Ingest => "ingest",
            WorkloadRole::Webhook => "webhook",
            WorkloadRole::Housekeeping => "housekeeping",
            WorkloadRole::Reader => "reader",
        }
    }
}

impl fmt::Display for WorkloadRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.suffix())
    }
}

/// A PostgreSQL privilege, as `aclexplode` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Privilege {
    Select,
    Insert,
    Update,
    Delete,
    Truncate,
    References,
    Trigger,
    Maintain,
    Usage,
    Create,
    Connect,
    Temporary,
    Execute,
}

impl Privilege {
    pub fn parse(s: &str) -> Option<Privilege> {
        Some(match s {
            "SELECT" => Privilege::Select,
            "INSERT" => Privilege::Insert,
            "UPDATE" => Privilege::Update,
            "DELETE" => Privilege::Delete,
            "TRUNCATE" => Privilege::Truncate,
            "REFERENCES" => Privilege::References,
            "TRIGGER" => Privilege::Trigger,
            "MAINTAIN" => Privilege::Maintain,
            "USAGE" => Privilege::Usage,
            "CREATE" => Privilege::Create,
            "CONNECT" => Privilege::Connect,
            "TEMPORARY" | "TEMP" => Privilege::Temporary,
            "EXECUTE" => Privilege::Execute,
            _ => return None,
        })
    }

    /// The SQL keyword (a fixed string, never user input).
    pub fn keyword(self) -> &'static str {
        match self {
            Privilege::Select => "SELECT",
            Privilege::Insert => "INSERT",
            Privilege::Update => "UPDATE",
            Privilege::Delete => "DELETE",
            Privilege::Truncate => "TRUNCATE",
            Privilege::References => "REFERENCES",
            Privilege::Trigger => "TRIGGER",
            Privilege::Maintain => "MAINTAIN",
            Privilege::Usage => "USAGE",
            Privilege::Create => "CREATE",
            Privilege::Connect => "CONNECT",
            Privilege::Temporary => "TEMPORARY",
            Privilege::Execute => "EXECUTE",
        }
    }
}

impl fmt::Display for Privilege {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())
    }
}

/// What kind of schema object a matrix row names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectType {
    /// Table, view, materialized view (GRANT … ON TABLE).
    Relation,
    /// GRANT … ON SEQUENCE.
    Sequence,
    /// GRANT … ON FUNCTION (every overload of the name).
    Function,
}

impl ObjectType {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectType::Relation => "table",
            ObjectType::Sequence => "sequence",
            ObjectType::Function => "function",
        }
    }
}

/// One row of the privilege matrix.
#[derive(Clone, Copy, Debug)]
pub struct Grants {
    pub object: &'static str,
    pub object_type: ObjectType,
    pub ingest: &'static [Privilege],
    pub webhook: &'static [Privilege],
    pub housekeeping: &'static [Privilege],
    pub reader: &'static [Privilege],
    /// Why, in one line (rendered into docs/privileges.md).
    pub why: &'static str,
}

impl Grants {
    pub fn for_role(&self, role: WorkloadRole) -> &'static [Privilege] {
        match role {
            WorkloadRole::Ingest => self.ingest,
            WorkloadRole::Webhook => self.webhook,
            WorkloadRole::Housekeeping => self.housekeeping,
            WorkloadRole::Reader => self.reader,
        }
    }
}

use ObjectType::{Function, Relation, Sequence};
use Privilege::{Delete, Execute, Insert, Select, Update, Usage};

const NONE: &[Privilege] = &[];
const SIU: &[Privilege] = &[Select, Insert, Update];

/// The privilege matrix. Every table, view, sequence and function the
/// migrations create is either here or in [`OPERATOR_ONLY`] (a database test
/// checks it), so a new migration cannot add an object without a decision.
pub const MATRIX: &[Grants] = &[
    Grants {
        object: "devices",
        object_type: Relation,
        ingest: SIU,
        webhook: NONE,
        housekeeping: NONE,
        reader: &[Select],
        why: "devices job upserts the fleet and disables/re-enables devices; the webhook never reads it",
    },
    Grants {
        object: "positions",
        object_type: Relation,
        ingest: SIU,
        webhook: &[Insert],
        housekeeping: NONE,
        reader: &[Select],
        why: "idempotent `INSERT … ON CONFLICT (imei, gps_time) DO NOTHING` (SELECT on the key columns); retention goes through purge_time_series()",
    },
    Grants {
        object: "latest_positions",
        object_type: Relation,
        ingest: SIU,
        webhook: SIU,
        housekeeping: NONE,
        reader: &[Select],
        why: "`ON CONFLICT (imei) DO UPDATE SET col = excluded.col … WHERE lp.gps_time < excluded.gps_time`: every `excluded.col` read counts as SELECT on that column, i.e. all of them",
    },
    Grants {
        object: "alarms",
        object_type: Relation,
        ingest: SIU,
        webhook: &[Insert],
        housekeeping: NONE,
        reader: &[Select],
        why: "idempotent insert on (imei, alarm_type, alarm_time)",
    },
    Grants {
        object: "heartbeats",
        object_type: Relation,
        ingest: NONE,
        webhook: &[Insert],
        housekeeping: NONE,
        reader: &[Select],
        why: "pushed only (`/pushhb`), idempotent insert on (imei, gate_time)",
    },
    Grants {
        object: "trips",
        object_type: Relation,
        ingest: SIU,
        webhook: NONE,
        housekeeping: NONE,
        reader: &[Select],
        why: "trips job upserts trips and fills geocoded addresses",
    },
    Grants {
        object: "parking",
        object_type: Relation,
        ingest: SIU,
        webhook: NONE,
        housekeeping: NONE,
        reader: &[Select],
        why: "parking job upserts parking/idling periods",
    },
    Grants {
        object: "api_token",
        object_type: Relation,
        ingest: &[Select, Insert, Update, Delete],
        webhook: NONE,
        housekeeping: NONE,
        reader: NONE,
        why: "Tracksolid token cache (upsert, and DELETE to invalidate a rejected token); a secret: nobody else reads it",
    },
    Grants {
        object: "geocode_cache",
        object_type: Relation,
        ingest: SIU,
        webhook: NONE,
        housekeeping: NONE,
        reader: NONE,
        why: "reverse-geocoding cache used by the trips job",
    },
    Grants {
        object: "ingestion_log",
        object_type: Relation,
        ingest: &[Select, Insert],
        webhook: NONE,
        housekeeping: &[Select, Insert, Delete],
        reader: &[Select],
        why: "one row per run and target; the windowed jobs read their last successful run to catch up; housekeeping logs its own run and deletes past retention",
    },
    Grants {
        object: "ingestion_log_id_seq",
        object_type: Sequence,
        ingest: &[Usage],
        webhook: NONE,
        housekeeping: &[Usage],
        reader: NONE,
        why: "`bigserial` default (nextval) of ingestion_log.id",
    },
    Grants {
        object: "refresh_log",
        object_type: Relation,
        ingest: NONE,
        webhook: NONE,
        housekeeping: &[Select, Delete],
        reader: &[Select],
        why: "written by refresh_reporting(); housekeeping deletes past retention",
    },
    Grants {
        object: "refresh_log_id_seq",
        object_type: Sequence,
        ingest: NONE,
        webhook: NONE,
        housekeeping: NONE,
        reader: NONE,
        why: "`bigserial` default of refresh_log.id, used by refresh_reporting() as its owner",
    },
    Grants {
        object: "push_events",
        object_type: Relation,
        ingest: NONE,
        webhook: &[Insert],
        housekeeping: &[Select, Delete],
        reader: NONE,
        why: "raw push audit: the webhook appends (`ON CONFLICT (kind, payload_hash) DO NOTHING`, SELECT on those columns), housekeeping trims",
    },
    Grants {
        object: "push_events_id_seq",
        object_type: Sequence,
        ingest: NONE,
        webhook: &[Usage],
        housekeeping: NONE,
        reader: NONE,
        why: "`bigserial` default of push_events.id",
    },
    Grants {
        object: "pipeline_endpoints",
        object_type: Relation,
        ingest: NONE,
        webhook: NONE,
        housekeeping: NONE,
        reader: &[Select],
        why: "written by the operator only; read through v_ingest_health",
    },
    Grants {
        object: "v_ingest_health",
        object_type: Relation,
        ingest: NONE,
        webhook: &[Select],
        housekeeping: NONE,
        reader: &[Select],
        why: "the webhook's `/health/ingest`; a Grafana panel",
    },
    Grants {
        object: "v_latest_positions",
        object_type: Relation,
        ingest: NONE,
        webhook: NONE,
        housekeeping: NONE,
        reader: &[Select],
        why: "reporting view",
    },
    Grants {
        object: "mv_trips_per_day",
        object_type: Relation,
        ingest: NONE,
        webhook: NONE,
        housekeeping: NONE,
        reader: &[Select],
        why: "reporting materialized view, refreshed by refresh_reporting()",
    },
    Grants {
        object: "purge_time_series",
        object_type: Function,
        ingest: NONE,
        webhook: NONE,
        housekeeping: &[Execute],
        reader: NONE,
        why: "SECURITY DEFINER: drop_chunks/DELETE on positions, alarms, heartbeats older than a cut-off ≥ 1 day old",
    },
    Grants {
        object: "refresh_reporting",
        object_type: Function,
        ingest: NONE,
        webhook: NONE,
        housekeeping: &[Execute],
        reader: NONE,
        why: "SECURITY DEFINER: REFRESH MATERIALIZED VIEW CONCURRENTLY (needs ownership) and log to refresh_log",
    },
];

/// A column-level privilege: what an `INSERT … ON CONFLICT (cols)` needs
/// without opening the whole table. PostgreSQL requires SELECT on the
/// conflict-target columns (and on columns read by a `DO UPDATE … WHERE`).
#[derive(Clone, Copy, Debug)]
pub struct ColumnGrants {
    pub table: &'static str,
    pub role: WorkloadRole,
    pub privilege: Privilege,
    pub columns: &'static [&'static str],
}

/// Column privileges on top of [`MATRIX`]. The webhook faces the internet:
/// it may read only the natural-key columns its idempotent inserts check,
/// never coordinates, payloads or the fleet list.
pub const COLUMN_MATRIX: &[ColumnGrants] = &[
    ColumnGrants {
        table: "positions",
        role: WorkloadRole::Webhook,
        privilege: Select,
        columns: &["imei", "gps_time"],
    },
    ColumnGrants {
        table: "alarms",
        role: WorkloadRole::Webhook,
        privilege: Select,
        columns: &["imei", "alarm_type", "alarm_time"],
    },
    ColumnGrants {
        table: "heartbeats",
        role: WorkloadRole::Webhook,
        privilege: Select,
        columns: &["imei", "gate_time"],
    },
    ColumnGrants {
        table: "push_events",
        role: WorkloadRole::Webhook,
        privilege: Select,
        columns: &["kind", "payload_hash"],
    },
];

/// Objects in the pipeline schema that only the operator's login uses.
pub const OPERATOR_ONLY: &[&str] = &["_sqlx_migrations", "fleetops_claim", "fleetops_role_state"];

/// The privileges `role` needs on `object` of `object_type`.
pub fn needed(role: WorkloadRole, object_type: ObjectType, object: &str) -> BTreeSet<Privilege> {
    MATRIX
        .iter()
        .filter(|g| g.object_type == object_type && g.object == object)
        .flat_map(|g| g.for_role(role).iter().copied())
        .collect()
}

/// `view` / `materialized view` by the naming convention (`v_`, `mv_`).
fn kind_label(g: &Grants) -> &'static str {
    match g.object_type {
        ObjectType::Relation if g.object.starts_with("v_") => "view",
        ObjectType::Relation if g.object.starts_with("mv_") => "materialized view",
        t => t.as_str(),
    }
}

/// Column privileges `role` needs on `table`: column → privileges.
pub fn needed_columns(role: WorkloadRole, table: &str) -> BTreeMap<String, BTreeSet<Privilege>> {
    let mut out: BTreeMap<String, BTreeSet<Privilege>> = BTreeMap::new();
    for g in COLUMN_MATRIX
        .iter()
        .filter(|g| g.role == role && g.table == table)
    {
        for c in g.columns {
            out.entry((*c).to_owned()).or_default().insert(g.privilege);
        }
    }
    out
}

/// The matrix as a markdown table (the body of `docs/privileges.md`).
pub fn render_markdown() -> String {
    let cell = |g: &Grants, role: WorkloadRole| {
        let mut parts: Vec<String> = g
            .for_role(role)
            .iter()
            .map(|p| p.keyword().to_owned())
            .collect();
        if g.object_type == ObjectType::Relation {
            for c in COLUMN_MATRIX
                .iter()
                .filter(|c| c.role == role && c.table == g.object)
            {
                parts.push(format!(
                    "{} ({})",
                    c.privilege.keyword(),
                    c.columns.join(", ")
                ));
            }
        }
        if parts.is_empty() {
            "–".to_owned()
        } else {
            parts.join(", ")
        }
    };
    let mut out = String::from(
        "| object | kind | `_ingest` | `_webhook` | `_housekeeping` | `_reader` | why |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for g in MATRIX {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} | {} |\n",
            g.object,
            kind_label(g),
            cell(g, WorkloadRole::Ingest),
            cell(g, WorkloadRole::Webhook),
            cell(g, WorkloadRole::Housekeeping),
            cell(g, WorkloadRole::Reader),
            g.why
        ));
    }
    for o in OPERATOR_ONLY {
        out.push_str(&format!(
            "| `{o}` | table | – | – | – | – | operator bookkeeping |\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_rows_are_unique() {
        let mut seen = BTreeSet::new();
        for g in MATRIX {
            assert!(seen.insert((g.object_type, g.object)), "{} twice", g.object);
        }
    }

    #[test]
    fn no_role_may_create_and_the_webhook_never_deletes_or_reads_devices() {
        for g in MATRIX {
            for r in WorkloadRole::ALL {
                assert!(
                    !g.for_role(r).contains(&Privilege::Create),
                    "{r} CREATE on {}",
                    g.object
                );
                assert!(!g.for_role(r).contains(&Privilege::Truncate));
            }
            assert!(
                !g.webhook.contains(&Delete),
                "webhook DELETE on {}",
                g.object
            );
            assert!(
                g.reader.iter().all(|p| *p == Select),
                "reader beyond SELECT on {}",
                g.object
            );
        }
        assert!(needed(WorkloadRole::Webhook, Relation, "devices").is_empty());
        assert!(needed(WorkloadRole::Reader, Relation, "api_token").is_empty());
        assert!(needed(WorkloadRole::Webhook, Relation, "api_token").is_empty());
    }

    #[test]
    fn column_grants_name_matrix_tables_and_only_key_columns() {
        for c in COLUMN_MATRIX {
            assert!(
                MATRIX
                    .iter()
                    .any(|g| g.object == c.table && g.object_type == Relation)
            );
            assert!(!["devices", "api_token", "geocode_cache"].contains(&c.table));
            assert!(
                !c.columns
                    .iter()
                    .any(|c| ["lat", "lng", "payload"].contains(c))
            );
        }
        assert_eq!(
            needed_columns(WorkloadRole::Webhook, "positions")
                .keys()
                .collect::<Vec<_>>(),
            ["gps_time", "imei"]
        );
        assert!(needed_columns(WorkloadRole::Reader, "positions").is_empty());
    }

    #[test]
    fn privilege_keywords_round_trip() {
        for p in [
            Privilege::Select,
            Privilege::Insert,
            Privilege::Update,
            Privilege::Delete,
            Privilege::Truncate,
            Privilege::References,
            Privilege::Trigger,
            Privilege::Maintain,
            Privilege::Usage,
            Privilege::Create,
            Privilege::Connect,
            Privilege::Temporary,
            Privilege::Execute,
        ] {
            assert_eq!(Privilege::parse(p.keyword()), Some(p));
        }
        assert_eq!(Privilege::parse("DROP ROLE"), None);
    }

    /// docs/privileges.md carries the rendered matrix verbatim.
    #[test]
    fn privileges_doc_is_in_sync() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/privileges.md");
        let doc = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            doc.contains(&render_markdown()),
            "docs/privileges.md is out of date; paste this table into it:\n{}",
            render_markdown()
        );
    }
}
