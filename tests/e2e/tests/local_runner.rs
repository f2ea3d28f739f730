//! `fleet-local-runner`, the dev tool that stands in for the kubelet in the
//! local demo: when CronJobs are due (a clock passed in, so no waiting for
//! minute boundaries), how pod volumes are written and paths rewritten
//! (plain files, no apiserver), and one end-to-end run of the real binary
//! against the test control plane: a CronJob with a ConfigMap and a Secret
//! volume, and a Deployment whose listen address moves to loopback.

use anyhow::{Context as _, Result, ensure};
use fleet_e2e::local_runner::materialize::{
    self, MaterializeError, Objects, PathRewriter, PodIdentity, Refs,
};
use fleet_e2e::local_runner::schedule::{
    ConcurrencyPolicy, CronSpec, Decision, History, Schedule, decide,
};
use fleet_e2e::local_runner::{ImageMap, PortMap};
use jiff::Timestamp;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar,
    EnvVarSource, KeyToPath, PodSpec, Secret, SecretKeySelector, SecretVolumeSource, Volume,
    VolumeMount,
};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn ts(s: &str) -> Timestamp {
    s.parse().expect("test timestamp")
}

fn every_minute(policy: ConcurrencyPolicy) -> CronSpec {
    CronSpec {
        schedule: Schedule::parse("* * * * *", Some("UTC")).expect("schedule"),
        suspend: false,
        concurrency: policy,
        starting_deadline_seconds: Some(60),
    }
}

#[test]
fn every_minute_starts_once_per_minute() {
    let spec = every_minute(ConcurrencyPolicy::Forbid);
    let mut h = History {
        since: ts("2026-11-28T12:00:30Z"),
        last_schedule: None,
    };
    assert_eq!(
        decide(&spec, &h, ts("2026-11-28T12:00:59Z"), false),
        Decision::Idle
    );
    let d = decide(&spec, &h, ts("2026-11-28T12:01:00.200Z"), false);
    assert_eq!(
        d,
        Decision::Start {
            scheduled: ts("2026-11-28T12:01:00Z")
        }
    );
    h.last_schedule = d.consumes();
    // Consumed: not again within the minute.
    assert_eq!(
        decide(&spec, &h, ts("2026-11-28T12:01:40Z"), false),
        Decision::Idle
    );
    assert_eq!(
        decide(&spec, &h, ts("2026-11-28T12:02:03Z"), false),
        Decision::Start {
            scheduled: ts("2026-11-28T12:02:00Z")
        }
    );
}

#[test]
fn concurrency_policy_and_suspend() {
    let h = History {
        since: ts("2026-11-28T12:00:30Z"),
        last_schedule: None,
    };
    let now = ts("2026-11-28T12:01:01Z");
    let at = ts("2026-11-28T12:01:00Z");
    assert_eq!(
        decide(&every_minute(ConcurrencyPolicy::Forbid), &h, now, true),
        Decision::Blocked { scheduled: at }
    );
    assert_eq!(
        decide(&every_minute(ConcurrencyPolicy::Replace), &h, now, true),
        Decision::Replace { scheduled: at }
    );
    assert_eq!(
        decide(&every_minute(ConcurrencyPolicy::Allow), &h, now, true),
        Decision::Start { scheduled: at }
    );
    let mut suspended = every_minute(ConcurrencyPolicy::Forbid);
    suspended.suspend = true;
    assert_eq!(decide(&suspended, &h, now, false), Decision::Suspended);
    // Blocked is not consumed: the run ending within the starting deadline
    // still starts it, late...
    let forbid = every_minute(ConcurrencyPolicy::Forbid);
    assert_eq!(
        decide(&forbid, &h, ts("2026-11-28T12:01:50Z"), false),
        Decision::Start { scheduled: at }
    );
    // ...and past the deadline only the next time counts.
    let h2 = History {
        since: ts("2026-11-28T12:00:30Z"),
        last_schedule: None,
    };
    let hourly = CronSpec {
        schedule: Schedule::parse("0 * * * *", Some("UTC")).expect("schedule"),
        ..forbid
    };
    assert_eq!(
        decide(&hourly, &h2, ts("2026-11-28T13:01:30Z"), false),
        Decision::Idle,
        "13:00 is more than startingDeadlineSeconds ago"
    );
    assert_eq!(
        decide(&hourly, &h2, ts("2026-11-28T13:00:40Z"), false),
        Decision::Start {
            scheduled: ts("2026-11-28T13:00:00Z")
        }
    );
}

#[test]
fn schedules_run_in_their_time_zone() {
    // 02:30 in Nairobi (UTC+3, no DST) is 23:30 UTC the day before.
    let spec = CronSpec {
        schedule: Schedule::parse("30 2 * * *", Some("Africa/Nairobi")).expect("schedule"),
        suspend: false,
        concurrency: ConcurrencyPolicy::Forbid,
        starting_deadline_seconds: None,
    };
    let h = History {
        since: ts("2026-11-28T00:00:00Z"),
        last_schedule: None,
    };
    assert_eq!(
        decide(&spec, &h, ts("2026-11-28T02:31:00Z"), false),
        Decision::Idle
    );
    assert_eq!(
        decide(&spec, &h, ts("2026-11-28T23:30:05Z"), false),
        Decision::Start {
            scheduled: ts("2026-11-28T23:30:00Z")
        }
    );
    assert_eq!(
        spec.schedule.next_after(ts("2026-11-28T00:00:00Z")),
        Some(ts("2026-11-28T23:30:00Z"))
    );
}

#[test]
fn bad_schedules_and_zones_are_refused() {
    for bad in ["*/5 * * *", "0 0 * * * *", "TZ=UTC * * * * *", "61 * * * *"] {
        assert!(Schedule::parse(bad, None).is_err(), "{bad}");
    }
    let err = Schedule::parse("* * * * *", Some("Mars/Olympus_Mons")).unwrap_err();
    assert!(err.to_string().contains("Mars/Olympus_Mons"), "{err}");
}

fn secret(name: &str, data: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_owned()),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..Default::default()
    }
}

fn config_map(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_owned()),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ),
        ..Default::default()
    }
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        read_only: Some(true),
        ..Default::default()
    }
}

/// Shaped like the operator's ingest pod: config, target credentials with
/// items, the database login, an emptyDir /tmp.
fn pod() -> (PodSpec, Container) {
    let container = Container {
        name: "ingest".to_owned(),
        image: Some("registry.example/fleet-workloads:1".to_owned()),
        command: Some(vec![
            "fleet-ingest".to_owned(),
            "positions".to_owned(),
            "--config=/etc/fleet/config.json".to_owned(),
        ]),
        args: Some(vec![
            "--listen".to_owned(),
            "0.0.0.0:8080".to_owned(),
            "--token=$(TOKEN)".to_owned(),
            "/var/tmp/x".to_owned(),
            "/tmpfiles".to_owned(),
            "$$(TOKEN)".to_owned(),
        ]),
        env: Some(vec![
            EnvVar {
                name: "TOKEN".to_owned(),
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: "push".to_owned(),
                        key: "token".to_owned(),
                        optional: None,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            },
            EnvVar {
                name: "FLEET_DB_CREDENTIALS_DIR".to_owned(),
                value: Some("/var/run/secrets/fleet/db".to_owned()),
                ..Default::default()
            },
        ]),
        ports: Some(vec![ContainerPort {
            container_port: 8080,
            name: Some("http".to_owned()),
            ..Default::default()
        }]),
        volume_mounts: Some(vec![
            mount("config", "/etc/fleet"),
            mount("target-hk", "/var/run/secrets/fleet/targets/hk"),
            mount("db-login", "/var/run/secrets/fleet/db/"),
            VolumeMount {
                name: "tmp".to_owned(),
                mount_path: "/tmp".to_owned(),
                ..Default::default()
            },
        ]),
        ..Default::default()
    };
    let items = |pairs: &[(&str, &str)]| {
        Some(
            pairs
                .iter()
                .map(|(k, p)| KeyToPath {
                    key: (*k).to_owned(),
                    path: (*p).to_owned(),
                    mode: None,
                })
                .collect(),
        )
    };
    let spec = PodSpec {
        containers: vec![container.clone()],
        volumes: Some(vec![
            Volume {
                name: "config".to_owned(),
                config_map: Some(ConfigMapVolumeSource {
                    name: "kenya-config".to_owned(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            Volume {
                name: "target-hk".to_owned(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some("tracksolid-hk".to_owned()),
                    default_mode: Some(0o440),
                    items: items(&[("appKey", "appKey"), ("appSecret", "nested/secret")]),
                    optional: None,
                }),
                ..Default::default()
            },
            Volume {
                name: "db-login".to_owned(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some("kenya-db-ingest".to_owned()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            Volume {
                name: "tmp".to_owned(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Default::default()
            },
            // Not mounted: never needed.
            Volume {
                name: "unused".to_owned(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some("nowhere".to_owned()),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ]),
        ..Default::default()
    };
    (spec, container)
}

fn objects() -> Objects {
    let mut o = Objects::default();
    o.config_maps.insert(
        "kenya-config".to_owned(),
        config_map(
            "kenya-config",
            &[(
                "config.json",
                r#"{"targets":[{"credentialsDir":"/var/run/secrets/fleet/targets/hk"}],"other":"/var/run/secrets/fleet/targetsX","tmp":"/tmp/x"}"#,
            )],
        ),
    );
    o.secrets.insert(
        "tracksolid-hk".to_owned(),
        secret(
            "tracksolid-hk",
            &[("appKey", "K"), ("appSecret", "S"), ("userId", "U")],
        ),
    );
    o.secrets.insert(
        "kenya-db-ingest".to_owned(),
        secret(
            "kenya-db-ingest",
            &[("username", "kenya_ingest"), ("password", "pw")],
        ),
    );
    o.secrets
        .insert("push".to_owned(), secret("push", &[("token", "tok-1")]));
    o
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "fleet-local-runner-test-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

#[test]
fn volumes_are_materialized_and_paths_rewritten() {
    let (spec, container) = pod();
    let refs = Refs::of(&spec, &container);
    assert_eq!(
        refs.secrets.iter().map(String::as_str).collect::<Vec<_>>(),
        ["kenya-db-ingest", "push", "tracksolid-hk"],
        "only what the container mounts or reads"
    );
    let dir = scratch("materialize");
    let ports = BTreeMap::from([(8080, 18081u16)]);
    let p = materialize::prepare(
        &spec,
        &container,
        &objects(),
        &PodIdentity::default(),
        &ports,
        &dir,
    )
    .expect("prepare");
    let vol = |v: &str| dir.join("volumes").join(v);

    // Secret items: only the listed keys, renamed paths, the volume's mode.
    let hk = vol("target-hk");
    assert_eq!(std::fs::read_to_string(hk.join("appKey")).unwrap(), "K");
    assert_eq!(
        std::fs::read_to_string(hk.join("nested/secret")).unwrap(),
        "S"
    );
    assert!(!hk.join("userId").exists(), "not in items");
    assert_eq!(mode(&hk.join("appKey")), 0o440);
    // Without items: every key, default mode 0644; the pod dir is private.
    assert_eq!(
        std::fs::read_to_string(vol("db-login").join("username")).unwrap(),
        "kenya_ingest"
    );
    assert_eq!(mode(&vol("db-login").join("password")), 0o644);
    assert_eq!(mode(&dir), 0o700);
    assert!(vol("tmp").is_dir());
    assert!(!vol("unused").exists());
    assert!(p.mounts_at("/var/run/secrets/fleet/db"));

    // Inside the ConfigMap file: mount paths rewritten, look-alikes not.
    let cfg = std::fs::read_to_string(vol("config").join("config.json")).unwrap();
    let hk_local = hk.display().to_string();
    assert!(
        cfg.contains(&format!("\"credentialsDir\":\"{hk_local}\"")),
        "{cfg}"
    );
    assert!(cfg.contains("\"/var/run/secrets/fleet/targetsX\""), "{cfg}");
    assert!(
        cfg.contains(&format!("\"{}/x\"", vol("tmp").display())),
        "{cfg}"
    );

    // Command line: paths, listen address, $(VAR), $$ escape.
    let c = &p.command;
    assert_eq!(c[0], "fleet-ingest");
    assert_eq!(
        c[2],
        format!("--config={}/config.json", vol("config").display())
    );
    assert_eq!(c[4], "127.0.0.1:18081");
    assert_eq!(c[5], "--token=tok-1");
    assert_eq!(c[6], "/var/tmp/x");
    assert_eq!(c[7], "/tmpfiles");
    assert_eq!(c[8], "$(TOKEN)");
    assert_eq!(p.ports, vec![(8080, 18081)]);
    // Env values too.
    let env: BTreeMap<_, _> = p.env.iter().cloned().collect();
    assert_eq!(
        env["FLEET_DB_CREDENTIALS_DIR"],
        vol("db-login").display().to_string()
    );
    assert_eq!(env["TOKEN"], "tok-1");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_secrets_and_keys_are_named_and_optional_ones_skipped() {
    let (spec, container) = pod();
    let mut o = objects();
    o.secrets.remove("kenya-db-ingest");
    let dir = scratch("missing");
    let err = materialize::prepare(
        &spec,
        &container,
        &o,
        &PodIdentity::default(),
        &BTreeMap::new(),
        &dir,
    )
    .unwrap_err();
    assert!(
        matches!(&err, MaterializeError::MissingObject { name, .. } if name == "kenya-db-ingest"),
        "{err}"
    );

    let mut o = objects();
    o.secrets.insert(
        "tracksolid-hk".to_owned(),
        secret("tracksolid-hk", &[("appKey", "K")]),
    );
    let err = materialize::prepare(
        &spec,
        &container,
        &o,
        &PodIdentity::default(),
        &BTreeMap::new(),
        &dir,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("appSecret") && !err.to_string().contains("\"K\""),
        "names the key, never a value: {err}"
    );

    // optional: a missing Secret is an empty directory.
    let (mut spec, container) = pod();
    for v in spec.volumes.iter_mut().flatten() {
        if let Some(s) = v.secret.as_mut() {
            s.optional = Some(true);
        }
    }
    let mut o = objects();
    o.secrets.remove("kenya-db-ingest");
    let p = materialize::prepare(
        &spec,
        &container,
        &o,
        &PodIdentity::default(),
        &BTreeMap::new(),
        &dir,
    )
    .expect("optional");
    assert!(p.mounts_at("/var/run/secrets/fleet/db"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rewriter_respects_path_boundaries() {
    use fleet_e2e::local_runner::materialize::LocalMount;
    let m = |c: &str, l: &str| LocalMount {
        volume: "v".to_owned(),
        container_path: c.to_owned(),
        local_path: PathBuf::from(l),
    };
    let r = PathRewriter::new(&[m("/etc/fleet", "/L/config"), m("/etc/fleet/sub", "/L/sub")]);
    assert_eq!(r.rewrite("/etc/fleet"), "/L/config");
    assert_eq!(r.rewrite("x=/etc/fleet/a.json"), "x=/L/config/a.json");
    assert_eq!(
        r.rewrite("/etc/fleet/sub/k"),
        "/L/sub/k",
        "longest mount wins"
    );
    assert_eq!(
        r.rewrite("/etc/fleetx /usr/etc/fleet"),
        "/etc/fleetx /usr/etc/fleet"
    );
    assert_eq!(
        r.rewrite("[\"/etc/fleet\",'/etc/fleet/']"),
        "[\"/L/config\",'/L/config/']"
    );
}

#[test]
fn images_map_to_local_directories() {
    let dir = scratch("images");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("fleet-ingest"), "").unwrap();
    let map = ImageMap::parse(&[
        format!("fleet-workloads={}", dir.display()),
        "busybox=host".to_owned(),
    ])
    .unwrap();
    for image in [
        "fleet-workloads:dev",
        "ghcr.io/fleetops/fleet-workloads:0.1.0",
        "localhost:5000/fleet-workloads@sha256:abc",
    ] {
        assert_eq!(
            map.resolve(image, "/usr/local/bin/fleet-ingest").unwrap(),
            dir.join("fleet-ingest"),
            "{image}"
        );
    }
    assert!(map.resolve("fleet-workloads:dev", "fleet-webhook").is_err());
    assert_eq!(
        map.resolve("busybox:1.37", "sh").unwrap(),
        PathBuf::from("sh")
    );
    let err = map.resolve("nginx:1", "nginx").unwrap_err();
    assert!(err.to_string().contains("--image"), "{err}");
    assert!(ImageMap::parse(&["nodir".to_owned()]).is_err());
    assert!(PortMap::parse(&["web/8080=18081".to_owned(), "9090=19090".to_owned()]).is_ok());
    assert!(PortMap::parse(&["8080".to_owned()]).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------
// The real binary against the test control plane.
// ---------------------------------------------------------------------------

const RUNNER: &str = env!("CARGO_BIN_EXE_fleet-local-runner");

struct Runner(std::process::Child);

impl Runner {
    fn stop(&mut self) -> Result<std::process::ExitStatus> {
        if let Ok(pid) = i32::try_from(self.0.id()) {
            // SAFETY: kill(2) on the child we spawned, not yet reaped.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        Ok(self.0.wait()?)
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.stop();
        }
    }
}

async fn wait_file(path: &Path, contains: &str, timeout: Duration) -> Result<String> {
    fleet_e2e::wait_for(
        &format!("{} to hold {contains:?}", path.display()),
        timeout,
        || async {
            Ok(std::fs::read_to_string(path)
                .ok()
                .filter(|t| t.contains(contains)))
        },
    )
    .await
}

#[tokio::test]
async fn runs_a_cronjob_and_a_deployment_as_local_processes() -> Result<()> {
    let env = fleet_e2e::harness()?;
    let ns = format!("e2e-local-runner-{}", std::process::id());
    let work = scratch("e2e");
    std::fs::create_dir_all(&work)?;
    let out = work.join("out");
    std::fs::create_dir_all(&out)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();

    // What the pods should see: a ConfigMap whose file names the Secret's
    // mount path; the CronJob prints the file, then follows that path.
    let manifest = format!(
        r#"
apiVersion: v1
kind: Namespace
metadata: {{name: {ns}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: x, namespace: {ns}}}
data:
  msg: "token at /var/run/secrets/s/token"
  path: /var/run/secrets/s/token
---
apiVersion: v1
kind: Secret
metadata: {{name: s, namespace: {ns}}}
stringData: {{push-token: sekret-1, other: not-mounted}}
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: every-minute
  namespace: {ns}
  labels: {{app.kubernetes.io/managed-by: fleet-operator}}
spec:
  schedule: "* * * * *"
  timeZone: Africa/Nairobi
  concurrencyPolicy: Forbid
  jobTemplate:
    spec:
      backoffLimit: 0
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: c
              image: busybox:1.37
              command: [sh, -c, 'cat /etc/x/msg > "$OUT.tmp"; echo >> "$OUT.tmp"; cat "$(cat /etc/x/path)" >> "$OUT.tmp"; echo " db=$DATABASE_URL" >> "$OUT.tmp"; mv "$OUT.tmp" "$OUT"']
              env: [{{name: OUT, value: "{out}/cron"}}]
              volumeMounts:
                - {{name: cfg, mountPath: /etc/x, readOnly: true}}
                - {{name: sec, mountPath: /var/run/secrets/s, readOnly: true}}
          volumes:
            - name: cfg
              configMap: {{name: x}}
            - name: sec
              secret:
                secretName: s
                defaultMode: 0440
                items: [{{key: push-token, path: token}}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}
  labels: {{app.kubernetes.io/managed-by: fleet-operator}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
        - name: web
          image: busybox:1.37
          command: [sh, -c, 'echo "$0 $(ls /var/run/secrets/fleet/db) dir=$FLEET_DB_CREDENTIALS_DIR" > "$OUT"; exec sleep 600', "0.0.0.0:8080"]
          env: [{{name: OUT, value: "{out}/web"}}]
          ports: [{{name: http, containerPort: 8080}}]
          volumeMounts: [{{name: db, mountPath: /var/run/secrets/fleet/db}}]
      volumes:
        - name: db
          secret: {{secretName: s, items: [{{key: other, path: password}}]}}
"#,
        out = out.display()
    );
    let applied = fleet_e2e::kubectl_stdin(&["apply", "-f", "-"], &manifest)?;
    ensure!(applied.success, "apply: {}", applied.stderr);

    let t0 = std::time::Instant::now();
    let child = std::process::Command::new(RUNNER)
        .args(["--namespace", &ns, "--work-dir"])
        .arg(&work)
        .args(["--image", "busybox=host", "--run-on-start"])
        .args(["--port", &format!("web/8080={port}")])
        .args(["--fallback-database-url", "postgres://fallback.invalid/x"])
        .env("KUBECONFIG", env.kubeconfig()?)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .context("starting fleet-local-runner")?;
    let mut runner = Runner(child);

    let cron = wait_file(&out.join("cron"), "db=", Duration::from_secs(30)).await?;
    // The ConfigMap file's path was rewritten, and followed to the Secret item.
    let sec_dir = "/volumes/sec";
    ensure!(
        cron.starts_with("token at /")
            && cron.contains(sec_dir)
            && !cron.contains("/var/run/secrets"),
        "ConfigMap file not rewritten: {cron:?}"
    );
    ensure!(
        cron.contains("sekret-1"),
        "Secret item not materialized: {cron:?}"
    );
    ensure!(
        cron.contains("db=postgres://fallback.invalid/x"),
        "no database volume: the fallback URL is passed: {cron:?}"
    );
    let web = wait_file(&out.join("web"), "password", Duration::from_secs(30)).await?;
    ensure!(
        web.starts_with(&format!("127.0.0.1:{port} ")),
        "listen address not moved to loopback: {web:?}"
    );
    ensure!(
        web.trim_end().ends_with("/volumes/db") && web.contains(&format!("dir={}", work.display())),
        "FLEET_DB_CREDENTIALS_DIR names the local database login: {web:?}"
    );
    let runs = wait_file(
        &work.join("runs.log"),
        "job=every-minute",
        Duration::from_secs(10),
    )
    .await?;
    let elapsed = t0.elapsed();

    let status = runner.stop()?;
    ensure!(status.success(), "runner exit: {status}");
    let runs_after = std::fs::read_to_string(work.join("runs.log"))?;
    ensure!(
        runs.contains("job=every-minute") && runs_after.contains("exit=0"),
        "{runs_after}"
    );
    ensure!(
        runs_after.contains("every-minute pod=") && runs_after.contains("FALLBACK"),
        "the fallback database URL is logged: {runs_after}"
    );
    ensure!(
        runs_after.contains("asks for 2 replicas: running 1 locally"),
        "{runs_after}"
    );
    ensure!(
        runs_after.contains("deployment=web") && runs_after.contains("stopped-by-runner"),
        "the Deployment's process is stopped with the runner: {runs_after}"
    );
    // No Secret files are left behind.
    let left: Vec<_> = std::fs::read_dir(work.join("pods"))?.collect();
    ensure!(left.is_empty(), "pod directories left: {left:?}");
    eprintln!("runner ran both in {elapsed:?}");

    let _ = fleet_e2e::kubectl(&["delete", "namespace", &ns, "--wait=false"]);
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}
