//! Dereference: read what the spec points at before acting on it.
//!
//! A Secret the pipeline needs must exist and hold its keys; when it does not,
//! the reconcile stops with an error naming the Secret, the key and the spec
//! field (never a value), and the Secret watch wakes the pipeline when it
//! appears.

use crate::crd::FleetPipeline;
use crate::database::AdminLogin;
use crate::desired::SecretRequirement;
use crate::error::{Error, Result};
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use std::collections::BTreeMap;

/// Check every required Secret and key; returns them by name.
pub async fn check_secrets(
    client: &Client,
    namespace: &str,
    required: &[SecretRequirement],
) -> Result<BTreeMap<String, Secret>> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut found = BTreeMap::new();
    for req in required {
        let secret = match found.get(&req.name) {
            Some(s) => Some(Secret::clone(s)),
            None => api.get_opt(&req.name).await?,
        };
        let missing_key = match &secret {
            None => {
                return Err(Error::SecretMissing {
                    field: req.field.clone(),
                    secret: req.name.clone(),
                    key: None,
                });
            }
            Some(s) => req.keys.iter().find(|k| !has_key(s, k)),
        };
        if let Some(key) = missing_key {
            return Err(Error::SecretMissing {
                field: req.field.clone(),
                secret: req.name.clone(),
                key: Some(key.clone()),
            });
        }
        if let Some(s) = secret {
            found.insert(req.name.clone(), s);
        }
    }
    Ok(found)
}

fn value(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(key).cloned())
        })
}

/// The admin login from the (already checked) admin Secret.
pub fn admin_login(secrets: &BTreeMap<String, Secret>, name: &str) -> Option<AdminLogin> {
    let s = secrets.get(name)?;
    Some(AdminLogin {
        username: value(s, "username")?,
        password: crate::db::SecretString::new(value(s, "password")?),
    })
}

fn has_key(secret: &Secret, key: &str) -> bool {
    secret
        .data
        .as_ref()
        .is_some_and(|d| d.get(key).is_some_and(|v| !v.0.is_empty()))
        || secret
            .string_data
            .as_ref()
            .is_some_and(|d| d.get(key).is_some_and(|v| !v.is_empty()))
}

/// Does the pipeline reference the Secret `name` (in its own namespace)?
pub fn references_secret(fp: &FleetPipeline, name: &str) -> bool {
    let spec = &fp.spec;
    spec.database.admin_secret_ref.name == name
        || spec
            .targets
            .iter()
            .any(|t| t.credentials_secret_ref.name == name)
        || spec
            .webhook
            .as_ref()
            .and_then(|w| w.token_secret_ref.as_ref())
            .is_some_and(|r| r.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::tests::example;
    use k8s_openapi::ByteString;

    #[test]
    fn knows_every_reference() {
        let fp = example();
        for name in ["tracksolid-hk", "fleet-db-admin", "jimi-push"] {
            assert!(references_secret(&fp, name), "{name}");
        }
        assert!(!references_secret(&fp, "unrelated"));
    }

    #[test]
    fn empty_values_count_as_missing() {
        let with = |v: &[u8]| Secret {
            data: Some([("token".to_owned(), ByteString(v.to_vec()))].into()),
            ..Default::default()
        };
        assert!(!has_key(&with(b""), "token"));
        assert!(has_key(&with(b"x"), "token"));
        assert!(!has_key(&Secret::default(), "token"));
    }
}
