//! Database logins of the workloads: one owned `kubernetes.io/basic-auth`
//! Secret per role (`<pipeline>-db-ingest`, `-db-webhook`, `-db-housekeeping`,
//! `-db-reader`) holding `username` and a generated `password`. The CronJobs
//! and the webhook mount theirs at `/var/run/secrets/fleet/db`; the reader's
//! is for Grafana. The admin Secret is never copied into any of them.
//!
//! A password is generated once and kept. Rotation: set the annotation
//! `fleetops.dev/rotate-credentials` on the FleetPipeline to a new value
//! (a date, a counter). Each Secret records the value it was last generated
//! for; when they differ a new password is written to the Secret first and
//! then set on the role (a failure in between is retried with the Secret's
//! password, so the new password is never lost). The old one stops working
//! when the role is altered.
//!
//! In a steady state this module only reads: no write unless a Secret is
//! missing, not as expected, or a rotation was asked for.

use crate::db::{SecretString, WorkloadRole, password, role_name, role_prefix};
use crate::desired::DesiredPipeline;
use crate::error::{Error, Result};
use crate::resources::meta;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Api;
use kube::api::{Patch, PatchParams};
use std::collections::BTreeMap;
use tracing::info;

/// Annotation on the FleetPipeline: change its value to rotate every password.
pub const ROTATE_ANNOTATION: &str = "fleetops.dev/rotate-credentials";
/// Annotation on each login Secret: the rotation value it was generated for.
pub const ROTATION_RECORD: &str = "fleetops.dev/rotation";
/// The Secret type the workloads and Grafana expect.
pub const SECRET_TYPE: &str = "kubernetes.io/basic-auth";

/// Name of the login Secret of `role`.
pub fn secret_name(pipeline: &str, role: WorkloadRole) -> String {
    format!("{pipeline}-db-{}", role.suffix())
}

/// The role a CronJob's job logs in as.
pub fn role_for_job(job: fleet_workloads::config::JobKind) -> WorkloadRole {
    match job {
        fleet_workloads::config::JobKind::Housekeeping => WorkloadRole::Housekeeping,
        _ => WorkloadRole::Ingest,
    }
}

/// The PostgreSQL login name of `role` for this pipeline.
pub fn username(desired: &DesiredPipeline, role: WorkloadRole) -> String {
    role_name(&role_prefix(&desired.namespace, &desired.name), role)
}

/// What [`ensure`] found and did.
#[derive(Debug, Default)]
pub struct Logins {
    /// The password each role must have.
    pub passwords: BTreeMap<WorkloadRole, SecretString>,
    /// Secrets written by this call (created, repaired or rotated).
    pub written: Vec<String>,
    /// Roles whose password changed because of a rotation request.
    pub rotated: Vec<WorkloadRole>,
}

/// The Secret as the operator writes it (pure).
pub fn build(
    desired: &DesiredPipeline,
    role: WorkloadRole,
    password: &SecretString,
    rotation: &str,
    owner: &OwnerReference,
) -> Secret {
    let mut metadata = meta::object_meta(
        secret_name(&desired.name, role),
        &desired.namespace,
        meta::labels(&desired.name, "database-login"),
        owner,
    );
    metadata.annotations = Some(BTreeMap::from([(
        ROTATION_RECORD.to_owned(),
        rotation.to_owned(),
    )]));
    Secret {
        metadata,
        type_: Some(SECRET_TYPE.to_owned()),
        data: Some(BTreeMap::from([
            (
                "username".to_owned(),
                ByteString(username(desired, role).into_bytes()),
            ),
            (
                "password".to_owned(),
                ByteString(password.expose().as_bytes().to_vec()),
            ),
        ])),
        ..Default::default()
    }
}

fn value<'a>(secret: &'a Secret, key: &str) -> Option<&'a [u8]> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|v| v.0.as_slice())
        .filter(|v| !v.is_empty())
}

/// What to do with the live Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Use its password.
    Keep(SecretString),
    /// Missing or malformed: write a new password.
    Repair,
    /// A rotation was asked for: write a new password.
    Rotate,
    /// Someone else's Secret with our name: leave it alone.
    Foreign,
}

/// Decide what to do with the live Secret (pure).
pub fn judge(live: Option<&Secret>, uid: &str, expected_user: &str, rotation: &str) -> Verdict {
    let Some(s) = live else {
        return Verdict::Repair;
    };
    if !meta::is_owned_by(&s.metadata, uid) {
        return Verdict::Foreign;
    }
    let password = value(s, "password").and_then(|p| std::str::from_utf8(p).ok());
    let (Some(password), true) = (
        password,
        s.type_.as_deref() == Some(SECRET_TYPE)
            && value(s, "username") == Some(expected_user.as_bytes()),
    ) else {
        return Verdict::Repair;
    };
    let recorded = s
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ROTATION_RECORD))
        .map(String::as_str)
        .unwrap_or("");
    if recorded != rotation {
        Verdict::Rotate
    } else {
        Verdict::Keep(SecretString::new(password))
    }
}

/// Read (and where needed write) the four login Secrets; returns the
/// password each role must have. `rotation` is the pipeline's
/// [`ROTATE_ANNOTATION`] value ("" when unset).
pub async fn ensure(
    client: &kube::Client,
    desired: &DesiredPipeline,
    owner: &OwnerReference,
    rotation: &str,
) -> Result<Logins> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &desired.namespace);
    let mut logins = Logins::default();
    for role in WorkloadRole::ALL {
        let name = secret_name(&desired.name, role);
        let live = api.get_opt(&name).await?;
        let verdict = judge(
            live.as_ref(),
            &owner.uid,
            &username(desired, role),
            rotation,
        );
        let rotating = verdict == Verdict::Rotate;
        let password = match verdict {
            Verdict::Keep(password) => password,
            Verdict::Foreign => return Err(Error::CredentialsConflict { secret: name }),
            Verdict::Repair | Verdict::Rotate => {
                let password = password::generate();
                let secret = build(desired, role, &password, rotation, owner);
                api.patch(
                    &name,
                    &PatchParams::apply(meta::FIELD_MANAGER).force(),
                    &Patch::Apply(&secret),
                )
                .await?;
                info!(secret = %name, rotated = rotating, "database login written");
                logins.written.push(name);
                if rotating {
                    logins.rotated.push(role);
                }
                password
            }
        };
        logins.passwords.insert(role, password);
    }
    Ok(logins)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{resolve, tests::example};

    fn setup() -> (DesiredPipeline, OwnerReference) {
        let fp = example();
        let d = resolve(&fp, "img").unwrap();
        (d, meta::owner_reference(&fp).unwrap())
    }

    #[test]
    fn secrets_are_basic_auth_owned_and_named_per_role() {
        let (d, owner) = setup();
        let s = build(
            &d,
            WorkloadRole::Webhook,
            &SecretString::new("pw"),
            "",
            &owner,
        );
        assert_eq!(s.metadata.name.as_deref(), Some("kenya-fleet-db-webhook"));
        assert_eq!(s.type_.as_deref(), Some(SECRET_TYPE));
        assert!(meta::is_owned_by(&s.metadata, &owner.uid));
        assert_eq!(
            value(&s, "username"),
            Some(username(&d, WorkloadRole::Webhook).as_bytes())
        );
        assert_eq!(value(&s, "password"), Some(&b"pw"[..]));
    }

    #[test]
    fn verdicts() {
        let (d, owner) = setup();
        let user = username(&d, WorkloadRole::Ingest);
        let ours = build(
            &d,
            WorkloadRole::Ingest,
            &SecretString::new("pw"),
            "r1",
            &owner,
        );
        assert_eq!(judge(None, &owner.uid, &user, "r1"), Verdict::Repair);
        assert_eq!(
            judge(Some(&ours), &owner.uid, &user, "r1"),
            Verdict::Keep(SecretString::new("pw"))
        );
        assert_eq!(judge(Some(&ours), &owner.uid, &user, "r2"), Verdict::Rotate);
        assert_eq!(
            judge(Some(&ours), "other-uid", &user, "r1"),
            Verdict::Foreign
        );
        assert_eq!(
            judge(Some(&ours), &owner.uid, "someone", "r1"),
            Verdict::Repair
        );
        let mut emptied = ours.clone();
        emptied.data = Some(BTreeMap::new());
        assert_eq!(
            judge(Some(&emptied), &owner.uid, &user, "r1"),
            Verdict::Repair
        );
    }

    #[test]
    fn housekeeping_has_its_own_login() {
        use fleet_workloads::config::JobKind;
        assert_eq!(
            role_for_job(JobKind::Housekeeping),
            WorkloadRole::Housekeeping
        );
        for j in JobKind::ALL
            .into_iter()
            .filter(|j| *j != JobKind::Housekeeping)
        {
            assert_eq!(role_for_job(j), WorkloadRole::Ingest);
        }
    }
}
