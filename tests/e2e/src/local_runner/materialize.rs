//! A pod's container made runnable as a local process: every ConfigMap,
//! Secret, projected and emptyDir volume it mounts is written into a
//! per-pod directory (with `items`, modes and `subPath`), and every absolute
//! mount path is rewritten to that directory — in the command line, in env
//! values, and inside the files that came from ConfigMaps. Listen addresses
//! on a declared container port (`0.0.0.0:8080`) become loopback ports.
//!
//! Pure apart from the files it writes: the caller fetches the ConfigMaps
//! and Secrets ([`Refs`]) and passes them in ([`Objects`]).

use k8s_openapi::api::core::v1::{ConfigMap, Container, KeyToPath, PodSpec, Secret, Volume};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// Mode of projected files when the volume names none (Kubernetes' default).
const DEFAULT_FILE_MODE: i32 = 0o644;

#[derive(Debug, thiserror::Error)]
pub enum MaterializeError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "container {container}: volumeMount {mount} names volume {volume}, which the pod does not have"
    )]
    NoVolume {
        container: String,
        mount: String,
        volume: String,
    },
    #[error("volume {volume}: {kind} {name} does not exist (and is not optional)")]
    MissingObject {
        volume: String,
        kind: &'static str,
        name: String,
    },
    #[error("{kind} {name} has no key {key:?} (and it is not optional)")]
    MissingKey {
        kind: &'static str,
        name: String,
        key: String,
    },
    #[error("volume {volume}: item path {path:?} must be relative, without '..'")]
    BadPath { volume: String, path: String },
    #[error("volume {volume}: {what} volumes are not supported by the local runner")]
    Unsupported { volume: String, what: &'static str },
    #[error("env {name}: {what} is not supported by the local runner")]
    EnvUnsupported { name: String, what: String },
    #[error("container {0} has no command (the local runner cannot know the image's entrypoint)")]
    NoCommand(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> MaterializeError + '_ {
    move |source| MaterializeError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Names of the ConfigMaps and Secrets a container needs (volumes it mounts,
/// env and envFrom).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Refs {
    pub config_maps: BTreeSet<String>,
    pub secrets: BTreeSet<String>,
}

impl Refs {
    pub fn of(pod: &PodSpec, container: &Container) -> Refs {
        let mut refs = Refs::default();
        let mounted: BTreeSet<&str> = container
            .volume_mounts
            .iter()
            .flatten()
            .map(|m| m.name.as_str())
            .collect();
        for v in pod.volumes.iter().flatten() {
            if !mounted.contains(v.name.as_str()) {
                continue;
            }
            if let Some(cm) = &v.config_map {
                refs.config_maps.insert(cm.name.clone());
            }
            if let Some(name) = v.secret.as_ref().and_then(|s| s.secret_name.clone()) {
                refs.secrets.insert(name);
            }
            for p in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
                if let Some(cm) = &p.config_map {
                    refs.config_maps.insert(cm.name.clone());
                }
                if let Some(s) = &p.secret {
                    refs.secrets.insert(s.name.clone());
                }
            }
        }
        for e in container.env_from.iter().flatten() {
            if let Some(cm) = &e.config_map_ref {
                refs.config_maps.insert(cm.name.clone());
            }
            if let Some(s) = &e.secret_ref {
                refs.secrets.insert(s.name.clone());
            }
        }
        for e in container.env.iter().flatten() {
            let Some(from) = &e.value_from else { continue };
            if let Some(cm) = &from.config_map_key_ref {
                refs.config_maps.insert(cm.name.clone());
            }
            if let Some(s) = &from.secret_key_ref {
                refs.secrets.insert(s.name.clone());
            }
        }
        refs
    }
}

/// The fetched objects; a name missing here does not exist.
#[derive(Clone, Debug, Default)]
pub struct Objects {
    pub config_maps: BTreeMap<String, ConfigMap>,
    pub secrets: BTreeMap<String, Secret>,
}

/// What the pod would know about itself (for `fieldRef` env).
#[derive(Clone, Debug, Default)]
pub struct PodIdentity {
    pub name: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// A mount as it is on this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalMount {
    pub volume: String,
    pub container_path: String,
    pub local_path: PathBuf,
}

/// The container, ready to start as a local process.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub pod_dir: PathBuf,
    pub mounts: Vec<LocalMount>,
    /// Command and args, expanded and rewritten; `[0]` is still the
    /// container's program name (the caller maps it to a local binary).
    pub command: Vec<String>,
    /// The container's env (envFrom, then env), expanded and rewritten.
    pub env: Vec<(String, String)>,
    pub working_dir: Option<PathBuf>,
    /// Container listen addresses rewritten to loopback: (container port, local port).
    pub ports: Vec<(i32, u16)>,
}

impl Prepared {
    /// Is something mounted at `container_path` (e.g. the database login)?
    pub fn mounts_at(&self, container_path: &str) -> bool {
        let want = container_path.trim_end_matches('/');
        self.mounts
            .iter()
            .any(|m| m.container_path.trim_end_matches('/') == want)
    }
}

/// Write the container's volumes under `pod_dir` and rewrite its command,
/// env and ConfigMap files to the local paths. `ports` maps container ports
/// to local ports for listen-address rewriting.
pub fn prepare(
    pod: &PodSpec,
    container: &Container,
    objects: &Objects,
    identity: &PodIdentity,
    ports: &BTreeMap<i32, u16>,
    pod_dir: &Path,
) -> Result<Prepared, MaterializeError> {
    create_private_dir(pod_dir)?;
    let volumes_dir = pod_dir.join("volumes");
    create_private_dir(&volumes_dir)?;

    let mut written: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    let mut mounts = Vec::new();
    for m in container.volume_mounts.iter().flatten() {
        let volume = pod
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == m.name)
            .ok_or_else(|| MaterializeError::NoVolume {
                container: container.name.clone(),
                mount: m.mount_path.clone(),
                volume: m.name.clone(),
            })?;
        let dir = volumes_dir.join(&volume.name);
        if !written.contains_key(&volume.name) {
            let texts = write_volume(volume, objects, &dir)?;
            written.insert(volume.name.clone(), texts);
        }
        let local_path = match m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            Some(sub) => dir.join(safe_relative(&volume.name, sub)?),
            None => dir,
        };
        mounts.push(LocalMount {
            volume: volume.name.clone(),
            container_path: m.mount_path.clone(),
            local_path,
        });
    }
    let rewriter = PathRewriter::new(&mounts);

    // ConfigMap text files may name other mounts (config.json names the
    // credentials directories): rewrite them too.
    for path in written.values().flatten() {
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        let new = rewriter.rewrite(&text);
        if new != text {
            let mode = std::fs::metadata(path).map_err(io(path))?.permissions();
            // The file may be read-only (its volume's mode): write through a
            // writable mode, then restore.
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(io(path))?;
            std::fs::write(path, new).map_err(io(path))?;
            std::fs::set_permissions(path, mode).map_err(io(path))?;
        }
    }

    let mut used_ports = BTreeSet::new();
    let mut fix = |s: &str| -> String {
        let s = rewriter.rewrite(s);
        match rewrite_listen(&s, ports) {
            Some((new, port)) => {
                used_ports.insert(port);
                new
            }
            None => s,
        }
    };

    // Expand with the values as the pod would see them, then rewrite each
    // string once (a local path must not be rewritten again: the work
    // directory may well be under a mount path such as /tmp).
    let raw_env = container_env(container, objects, identity)?;
    let lookup: BTreeMap<&str, &str> = raw_env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let command: Vec<String> = container
        .command
        .iter()
        .flatten()
        .chain(container.args.iter().flatten())
        .map(|a| fix(&expand(a, &lookup)))
        .collect();
    let env: Vec<(String, String)> = raw_env.iter().map(|(k, v)| (k.clone(), fix(v))).collect();
    if container.command.as_ref().is_none_or(|c| c.is_empty()) {
        return Err(MaterializeError::NoCommand(container.name.clone()));
    }
    let working_dir = container
        .working_dir
        .as_deref()
        .map(|w| PathBuf::from(rewriter.rewrite(w)));
    Ok(Prepared {
        pod_dir: pod_dir.to_owned(),
        mounts,
        command,
        env,
        working_dir,
        ports: used_ports
            .into_iter()
            .filter_map(|p| ports.get(&p).map(|l| (p, *l)))
            .collect(),
    })
}

fn create_private_dir(dir: &Path) -> Result<(), MaterializeError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(dir))
}

/// `path` as a relative path without `..` (Kubernetes validates the same).
fn safe_relative(volume: &str, path: &str) -> Result<PathBuf, MaterializeError> {
    let p = Path::new(path);
    let ok = !path.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
    if ok {
        Ok(p.to_owned())
    } else {
        Err(MaterializeError::BadPath {
            volume: volume.to_owned(),
            path: path.to_owned(),
        })
    }
}

/// One key of a ConfigMap or Secret; `text`: from a ConfigMap's `data` (its
/// paths are rewritten).
struct Entry {
    bytes: Vec<u8>,
    text: bool,
}

struct Source<'a> {
    kind: &'static str,
    name: &'a str,
    /// `None`: the object does not exist.
    entries: Option<BTreeMap<String, Entry>>,
    items: Option<&'a [KeyToPath]>,
    optional: bool,
}

fn config_map_source<'a>(
    objects: &Objects,
    name: &'a str,
    items: Option<&'a [KeyToPath]>,
    optional: Option<bool>,
) -> Source<'a> {
    let entries = objects.config_maps.get(name).map(|cm| {
        let mut e: BTreeMap<String, Entry> = BTreeMap::new();
        for (k, v) in cm.data.iter().flatten() {
            e.insert(
                k.clone(),
                Entry {
                    bytes: v.clone().into_bytes(),
                    text: true,
                },
            );
        }
        for (k, v) in cm.binary_data.iter().flatten() {
            e.insert(
                k.clone(),
                Entry {
                    bytes: v.0.clone(),
                    text: false,
                },
            );
        }
        e
    });
    Source {
        kind: "ConfigMap",
        name,
        entries,
        items,
        optional: optional.unwrap_or(false),
    }
}

fn secret_source<'a>(
    objects: &Objects,
    name: &'a str,
    items: Option<&'a [KeyToPath]>,
    optional: Option<bool>,
) -> Source<'a> {
    let entries = objects.secrets.get(name).map(|s| {
        s.data
            .iter()
            .flatten()
            .map(|(k, v)| {
                (
                    k.clone(),
                    Entry {
                        bytes: v.0.clone(),
                        text: false,
                    },
                )
            })
            .collect()
    });
    Source {
        kind: "Secret",
        name,
        entries,
        items,
        optional: optional.unwrap_or(false),
    }
}

/// Write one volume into `dir`; returns the files whose paths may be rewritten.
fn write_volume(
    volume: &Volume,
    objects: &Objects,
    dir: &Path,
) -> Result<Vec<PathBuf>, MaterializeError> {
    create_private_dir(dir)?;
    let name = volume.name.as_str();
    let mut texts = Vec::new();
    if let Some(cm) = &volume.config_map {
        let source = config_map_source(objects, &cm.name, cm.items.as_deref(), cm.optional);
        project(name, &source, cm.default_mode, dir, &mut texts)?;
    } else if let Some(s) = &volume.secret {
        let secret_name = s.secret_name.as_deref().unwrap_or_default();
        let source = secret_source(objects, secret_name, s.items.as_deref(), s.optional);
        project(name, &source, s.default_mode, dir, &mut texts)?;
    } else if let Some(p) = &volume.projected {
        for src in p.sources.iter().flatten() {
            if let Some(cm) = &src.config_map {
                let source = config_map_source(objects, &cm.name, cm.items.as_deref(), cm.optional);
                project(name, &source, p.default_mode, dir, &mut texts)?;
            } else if let Some(s) = &src.secret {
                let source = secret_source(objects, &s.name, s.items.as_deref(), s.optional);
                project(name, &source, p.default_mode, dir, &mut texts)?;
            } else {
                return Err(MaterializeError::Unsupported {
                    volume: name.to_owned(),
                    what: "projected downwardAPI/serviceAccountToken/clusterTrustBundle",
                });
            }
        }
    } else if volume.empty_dir.is_some() {
        // The directory itself is the volume.
    } else {
        return Err(MaterializeError::Unsupported {
            volume: name.to_owned(),
            what: "this kind of",
        });
    }
    Ok(texts)
}

fn project(
    volume: &str,
    source: &Source<'_>,
    default_mode: Option<i32>,
    dir: &Path,
    texts: &mut Vec<PathBuf>,
) -> Result<(), MaterializeError> {
    let Some(entries) = &source.entries else {
        return if source.optional {
            Ok(())
        } else {
            Err(MaterializeError::MissingObject {
                volume: volume.to_owned(),
                kind: source.kind,
                name: source.name.to_owned(),
            })
        };
    };
    let default_mode = default_mode.unwrap_or(DEFAULT_FILE_MODE);
    // (key, file path, mode)
    let files: Vec<(&str, &str, i32)> = match source.items {
        Some(items) => items
            .iter()
            .map(|i| {
                (
                    i.key.as_str(),
                    i.path.as_str(),
                    i.mode.unwrap_or(default_mode),
                )
            })
            .collect(),
        None => entries
            .keys()
            .map(|k| (k.as_str(), k.as_str(), default_mode))
            .collect(),
    };
    for (key, rel, mode) in files {
        let Some(entry) = entries.get(key) else {
            if source.optional {
                continue;
            }
            return Err(MaterializeError::MissingKey {
                kind: source.kind,
                name: source.name.to_owned(),
                key: key.to_owned(),
            });
        };
        let path = dir.join(safe_relative(volume, rel)?);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        if path.exists() {
            // A second source of a projected volume writing the same path:
            // make it writable first (the first one set its mode).
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(io(&path))?;
        }
        std::fs::write(&path, &entry.bytes).map_err(io(&path))?;
        // Kubernetes masks modes to 0777.
        let mode = (mode & 0o777) as u32;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(io(&path))?;
        if entry.text {
            texts.push(path);
        }
    }
    Ok(())
}

/// The container's environment: envFrom first, then env (which wins), with
/// `$(VAR)` references to earlier variables expanded, as the kubelet does.
fn container_env(
    container: &Container,
    objects: &Objects,
    identity: &PodIdentity,
) -> Result<Vec<(String, String)>, MaterializeError> {
    let mut env: Vec<(String, String)> = Vec::new();
    let set = |env: &mut Vec<(String, String)>, k: String, v: String| {
        env.retain(|(name, _)| *name != k);
        env.push((k, v));
    };
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            match objects.config_maps.get(&r.name) {
                Some(cm) => {
                    for (k, v) in cm.data.iter().flatten() {
                        set(&mut env, format!("{prefix}{k}"), v.clone());
                    }
                }
                None if r.optional == Some(true) => {}
                None => {
                    return Err(MaterializeError::MissingObject {
                        volume: "envFrom".to_owned(),
                        kind: "ConfigMap",
                        name: r.name.clone(),
                    });
                }
            }
        }
        if let Some(r) = &from.secret_ref {
            match objects.secrets.get(&r.name) {
                Some(s) => {
                    for (k, v) in s.data.iter().flatten() {
                        set(
                            &mut env,
                            format!("{prefix}{k}"),
                            String::from_utf8_lossy(&v.0).into_owned(),
                        );
                    }
                }
                None if r.optional == Some(true) => {}
                None => {
                    return Err(MaterializeError::MissingObject {
                        volume: "envFrom".to_owned(),
                        kind: "Secret",
                        name: r.name.clone(),
                    });
                }
            }
        }
    }
    for e in container.env.iter().flatten() {
        let value = match (&e.value, &e.value_from) {
            (Some(v), _) => {
                let lookup: BTreeMap<&str, &str> =
                    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                Some(expand(v, &lookup))
            }
            (None, Some(from)) => env_from_source(&e.name, from, objects, identity)?,
            (None, None) => Some(String::new()),
        };
        if let Some(v) = value {
            set(&mut env, e.name.clone(), v);
        }
    }
    Ok(env)
}

fn env_from_source(
    name: &str,
    from: &k8s_openapi::api::core::v1::EnvVarSource,
    objects: &Objects,
    identity: &PodIdentity,
) -> Result<Option<String>, MaterializeError> {
    let missing = |kind: &'static str, obj: &str, key: &str| MaterializeError::MissingKey {
        kind,
        name: obj.to_owned(),
        key: key.to_owned(),
    };
    if let Some(r) = &from.config_map_key_ref {
        let v = objects
            .config_maps
            .get(&r.name)
            .and_then(|cm| cm.data.as_ref()?.get(&r.key).cloned());
        return match v {
            Some(v) => Ok(Some(v)),
            None if r.optional == Some(true) => Ok(None),
            None => Err(missing("ConfigMap", &r.name, &r.key)),
        };
    }
    if let Some(r) = &from.secret_key_ref {
        let v = objects
            .secrets
            .get(&r.name)
            .and_then(|s| s.data.as_ref()?.get(&r.key))
            .map(|b| String::from_utf8_lossy(&b.0).into_owned());
        return match v {
            Some(v) => Ok(Some(v)),
            None if r.optional == Some(true) => Ok(None),
            None => Err(missing("Secret", &r.name, &r.key)),
        };
    }
    if let Some(f) = &from.field_ref {
        let path = f.field_path.as_str();
        let bracket = |prefix: &str| {
            path.strip_prefix(prefix)
                .and_then(|r| r.strip_suffix("']"))
                .map(str::to_owned)
        };
        let v = match path {
            "metadata.name" => identity.name.clone(),
            "metadata.namespace" => identity.namespace.clone(),
            "spec.nodeName" => "localhost".to_owned(),
            "status.podIP" | "status.hostIP" => "127.0.0.1".to_owned(),
            _ => {
                if let Some(k) = bracket("metadata.labels['") {
                    identity.labels.get(&k).cloned().unwrap_or_default()
                } else if let Some(k) = bracket("metadata.annotations['") {
                    identity.annotations.get(&k).cloned().unwrap_or_default()
                } else {
                    return Err(MaterializeError::EnvUnsupported {
                        name: name.to_owned(),
                        what: format!("fieldRef {path}"),
                    });
                }
            }
        };
        return Ok(Some(v));
    }
    Err(MaterializeError::EnvUnsupported {
        name: name.to_owned(),
        what: "resourceFieldRef/fileKeyRef".to_owned(),
    })
}

/// Kubernetes' `$(VAR)` expansion: a defined variable is replaced, an
/// undefined reference is left as written, `$$` is a literal `$`.
pub fn expand(s: &str, vars: &BTreeMap<&str, &str>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            let name = &inner[..end];
            match vars.get(name) {
                Some(v) => out.push_str(v),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Rewrites absolute container paths under a mount to the local directory.
#[derive(Clone, Debug)]
pub struct PathRewriter {
    /// (container path without trailing '/', local path), longest first.
    mounts: Vec<(String, String)>,
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

impl PathRewriter {
    pub fn new(mounts: &[LocalMount]) -> Self {
        let mut m: Vec<(String, String)> = mounts
            .iter()
            .map(|m| {
                (
                    m.container_path.trim_end_matches('/').to_owned(),
                    m.local_path.display().to_string(),
                )
            })
            .filter(|(c, _)| c.starts_with('/') && c.len() > 1)
            .collect();
        m.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        PathRewriter { mounts: m }
    }

    /// Replace every mount path that stands as a path of its own (not inside
    /// a longer name: `/tmp` in `/var/tmp` or `/tmpfiles` is left alone).
    pub fn rewrite(&self, s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut i = 0;
        let mut prev: Option<char> = None;
        'outer: while i < s.len() {
            let rest = &s[i..];
            let starts_path = prev.is_none_or(|p| !is_name_char(p) && p != '/');
            if starts_path && rest.starts_with('/') {
                for (container, local) in &self.mounts {
                    if let Some(after) = rest.strip_prefix(container.as_str())
                        && after.chars().next().is_none_or(|c| !is_name_char(c))
                    {
                        out.push_str(local);
                        i += container.len();
                        prev = container.chars().last();
                        continue 'outer;
                    }
                }
            }
            let Some(c) = rest.chars().next() else { break };
            out.push(c);
            i += c.len_utf8();
            prev = Some(c);
        }
        out
    }
}

/// `0.0.0.0:8080`, `[::]:8080`, `:8080` (optionally after `--flag=`) on a
/// mapped container port becomes `127.0.0.1:<local port>`; returns the new
/// text and the container port.
pub fn rewrite_listen(s: &str, ports: &BTreeMap<i32, u16>) -> Option<(String, i32)> {
    let (flag, addr) = match s.rsplit_once('=') {
        Some((f, a)) => (format!("{f}="), a),
        None => (String::new(), s),
    };
    let port = ["0.0.0.0:", "[::]:", ":"]
        .iter()
        .find_map(|p| addr.strip_prefix(p))?;
    if port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let container_port: i32 = port.parse().ok()?;
    let local = ports.get(&container_port)?;
    Some((format!("{flag}127.0.0.1:{local}"), container_port))
}
