//! Apply: server-side apply with one field manager, skipped when the live
//! object already matches, so a steady-state reconcile writes nothing.
//!
//! Two checks decide whether an object needs a write:
//! - *drift*: every field we render must be present with the same value in the
//!   live object (fields the apiserver defaulted are ignored);
//! - *removal*: the live object's [`ANNOTATION_DESIRED_HASH`] must equal the
//!   hash of what we render now, so a field we stopped setting is released by
//!   the next apply even though the subset check cannot see it.

use crate::resources::meta::{ANNOTATION_DESIRED_HASH, FIELD_MANAGER};
use k8s_openapi::NamespaceResourceScope;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt::Debug;

/// FNV-1a over the canonical JSON text (serde_json maps are sorted by key).
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Record the hash of `obj` (without any previous stamp) in its annotations.
pub fn stamp<K: Resource + Serialize>(obj: &mut K) {
    obj.annotations_mut().remove(ANNOTATION_DESIRED_HASH);
    let text = serde_json::to_string(&*obj).unwrap_or_default();
    let hash = format!("{:016x}", fnv1a64(text.as_bytes()));
    obj.annotations_mut()
        .insert(ANNOTATION_DESIRED_HASH.to_owned(), hash);
}

/// Is every field of `want` present in `have` with the same value? Arrays
/// must have the same length and match element by element.
pub fn is_subset(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => w
            .iter()
            .all(|(k, wv)| h.get(k).is_some_and(|hv| is_subset(wv, hv))),
        (Value::Array(w), Value::Array(h)) => {
            w.len() == h.len() && w.iter().zip(h).all(|(wv, hv)| is_subset(wv, hv))
        }
        (Value::Number(w), Value::Number(h)) => w.as_f64() == h.as_f64(),
        _ => want == have,
    }
}

/// Does the live object differ from the stamped desired one?
pub fn needs_apply<K: Serialize>(desired: &K, live: Option<&K>) -> bool {
    let Some(live) = live else { return true };
    match (serde_json::to_value(desired), serde_json::to_value(live)) {
        (Ok(want), Ok(have)) => !is_subset(&want, &have),
        _ => true,
    }
}

/// Server-side apply `desired` (stamped here) unless `live` already matches.
/// Returns whether a write was sent.
pub async fn apply<K>(api: &Api<K>, mut desired: K, live: Option<&K>) -> Result<bool, kube::Error>
where
    K: Resource<Scope = NamespaceResourceScope> + Serialize + DeserializeOwned + Clone + Debug,
    K::DynamicType: Default,
{
    stamp(&mut desired);
    if !needs_apply(&desired, live) {
        return Ok(false);
    }
    let name = desired.name_any();
    tracing::debug!(kind = %K::kind(&K::DynamicType::default()), %name, "applying");
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&desired),
    )
    .await?;
    Ok(true)
}

/// What one [`sync`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Writes {
    pub applied: u32,
    pub deleted: u32,
}

/// Make the live objects of one kind match `desired`: list the pipeline's
/// objects by `selector`, apply each desired object that differs, and delete
/// the ones owned by `owner_uid` that are no longer wanted (a job or the
/// webhook turned off). Returns the live objects as listed, and the writes.
pub async fn sync<K>(
    api: &Api<K>,
    desired: Vec<K>,
    selector: &str,
    owner_uid: &str,
) -> Result<(Vec<K>, Writes), kube::Error>
where
    K: Resource<Scope = NamespaceResourceScope> + Serialize + DeserializeOwned + Clone + Debug,
    K::DynamicType: Default,
{
    let live = api
        .list(&ListParams::default().labels(selector))
        .await?
        .items;
    let mut writes = Writes::default();
    let wanted: Vec<String> = desired.iter().map(ResourceExt::name_any).collect();
    for obj in desired {
        let current = live.iter().find(|l| l.name_any() == obj.name_any());
        if apply(api, obj, current).await? {
            writes.applied += 1;
        }
    }
    for orphan in live.iter().filter(|l| {
        !wanted.contains(&l.name_any())
            && l.owner_references()
                .iter()
                .any(|r| r.uid == owner_uid && r.controller == Some(true))
    }) {
        tracing::info!(kind = %K::kind(&K::DynamicType::default()), name = %orphan.name_any(), "deleting an object no longer wanted");
        match api
            .delete(&orphan.name_any(), &DeleteParams::background())
            .await
        {
            Ok(_) => writes.deleted += 1,
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok((live, writes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use serde_json::json;

    #[test]
    fn defaulted_fields_are_ignored() {
        let want = json!({"spec": {"a": 1, "list": [{"name": "x"}]}});
        let have = json!({"spec": {"a": 1, "b": "defaulted", "list": [{"name": "x", "protocol": "TCP"}]}, "status": {}});
        assert!(is_subset(&want, &have));
    }

    #[test]
    fn changed_missing_or_reordered_fields_are_drift() {
        let want = json!({"spec": {"a": 1, "list": ["x", "y"]}});
        assert!(!is_subset(
            &want,
            &json!({"spec": {"a": 2, "list": ["x", "y"]}})
        ));
        assert!(!is_subset(&want, &json!({"spec": {"list": ["x", "y"]}})));
        assert!(!is_subset(
            &want,
            &json!({"spec": {"a": 1, "list": ["y", "x"]}})
        ));
        assert!(!is_subset(
            &want,
            &json!({"spec": {"a": 1, "list": ["x", "y", "z"]}})
        ));
    }

    fn cm(data: &str) -> ConfigMap {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some("c".into());
        cm.data = Some([("k".to_owned(), data.to_owned())].into());
        cm
    }

    #[test]
    fn a_removed_field_changes_the_hash() {
        let mut with = cm("v");
        with.data
            .as_mut()
            .unwrap()
            .insert("extra".into(), "1".into());
        stamp(&mut with);
        let mut without = cm("v");
        stamp(&mut without);
        // `without` is a subset of `with` except for the hash annotation.
        assert!(needs_apply(&without, Some(&with)));
    }

    #[test]
    fn stamping_is_stable_and_matches_itself() {
        let mut a = cm("v");
        stamp(&mut a);
        let mut b = a.clone();
        stamp(&mut b);
        assert_eq!(a, b);
        assert!(!needs_apply(&a, Some(&b)));
        assert!(needs_apply(&a, None));
    }
}
