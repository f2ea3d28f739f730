//! `fleet-ingest devices`: the device list of every target
//! (`jimi.user.device.list`), upserted into `devices`; then devices absent
//! from every target are disabled and those that came back re-enabled —
//! but only when every target answered and the union is not empty
//! (FIX-M24), so an API outage or an empty answer never disables the fleet.
//! Each target gets its `ingestion_log` row (rows inserted = devices new to
//! the table).

use super::error::JobError;
use super::outcome::{Tally, finish};
use super::{JobContext, TargetOutcome, client_for, imeis};
use crate::config::TargetConfig;
use crate::store::devices;
use crate::tracksolid::types::Device;
use jiff::Timestamp;
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashSet};
use tracing::{Instrument, info, info_span, warn};

const ENDPOINT: &str = "devices";

/// Rows for the devices table (one per IMEI), and how many list entries
/// were refused (no IMEI).
pub fn rows(list: &[Device]) -> (Vec<Value>, u64) {
    let mut rejected = 0;
    let mut seen = HashSet::new();
    let rows = list
        .iter()
        .filter_map(|d| {
            let imei = d.imei.trim();
            if imei.is_empty() {
                rejected += 1;
                return None;
            }
            if !seen.insert(imei.to_owned()) {
                return None;
            }
            Some(json!({
                "imei": imei, "name": d.device_name, "model": d.mc_type,
                "attributes": attributes(d),
            }))
        })
        .collect();
    (rows, rejected)
}

/// The rest of the list entry, under its wire names, without nulls.
fn attributes(d: &Device) -> Value {
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.to_owned(), v);
        }
    };
    let text = |v: &Option<String>| v.as_ref().map(|s| Value::from(s.as_str()));
    let time = |t: Option<Timestamp>| t.map(|t| Value::from(t.to_string()));
    put("mcTypeUseScope", text(&d.mc_type_use_scope));
    put("sim", text(&d.sim));
    put("expiration", time(d.expiration));
    put("activationTime", time(d.activation_time));
    put("reMark", text(&d.remark));
    put("vehicleName", text(&d.vehicle_name));
    put("vehicleIcon", text(&d.vehicle_icon));
    put("vehicleNumber", text(&d.vehicle_number));
    put("vehicleModels", text(&d.vehicle_models));
    put("carFrame", text(&d.car_frame));
    put("driverName", text(&d.driver_name));
    put("driverPhone", text(&d.driver_phone));
    put("enabledFlag", d.enabled_flag.map(Value::from));
    put("engineNumber", text(&d.engine_number));
    put("deviceGroupId", text(&d.device_group_id));
    put("deviceGroup", text(&d.device_group));
    Value::Object(m)
}

/// Why the enable/disable step was skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Skip {
    /// The pipeline has no targets.
    NoTargets,
    /// These targets did not answer: their devices are unknown.
    Unanswered(Vec<String>),
    /// Every target answered with no devices at all: more likely an API or
    /// account problem than a fleet gone overnight.
    EmptyUnion,
}

/// Whether to disable devices gone from every target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Every target answered: these IMEIs are the fleet.
    Apply(Vec<String>),
    Skip(Skip),
}

/// Decides from each target's answer (`None` when it failed).
pub fn decide<'a, I>(answers: I) -> Decision
where
    I: IntoIterator<Item = (&'a str, Option<&'a [String]>)>,
{
    let mut union = BTreeSet::new();
    let mut unanswered = Vec::new();
    let mut targets = 0;
    for (target, list) in answers {
        targets += 1;
        match list {
            Some(list) => union.extend(list.iter().cloned()),
            None => unanswered.push(target.to_owned()),
        }
    }
    if targets == 0 {
        Decision::Skip(Skip::NoTargets)
    } else if !unanswered.is_empty() {
        Decision::Skip(Skip::Unanswered(unanswered))
    } else if union.is_empty() {
        Decision::Skip(Skip::EmptyUnion)
    } else {
        Decision::Apply(union.into_iter().collect())
    }
}

/// One target's answer.
struct Fetched<'a> {
    target: &'a TargetConfig,
    started: Timestamp,
    devices: Result<Vec<Device>, JobError>,
}

async fn fetch<'a>(ctx: &JobContext, target: &'a TargetConfig) -> Fetched<'a> {
    let started = Timestamp::now();
    let devices = async {
        let client = client_for(target, &ctx.pool).map_err(JobError::Setup)?;
        Ok(client.device_list().await?)
    }
    .await;
    Fetched {
        target,
        started,
        devices,
    }
}

async fn store(ctx: &JobContext, target: &str, list: &[Device]) -> Result<Tally, JobError> {
    let (rows, rejected) = rows(list);
    let mut tx = ctx.pool.begin().await?;
    let inserted = devices::upsert(&mut tx, target, rows).await?;
    tx.commit().await?;
    Ok(Tally { inserted, rejected })
}

async fn apply(ctx: &JobContext, present: &[String]) -> Result<devices::Membership, JobError> {
    let mut tx = ctx.pool.begin().await?;
    let changed = devices::apply_membership(&mut tx, present).await?;
    tx.commit().await?;
    Ok(changed)
}

/// Run the job: fetch every target first (no database connection held),
/// then store each target's list, then the fleet-wide step.
pub async fn run(ctx: &JobContext) -> Vec<TargetOutcome> {
    let mut fetched = Vec::new();
    for target in &ctx.config.targets {
        let span = info_span!("devices", target = %target.name);
        fetched.push(fetch(ctx, target).instrument(span).await);
    }

    let mut results = Vec::new();
    for f in &fetched {
        let stored = match &f.devices {
            Ok(list) => {
                let span = info_span!("devices", target = %f.target.name);
                store(ctx, &f.target.name, list).instrument(span).await
            }
            Err(_) => Ok(Tally::default()),
        };
        results.push(stored);
    }

    let answers: Vec<(String, Option<Vec<String>>)> = fetched
        .iter()
        .map(|f| {
            let list = f
                .devices
                .as_ref()
                .ok()
                .map(|l| imeis::clean(l.iter().map(|d| d.imei.as_str())));
            (f.target.name.clone(), list)
        })
        .collect();
    let decision = decide(answers.iter().map(|(t, l)| (t.as_str(), l.as_deref())));
    let fleet_error = match decision {
        Decision::Apply(present) => match apply(ctx, &present).await {
            Ok(changed) => {
                info!(
                    devices = present.len(),
                    disabled = changed.disabled,
                    enabled = changed.enabled,
                    "fleet membership applied"
                );
                None
            }
            Err(e) => Some(e.to_string()),
        },
        Decision::Skip(Skip::Unanswered(targets)) => {
            warn!(
                ?targets,
                "not every target answered: no device disabled or re-enabled"
            );
            None
        }
        Decision::Skip(Skip::EmptyUnion) => {
            warn!("every target answered with no devices: no device disabled");
            None
        }
        Decision::Skip(Skip::NoTargets) => None,
    };

    let mut out = Vec::new();
    for (f, stored) in fetched.into_iter().zip(results) {
        let (tally, error) = match (f.devices, stored) {
            (Err(e), _) | (Ok(_), Err(e)) => (Tally::default(), Some(e)),
            (Ok(_), Ok(tally)) => (tally, None),
        };
        // A failed fleet-wide step fails the run of every target.
        let error = error.or_else(|| {
            fleet_error
                .as_ref()
                .map(|e| JobError::Membership(e.clone()))
        });
        let span = info_span!("devices", target = %f.target.name);
        out.push(
            finish(ctx, ENDPOINT, &f.target.name, f.started, tally, error)
                .instrument(span)
                .await,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(imeis: &[&str]) -> Vec<String> {
        imeis.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn applies_only_when_every_target_answered_with_devices() {
        let hk = list(&["1", "2"]);
        let eu = list(&["2", "3"]);
        assert_eq!(
            decide([("hk", Some(hk.as_slice())), ("eu", Some(eu.as_slice()))]),
            Decision::Apply(list(&["1", "2", "3"]))
        );
        assert_eq!(
            decide([("hk", Some(hk.as_slice())), ("eu", None)]),
            Decision::Skip(Skip::Unanswered(list(&["eu"])))
        );
        let empty: Vec<String> = Vec::new();
        assert_eq!(
            decide([
                ("hk", Some(empty.as_slice())),
                ("eu", Some(empty.as_slice()))
            ]),
            Decision::Skip(Skip::EmptyUnion)
        );
        assert_eq!(
            decide([("hk", Some(empty.as_slice())), ("eu", Some(eu.as_slice()))]),
            Decision::Apply(eu.clone()),
            "one empty account among answering ones is a real answer"
        );
        assert_eq!(decide([]), Decision::Skip(Skip::NoTargets));
    }

    #[test]
    fn rows_one_per_imei() {
        let d: Vec<Device> = serde_json::from_str(
            r#"[{"imei":"868120145233604","deviceName":"Truck 1","mcType":"GT300L","sim":"415451","expiration":"2037-04-01 23:59:59","vehicleName":null,"enabledFlag":1,"deviceGroup":"default group"},
                {"imei":"868120145233604","deviceName":"again"},
                {"imei":"","deviceName":"no imei"}]"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let (out, rejected) = rows(&d);
        assert_eq!(rejected, 1);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0]["name"], "Truck 1");
        assert_eq!(out[0]["model"], "GT300L");
        let a = &out[0]["attributes"];
        assert_eq!(a["sim"], "415451");
        assert_eq!(a["expiration"], "2037-04-01T23:59:59Z");
        assert_eq!(a["enabledFlag"], 1);
        assert_eq!(a["deviceGroup"], "default group");
        assert!(a.get("vehicleName").is_none(), "no nulls: {a}");
    }
}
