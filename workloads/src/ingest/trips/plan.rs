//! The pure part of the trips job: from API trips to rows, what the stored
//! positions add, which points need the geocoder, and the addresses put back.
//!
//! Phases (see [`super`]): fetch → [`accept`] → read → [`Candidate::enrich`]
//! and [`wanted_keys`] → cache lookup → [`to_ask`] → geocoder →
//! [`Candidate::fill_addresses`] → write.

use crate::geocode::CacheKey;
use crate::push::Guard;
use crate::tracksolid::Trip;
use jiff::Timestamp;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap, HashSet};

/// One trip as it will be stored.
#[derive(Clone, Debug, PartialEq)]
pub struct TripRow {
    pub imei: String,
    pub start_time: Timestamp,
    pub end_time: Timestamp,
    pub distance_m: Option<i64>,
    pub duration_s: Option<i32>,
    pub avg_speed: Option<f32>,
    pub max_speed: Option<f32>,
    pub start: Option<(f64, f64)>,
    pub end: Option<(f64, f64)>,
    pub start_address: Option<String>,
    pub end_address: Option<String>,
}

fn point(lat: Option<f64>, lng: Option<f64>) -> Option<(f64, f64)> {
    CacheKey::from_opt(lat, lng).map(|_| (lat.unwrap_or_default(), lng.unwrap_or_default()))
}

fn non_negative(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite() && *x >= 0.0)
}

impl TripRow {
    /// A row from an API trip, or `None` when it cannot be stored: no IMEI,
    /// no start or end, ending before it starts, or stamped outside the
    /// event-time guard.
    pub fn from_api(t: &Trip, guard: &Guard, now: Timestamp) -> Option<TripRow> {
        let (Some(start), Some(end)) = (t.start_time, t.end_time) else {
            return None;
        };
        if t.imei.trim().is_empty() || end < start {
            return None;
        }
        if guard.check_time(start, now).is_err() || guard.check_time(end, now).is_err() {
            return None;
        }
        let elapsed = end.duration_since(start).as_secs();
        let duration = t.run_time_second.filter(|s| *s >= 0).unwrap_or(elapsed);
        Some(TripRow {
            imei: t.imei.trim().to_owned(),
            start_time: start,
            end_time: end,
            // Metres (reference §5.4); a negative distance is not stored.
            distance_m: non_negative(t.distance_m).map(|m| m.round() as i64),
            duration_s: i32::try_from(duration).ok(),
            avg_speed: non_negative(t.avg_speed).map(|v| v as f32),
            max_speed: None,
            start: point(t.start_lat, t.start_lng),
            end: point(t.end_lat, t.end_lng),
            start_address: None,
            end_address: None,
        })
    }

    pub fn start_key(&self) -> Option<CacheKey> {
        self.start.and_then(|(a, b)| CacheKey::from_degrees(a, b))
    }

    pub fn end_key(&self) -> Option<CacheKey> {
        self.end.and_then(|(a, b)| CacheKey::from_degrees(a, b))
    }

    /// The row for `jsonb_to_recordset` (times as RFC 3339 text).
    pub fn to_json(&self) -> Value {
        json!({
            "imei": self.imei,
            "start_time": self.start_time.to_string(),
            "end_time": self.end_time.to_string(),
            "distance_m": self.distance_m,
            "duration_s": self.duration_s,
            "avg_speed": self.avg_speed,
            "max_speed": self.max_speed,
            "start_lat": self.start.map(|p| p.0),
            "start_lng": self.start.map(|p| p.1),
            "end_lat": self.end.map(|p| p.0),
            "end_lng": self.end.map(|p| p.1),
            "start_address": self.start_address,
            "end_address": self.end_address,
        })
    }
}

/// The storable trips of one fetch, each (IMEI, start) once, in time order;
/// and how many were refused.
pub fn accept(trips: &[Trip], guard: &Guard, now: Timestamp) -> (Vec<TripRow>, u64) {
    let mut rejected = 0;
    let mut seen = HashSet::new();
    let mut rows = Vec::new();
    for t in trips {
        match TripRow::from_api(t, guard, now) {
            Some(r) => {
                if seen.insert((r.imei.clone(), r.start_time)) {
                    rows.push(r);
                }
            }
            None => rejected += 1,
        }
    }
    rows.sort_by(|a, b| (a.start_time, &a.imei).cmp(&(b.start_time, &b.imei)));
    (rows, rejected)
}

/// What the database already knows about one fetched trip (one row of the
/// enrichment read).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Known {
    /// The trip is stored already …
    pub stored: bool,
    /// … with these addresses present …
    pub has_start_address: bool,
    pub has_end_address: bool,
    /// … and these stored coordinates.
    pub stored_start: Option<(f64, f64)>,
    pub stored_end: Option<(f64, f64)>,
    /// Stored positions of the device during the trip (new trips only).
    pub points: i64,
    pub max_speed: Option<f32>,
    pub first_fix: Option<(f64, f64)>,
    pub last_fix: Option<(f64, f64)>,
}

/// What is to be done with a fetched trip.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Not stored yet: insert it.
    Insert,
    /// Stored, but an address is missing: fill the missing side(s).
    FillAddresses { start: bool, end: bool },
    /// Stored and complete: nothing to do.
    Skip,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub row: TripRow,
    pub action: Action,
}

impl Candidate {
    /// Combines a fetched row with what the read found: coordinates the API
    /// left out come from the first and last stored fix of the trip, the top
    /// speed from the stored positions; a stored trip keeps its stored
    /// coordinates.
    pub fn enrich(mut row: TripRow, known: &Known) -> Candidate {
        if known.stored {
            row.start = known.stored_start.or(row.start);
            row.end = known.stored_end.or(row.end);
            let (start, end) = (!known.has_start_address, !known.has_end_address);
            let action = if start || end {
                Action::FillAddresses { start, end }
            } else {
                Action::Skip
            };
            return Candidate { row, action };
        }
        row.start = row.start.or(known.first_fix);
        row.end = row.end.or(known.last_fix);
        if known.points > 0 {
            row.max_speed = known.max_speed.filter(|s| s.is_finite() && *s >= 0.0);
        }
        Candidate {
            row,
            action: Action::Insert,
        }
    }

    fn wants_start(&self) -> bool {
        match self.action {
            Action::Insert => true,
            Action::FillAddresses { start, .. } => start,
            Action::Skip => false,
        }
    }

    fn wants_end(&self) -> bool {
        match self.action {
            Action::Insert => true,
            Action::FillAddresses { end, .. } => end,
            Action::Skip => false,
        }
    }

    /// Puts the known addresses in (a side that was not wanted stays as it
    /// is; an unknown point stays empty).
    pub fn fill_addresses(&mut self, addresses: &HashMap<CacheKey, Option<String>>) {
        let look = |k: Option<CacheKey>| k.and_then(|k| addresses.get(&k).cloned().flatten());
        if self.wants_start() {
            self.row.start_address = look(self.row.start_key());
        }
        if self.wants_end() {
            self.row.end_address = look(self.row.end_key());
        }
    }
}

/// Every point whose address is wanted, each once, in first-use order.
pub fn wanted_keys(candidates: &[Candidate]) -> Vec<CacheKey> {
    let mut seen = BTreeSet::new();
    let mut keys = Vec::new();
    for c in candidates {
        let sides = [
            (c.wants_start(), c.row.start_key()),
            (c.wants_end(), c.row.end_key()),
        ];
        for (wanted, key) in sides {
            if let (true, Some(k)) = (wanted, key)
                && seen.insert(k)
            {
                keys.push(k);
            }
        }
    }
    keys
}

/// The wanted points the cache does not answer: the geocoder's work.
pub fn to_ask(wanted: &[CacheKey], cached: &HashMap<CacheKey, Option<String>>) -> Vec<CacheKey> {
    wanted
        .iter()
        .copied()
        .filter(|k| !cached.contains_key(k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;

    fn guard() -> Guard {
        Guard {
            not_before: "2026-01-01T00:00:00Z".parse().unwrap(),
            max_future: SignedDuration::from_hours(48),
        }
    }

    fn now() -> Timestamp {
        "2026-03-01T12:00:00Z".parse().unwrap()
    }

    fn trip(imei: &str, start: &str, end: &str) -> Trip {
        Trip {
            imei: imei.into(),
            start_time: start.parse().ok(),
            end_time: end.parse().ok(),
            start_lat: Some(-1.3),
            start_lng: Some(36.8),
            end_lat: Some(-1.25),
            end_lng: Some(36.9),
            run_time_second: None,
            distance_m: Some(12_345.6),
            avg_speed: Some(40.0),
        }
    }

    #[test]
    fn accept_refuses_what_cannot_be_stored() {
        let mut no_end = trip("1", "2026-03-01T08:00:00Z", "x");
        no_end.end_time = None;
        let mut negative = trip("4", "2026-03-01T09:00:00Z", "2026-03-01T09:30:00Z");
        negative.distance_m = Some(-5.0);
        negative.run_time_second = Some(1700);
        let trips = vec![
            trip("1", "2026-03-01T10:00:00Z", "2026-03-01T10:20:00Z"),
            trip("1", "2026-03-01T10:00:00Z", "2026-03-01T10:20:00Z"), // duplicate
            no_end,
            trip("2", "2026-03-01T10:00:00Z", "2026-03-01T09:00:00Z"), // reversed
            trip("3", "2019-05-01T10:00:00Z", "2019-05-01T10:20:00Z"), // 2019 clock
            trip("3", "2026-03-09T10:00:00Z", "2026-03-09T10:20:00Z"), // future
            trip(" ", "2026-03-01T10:00:00Z", "2026-03-01T10:20:00Z"), // no imei
            negative,
        ];
        let (rows, rejected) = accept(&trips, &guard(), now());
        assert_eq!(rejected, 5);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].imei, "4", "time order");
        assert_eq!(rows[0].distance_m, None);
        assert_eq!(rows[0].duration_s, Some(1700));
        assert_eq!(rows[1].distance_m, Some(12_346));
        assert_eq!(rows[1].duration_s, Some(1200), "from the times");
        assert_eq!(rows[1].avg_speed, Some(40.0));
    }

    #[test]
    fn new_trips_take_missing_points_and_top_speed_from_positions() {
        let mut t = trip("1", "2026-03-01T10:00:00Z", "2026-03-01T10:20:00Z");
        t.start_lat = Some(0.0);
        t.start_lng = Some(0.0);
        t.end_lat = None;
        let (rows, _) = accept(&[t], &guard(), now());
        let row = rows[0].clone();
        assert_eq!((row.start, row.end), (None, None), "(0,0) is no point");
        let known = Known {
            points: 3,
            max_speed: Some(72.5),
            first_fix: Some((-1.31, 36.81)),
            last_fix: Some((-1.26, 36.91)),
            ..Known::default()
        };
        let c = Candidate::enrich(row.clone(), &known);
        assert_eq!(c.action, Action::Insert);
        assert_eq!(c.row.start, Some((-1.31, 36.81)));
        assert_eq!(c.row.end, Some((-1.26, 36.91)));
        assert_eq!(c.row.max_speed, Some(72.5));
        // API points win over stored fixes.
        let api = accept(
            &[trip("1", "2026-03-01T10:00:00Z", "2026-03-01T10:20:00Z")],
            &guard(),
            now(),
        )
        .0
        .remove(0);
        let c = Candidate::enrich(api, &known);
        assert_eq!(c.row.start, Some((-1.3, 36.8)));
        // No positions: no top speed.
        let c = Candidate::enrich(row, &Known::default());
        assert_eq!(c.row.max_speed, None);
    }

    #[test]
    fn stored_trips_are_skipped_or_only_get_their_missing_addresses() {
        let (rows, _) = accept(
            &[trip("1", "2026-03-01T10:00:00Z", "2026-03-01T10:20:00Z")],
            &guard(),
            now(),
        );
        let complete = Known {
            stored: true,
            has_start_address: true,
            has_end_address: true,
            ..Known::default()
        };
        let c = Candidate::enrich(rows[0].clone(), &complete);
        assert_eq!(c.action, Action::Skip);
        assert!(wanted_keys(&[c]).is_empty(), "a re-run asks nothing");

        let half = Known {
            stored: true,
            has_start_address: true,
            stored_end: Some((-1.2, 36.7)),
            ..Known::default()
        };
        let mut c = Candidate::enrich(rows[0].clone(), &half);
        assert_eq!(
            c.action,
            Action::FillAddresses {
                start: false,
                end: true
            }
        );
        let end = CacheKey::from_degrees(-1.2, 36.7).unwrap();
        assert_eq!(wanted_keys(std::slice::from_ref(&c)), vec![end]);
        let addresses = HashMap::from([(end, Some("Ngong Road".to_owned()))]);
        c.fill_addresses(&addresses);
        assert_eq!(c.row.end_address.as_deref(), Some("Ngong Road"));
        assert_eq!(c.row.start_address, None, "not wanted, not touched");
    }

    #[test]
    fn keys_are_asked_once_and_cache_hits_never() {
        let mut a = trip("1", "2026-03-01T10:00:00Z", "2026-03-01T10:20:00Z");
        let mut b = trip("1", "2026-03-01T11:00:00Z", "2026-03-01T11:20:00Z");
        // b starts where a ended (within 1e-5 degrees).
        (b.start_lat, b.start_lng) = (Some(-1.250_001), Some(36.900_002));
        (a.end_lat, a.end_lng) = (Some(-1.25), Some(36.9));
        (b.end_lat, b.end_lng) = (Some(-1.2), Some(37.0));
        let (rows, _) = accept(&[a, b], &guard(), now());
        let cands: Vec<Candidate> = rows
            .into_iter()
            .map(|r| Candidate::enrich(r, &Known::default()))
            .collect();
        let wanted = wanted_keys(&cands);
        assert_eq!(wanted.len(), 3, "shared point counted once: {wanted:?}");
        let cached = HashMap::from([(wanted[0], None)]);
        let ask = to_ask(&wanted, &cached);
        assert_eq!(ask, wanted[1..].to_vec());

        let mut addresses = cached.clone();
        addresses.insert(wanted[1], Some("Waiyaki Way".into()));
        let mut c = cands[0].clone();
        c.fill_addresses(&addresses);
        assert_eq!(c.row.start_address, None, "no address at that point");
        assert_eq!(c.row.end_address.as_deref(), Some("Waiyaki Way"));
        let json = c.row.to_json();
        assert_eq!(json["start_time"], "2026-03-01T10:00:00Z");
        assert_eq!(json["end_address"], "Waiyaki Way");
        assert!(json["start_address"].is_null());
    }
}
