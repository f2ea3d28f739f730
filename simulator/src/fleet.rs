//! The simulated fleet: deterministic vehicles that drive, idle, park and
//! raise alarms.
//!
//! Every device's day (UTC) is generated from `(seed, account, device, day)`
//! alone, so any window of any query is answered from the same story, in any
//! order, in any process with the same seed: a day starts parked at home,
//! makes 2–5 legs to random places 3–15 km away (sometimes idling on
//! arrival, then parking 10 min – 2.5 h), returns home and parks overnight.
//! Track points, alarms, parking/idling stops, trips and the latest position
//! are all read off that story. Only data up to "now" exists.

use crate::config::Motion;
use crate::geo::{LatLng, bearing_deg, haversine_m, lerp, offset};
use crate::rng::{SplitMix, noise};
use std::collections::HashMap;

pub const DAY: i64 = 86_400;

const MODELS: [&str; 5] = ["GT06N", "JC450Pro", "VL802", "GT300L", "X3"];

#[derive(Clone, Debug, PartialEq)]
pub struct DeviceSpec {
    /// Position in the account's device list.
    pub index: usize,
    pub imei: String,
    pub name: String,
    pub model: &'static str,
    pub sim: String,
    pub iccid: String,
    pub vehicle_number: String,
    pub driver_name: String,
    pub driver_phone: String,
    pub group: String,
    pub home: LatLng,
    /// Epoch seconds.
    pub activation: i64,
    seed: u64,
}

#[derive(Clone, Debug)]
pub struct AccountFleet {
    pub user_id: String,
    pub devices: Vec<DeviceSpec>,
    by_imei: HashMap<String, usize>,
}

impl AccountFleet {
    pub fn device(&self, imei: &str) -> Option<&DeviceSpec> {
        self.by_imei.get(imei).and_then(|&i| self.devices.get(i))
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activity {
    Parked,
    Idling,
    Driving { speed_kmh: f64 },
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Segment {
    pub start: i64,
    pub end: i64,
    pub activity: Activity,
    pub from: LatLng,
    pub to: LatLng,
}

impl Segment {
    pub fn position_at(&self, t: i64) -> LatLng {
        match self.activity {
            Activity::Driving { .. } if self.end > self.start => lerp(
                self.from,
                self.to,
                (t - self.start) as f64 / (self.end - self.start) as f64,
            ),
            Activity::Driving { .. } => self.to,
            _ => self.from,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrackPointTruth {
    pub t: i64,
    pub pos: LatLng,
    pub speed_kmh: f64,
    pub direction: f64,
    pub acc_on: bool,
    pub satellites: i64,
    /// Buffered and sent late (`gpsMode` 1).
    pub retransmitted: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AlarmTruth {
    pub t: i64,
    pub type_id: &'static str,
    pub name: &'static str,
    pub pos: LatLng,
    pub speed_kmh: f64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StopTruth {
    pub start: i64,
    pub end: i64,
    pub pos: LatLng,
    /// Engine on (idling) rather than off (parking).
    pub idling: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TripTruth {
    pub start: i64,
    pub end: i64,
    pub from: LatLng,
    pub to: LatLng,
    pub distance_m: f64,
}

impl TripTruth {
    pub fn avg_speed_kmh(&self) -> f64 {
        let secs = (self.end - self.start).max(1) as f64;
        self.distance_m / secs * 3.6
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LocationTruth {
    pub gps_time: i64,
    pub pos: LatLng,
    pub speed_kmh: f64,
    pub direction: f64,
    pub acc_on: bool,
    pub satellites: i64,
}

/// Track options that depend on faults.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrackOptions {
    pub duplicates: bool,
    pub late_points: bool,
}

#[derive(Clone, Debug)]
pub struct Fleet {
    pub accounts: Vec<AccountFleet>,
    motion: Motion,
}

impl Fleet {
    /// `devices_per_account[i]` devices for account `i` (user ids given).
    pub fn generate(seed: u64, accounts: &[(String, usize)], motion: &Motion) -> Fleet {
        let base = LatLng {
            lat: motion.base_lat,
            lng: motion.base_lng,
        };
        let accounts = accounts
            .iter()
            .enumerate()
            .map(|(a, (user_id, n))| {
                let centre = if a == 0 {
                    base
                } else {
                    offset(base, (a as f64 * 67.0) % 360.0, 40_000.0)
                };
                let devices: Vec<DeviceSpec> =
                    (0..*n).map(|i| device_spec(seed, a, i, centre)).collect();
                let by_imei = devices.iter().map(|d| (d.imei.clone(), d.index)).collect();
                AccountFleet {
                    user_id: user_id.clone(),
                    devices,
                    by_imei,
                }
            })
            .collect();
        Fleet {
            accounts,
            motion: motion.clone(),
        }
    }

    pub fn motion(&self) -> &Motion {
        &self.motion
    }

    /// The device's day `day` (days since the epoch, UTC), covering
    /// `[day·86400, (day+1)·86400)` without gaps.
    pub fn day_plan(&self, dev: &DeviceSpec, day: i64) -> Vec<Segment> {
        let mut r = SplitMix::mixed(&[dev.seed, day as u64, 0xD1]);
        let d0 = day * DAY;
        let d1 = d0 + DAY;
        let home = dev.home;
        let mut segs = Vec::new();
        let stop = |start: i64, end: i64, at: LatLng, activity: Activity| Segment {
            start,
            end,
            activity,
            from: at,
            to: at,
        };
        let depart = d0 + r.range(5 * 3600, 9 * 3600);
        segs.push(stop(d0, depart, home, Activity::Parked));
        let mut t = depart;
        let mut pos = home;
        let legs = r.range(2, 6);
        for _ in 0..legs {
            if t > d0 + 18 * 3600 {
                break;
            }
            let dest = offset(home, r.range_f(0.0, 360.0), r.range_f(3_000.0, 15_000.0));
            let speed = if r.chance(0.12) {
                r.range_f(85.0, 110.0)
            } else {
                r.range_f(25.0, 70.0)
            };
            t = push_drive(&mut segs, t, pos, dest, speed);
            pos = dest;
            if r.chance(0.3) {
                let e = t + r.range(180, 900);
                segs.push(stop(t, e, pos, Activity::Idling));
                t = e;
            }
            let e = t + r.range(600, 9_000);
            segs.push(stop(t, e, pos, Activity::Parked));
            t = e;
        }
        let speed = r.range_f(25.0, 70.0);
        t = push_drive(&mut segs, t, pos, home, speed);
        segs.push(stop(t, d1, home, Activity::Parked));
        segs
    }

    fn segments(
        &self,
        dev: &DeviceSpec,
        first_day: i64,
        last_day: i64,
    ) -> impl Iterator<Item = Segment> + '_ {
        let dev = dev.clone();
        (first_day..=last_day).flat_map(move |d| self.day_plan(&dev, d))
    }

    /// Track points with `b ≤ t ≤ e` and `t ≤ now`, in time order.
    pub fn track(
        &self,
        dev: &DeviceSpec,
        b: i64,
        e: i64,
        now: i64,
        opts: TrackOptions,
    ) -> Vec<TrackPointTruth> {
        let m = &self.motion;
        let iv = m.driving_interval_secs.max(1);
        let siv = m.stopped_interval_secs.max(1);
        let e = e.min(now);
        let mut out = Vec::new();
        if e < b {
            return out;
        }
        for seg in self.segments(dev, b.div_euclid(DAY), e.div_euclid(DAY)) {
            if seg.end < b || seg.start > e {
                continue;
            }
            match seg.activity {
                Activity::Driving { speed_kmh } => {
                    let n = (seg.end - seg.start) / iv;
                    let dir = bearing_deg(seg.from, seg.to);
                    let mut times: Vec<(i64, i64)> =
                        (0..=n).map(|k| (k, seg.start + k * iv)).collect();
                    if (seg.end - seg.start) % iv != 0 {
                        times.push((n + 1, seg.end));
                    }
                    for (k, t) in times {
                        if t < b || t > e {
                            continue;
                        }
                        let edge = t == seg.start || t == seg.end;
                        let retransmitted = opts.late_points && !edge && k % 7 == 3;
                        if retransmitted && now < t + m.late_delay_secs {
                            continue;
                        }
                        let speed = if edge {
                            0.0
                        } else {
                            speed_kmh * (0.85 + 0.3 * noise(&[dev.seed, t as u64]))
                        };
                        let p = TrackPointTruth {
                            t,
                            pos: seg.position_at(t),
                            speed_kmh: speed,
                            direction: dir.round(),
                            acc_on: true,
                            satellites: 7 + (noise(&[dev.seed, t as u64, 1]) * 8.0) as i64,
                            retransmitted,
                        };
                        out.push(p);
                        if opts.duplicates && !edge && k % 10 == 5 {
                            out.push(p);
                        }
                    }
                }
                Activity::Parked | Activity::Idling => {
                    let mut g = (seg.start.div_euclid(siv) + 1) * siv;
                    while g < seg.end {
                        if g >= b && g <= e {
                            out.push(TrackPointTruth {
                                t: g,
                                pos: seg.from,
                                speed_kmh: 0.0,
                                direction: 0.0,
                                acc_on: seg.activity == Activity::Idling,
                                satellites: 7 + (noise(&[dev.seed, g as u64, 1]) * 8.0) as i64,
                                retransmitted: false,
                            });
                        }
                        g += siv;
                    }
                }
            }
        }
        out
    }

    fn day_alarms(&self, dev: &DeviceSpec, day: i64) -> Vec<AlarmTruth> {
        let plan = self.day_plan(dev, day);
        let d0 = day * DAY;
        let mut r = SplitMix::mixed(&[dev.seed, day as u64, 0xA1]);
        let mut out = Vec::new();
        let at = |t: i64| {
            plan.iter()
                .find(|s| s.start <= t && t < s.end)
                .map(|s| s.position_at(t))
                .unwrap_or(dev.home)
        };
        for s in &plan {
            match s.activity {
                Activity::Driving { speed_kmh } => {
                    out.push(AlarmTruth {
                        t: s.start,
                        type_id: "ACC_ON",
                        name: "ACC On",
                        pos: s.from,
                        speed_kmh: 0.0,
                    });
                    if speed_kmh > 80.0 {
                        let mid = s.start + (s.end - s.start) / 2;
                        out.push(AlarmTruth {
                            t: mid,
                            type_id: "overSpeed",
                            name: "Overspeed alert",
                            pos: s.position_at(mid),
                            speed_kmh,
                        });
                    }
                    out.push(AlarmTruth {
                        t: s.end,
                        type_id: "ACC_OFF",
                        name: "ACC Off",
                        pos: s.to,
                        speed_kmh: 0.0,
                    });
                }
                Activity::Parked if s.start != d0 && s.end - s.start >= 7_200 => {
                    out.push(AlarmTruth {
                        t: s.start + 7_200,
                        type_id: "stayAlert",
                        name: "Stay alert",
                        pos: s.from,
                        speed_kmh: 0.0,
                    });
                }
                _ => {}
            }
        }
        let first_departure = plan.first().map(|s| s.end).unwrap_or(d0 + 3600);
        if r.chance(0.15) {
            let t = r.range(d0, first_departure);
            out.push(AlarmTruth {
                t,
                type_id: "3",
                name: "Vibration alarm",
                pos: dev.home,
                speed_kmh: 0.0,
            });
        }
        if r.chance(0.03) {
            let t = r.range(d0, d0 + DAY);
            out.push(AlarmTruth {
                t,
                type_id: "1",
                name: "SOS alarm",
                pos: at(t),
                speed_kmh: 0.0,
            });
        }
        if r.chance(0.05) {
            let t = r.range(d0, d0 + DAY);
            out.push(AlarmTruth {
                t,
                type_id: "2",
                name: "Power cut off alarm",
                pos: at(t),
                speed_kmh: 0.0,
            });
        }
        out.sort_by(|a, b| a.t.cmp(&b.t).then(a.type_id.cmp(b.type_id)));
        out.dedup_by(|a, b| a.t == b.t && a.type_id == b.type_id);
        out
    }

    /// Alarms with `b ≤ t ≤ e` and `t ≤ now`, in time order.
    pub fn alarms(&self, dev: &DeviceSpec, b: i64, e: i64, now: i64) -> Vec<AlarmTruth> {
        let e = e.min(now);
        if e < b {
            return Vec::new();
        }
        (b.div_euclid(DAY)..=e.div_euclid(DAY))
            .flat_map(|d| self.day_alarms(dev, d))
            .filter(|a| a.t >= b && a.t <= e)
            .collect()
    }

    /// Completed stops that start in `[b, e]` (parking across midnight is
    /// one stop), in time order.
    pub fn stops(&self, dev: &DeviceSpec, b: i64, e: i64, now: i64) -> Vec<StopTruth> {
        if e < b {
            return Vec::new();
        }
        let mut merged: Vec<Segment> = Vec::new();
        for s in self.segments(dev, b.div_euclid(DAY) - 1, e.div_euclid(DAY) + 1) {
            match merged.last_mut() {
                Some(last)
                    if last.activity == Activity::Parked
                        && s.activity == Activity::Parked
                        && last.end == s.start =>
                {
                    last.end = s.end;
                }
                _ => merged.push(s),
            }
        }
        merged
            .into_iter()
            .filter(|s| !matches!(s.activity, Activity::Driving { .. }))
            .filter(|s| s.start >= b && s.start <= e && s.end <= now)
            .map(|s| StopTruth {
                start: s.start,
                end: s.end,
                pos: s.from,
                idling: s.activity == Activity::Idling,
            })
            .collect()
    }

    /// Completed trips that start in `[b, e]`, in time order.
    pub fn trips(&self, dev: &DeviceSpec, b: i64, e: i64, now: i64) -> Vec<TripTruth> {
        if e < b {
            return Vec::new();
        }
        self.segments(dev, b.div_euclid(DAY), e.div_euclid(DAY))
            .filter(|s| matches!(s.activity, Activity::Driving { .. }))
            .filter(|s| s.start >= b && s.start <= e && s.end <= now)
            .map(|s| TripTruth {
                start: s.start,
                end: s.end,
                from: s.from,
                to: s.to,
                distance_m: haversine_m(s.from, s.to).round(),
            })
            .collect()
    }

    /// The latest fix at `now`.
    pub fn location(&self, dev: &DeviceSpec, now: i64) -> LocationTruth {
        let m = &self.motion;
        let plan = self.day_plan(dev, now.div_euclid(DAY));
        let seg = plan
            .iter()
            .find(|s| s.start <= now && now < s.end)
            .copied()
            .unwrap_or(Segment {
                start: now,
                end: now + 1,
                activity: Activity::Parked,
                from: dev.home,
                to: dev.home,
            });
        let sat = 7 + (noise(&[dev.seed, now as u64, 2]) * 8.0) as i64;
        match seg.activity {
            Activity::Driving { speed_kmh } => {
                let iv = m.driving_interval_secs.max(1);
                let t = seg.start + (now - seg.start) / iv * iv;
                let speed = if t == seg.start {
                    0.0
                } else {
                    speed_kmh * (0.85 + 0.3 * noise(&[dev.seed, t as u64]))
                };
                LocationTruth {
                    gps_time: t,
                    pos: seg.position_at(t),
                    speed_kmh: speed,
                    direction: bearing_deg(seg.from, seg.to).round(),
                    acc_on: true,
                    satellites: sat,
                }
            }
            a => {
                let siv = m.stopped_interval_secs.max(1);
                let g = now.div_euclid(siv) * siv;
                LocationTruth {
                    gps_time: g.max(seg.start),
                    pos: seg.from,
                    speed_kmh: 0.0,
                    direction: 0.0,
                    acc_on: a == Activity::Idling,
                    satellites: sat,
                }
            }
        }
    }
}

fn push_drive(segs: &mut Vec<Segment>, t: i64, from: LatLng, to: LatLng, speed_kmh: f64) -> i64 {
    let dist = haversine_m(from, to);
    let dur = ((dist / (speed_kmh / 3.6)).round() as i64).max(60);
    segs.push(Segment {
        start: t,
        end: t + dur,
        activity: Activity::Driving { speed_kmh },
        from,
        to,
    });
    t + dur
}

fn device_spec(seed: u64, account: usize, index: usize, centre: LatLng) -> DeviceSpec {
    let dseed = SplitMix::mixed(&[seed, account as u64, index as u64]).next_u64();
    let mut r = SplitMix::new(dseed);
    let imei = format!("86{:02}{:011}", account % 100, index);
    let model = MODELS[r.range(0, MODELS.len() as i64) as usize];
    let home = offset(centre, r.range_f(0.0, 360.0), r.range_f(0.0, 20_000.0));
    let tail = &imei[imei.len() - 5..];
    DeviceSpec {
        index,
        name: format!("{model}-{tail}"),
        model,
        sim: format!("2547{:08}", r.range(0, 100_000_000)),
        iccid: format!("89254{:015}", r.range(0, 1_000_000_000_000_000)),
        vehicle_number: format!(
            "K{}{} {:03}{}",
            (b'A' + r.range(0, 26) as u8) as char,
            (b'A' + r.range(0, 26) as u8) as char,
            r.range(0, 1000),
            (b'A' + r.range(0, 26) as u8) as char
        ),
        driver_name: format!("Driver {}", index + 1),
        driver_phone: format!("+2547{:08}", r.range(0, 100_000_000)),
        group: if index.is_multiple_of(3) {
            "default group".into()
        } else {
            format!("group {}", index % 3)
        },
        home,
        // Activated some time in 2024–2025.
        activation: 1_704_067_200 + r.range(0, 2 * 365 * DAY),
        seed: dseed,
        imei,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet(n: usize) -> Fleet {
        Fleet::generate(42, &[("u".into(), n)], &Motion::default())
    }

    const DAY0: i64 = 20_500 * DAY; // 2026-02-15

    #[test]
    fn days_cover_without_gaps_and_end_at_home() {
        let f = fleet(5);
        for dev in &f.accounts[0].devices {
            for day in 20_500..20_510 {
                let plan = f.day_plan(dev, day);
                assert_eq!(plan.first().map(|s| s.start), Some(day * DAY));
                assert_eq!(plan.last().map(|s| s.end), Some((day + 1) * DAY));
                assert!(
                    plan.windows(2)
                        .all(|w| w[0].end == w[1].start && w[0].start < w[0].end)
                );
                assert_eq!(plan.last().map(|s| s.from), Some(dev.home));
                let drives = plan
                    .iter()
                    .filter(|s| matches!(s.activity, Activity::Driving { .. }))
                    .count();
                assert!(drives >= 2, "{drives}");
            }
        }
    }

    #[test]
    fn deterministic_for_a_seed() {
        let a = fleet(3);
        let b = fleet(3);
        let d = &a.accounts[0].devices[2];
        assert_eq!(a.accounts[0].devices, b.accounts[0].devices);
        assert_eq!(a.day_plan(d, 20_500), b.day_plan(d, 20_500));
        let other = Fleet::generate(43, &[("u".into(), 3)], &Motion::default());
        assert_ne!(other.accounts[0].devices[2].home, d.home);
        assert_eq!(d.imei, "860000000000002");
        assert_eq!(d.imei.len(), 15);
    }

    #[test]
    fn windows_are_consistent() {
        let f = fleet(2);
        let dev = &f.accounts[0].devices[1];
        let now = DAY0 + 10 * DAY;
        let (b, e) = (DAY0, DAY0 + 2 * DAY);
        let mid = DAY0 + DAY + 3_333;
        let whole = f.track(dev, b, e, now, TrackOptions::default());
        let mut parts = f.track(dev, b, mid, now, TrackOptions::default());
        parts.extend(f.track(dev, mid + 1, e, now, TrackOptions::default()));
        assert_eq!(whole, parts);
        assert!(whole.windows(2).all(|w| w[0].t < w[1].t));
        let a1 = f.alarms(dev, b, e, now);
        let mut a2 = f.alarms(dev, b, mid, now);
        a2.extend(f.alarms(dev, mid + 1, e, now));
        assert_eq!(a1, a2);
        // Every trip has an ACC_ON alarm at its start and ACC_OFF at its end.
        for t in f.trips(dev, b, e, now) {
            assert!(a1.iter().any(|a| a.t == t.start && a.type_id == "ACC_ON"));
            assert!(t.end > e || a1.iter().any(|a| a.t == t.end && a.type_id == "ACC_OFF"));
        }
        // Overnight parking is one stop spanning midnight.
        let stops = f.stops(dev, b, e, now);
        assert!(
            stops
                .iter()
                .any(|s| s.start < DAY0 + DAY && s.end > DAY0 + DAY && !s.idling)
        );
        assert!(stops.iter().all(|s| s.start != DAY0 + DAY));
    }

    #[test]
    fn nothing_after_now_and_late_points_appear_later() {
        let f = fleet(1);
        let dev = &f.accounts[0].devices[0];
        let now = DAY0 + 15 * 3600;
        let pts = f.track(dev, DAY0, DAY0 + DAY, now, TrackOptions::default());
        assert!(pts.iter().all(|p| p.t <= now));
        assert!(
            f.alarms(dev, DAY0, DAY0 + DAY, now)
                .iter()
                .all(|a| a.t <= now)
        );
        assert!(
            f.trips(dev, DAY0, DAY0 + DAY, now)
                .iter()
                .all(|t| t.end <= now)
        );
        let late = TrackOptions {
            late_points: true,
            duplicates: false,
        };
        // During a drive, the buffered point at start+90 s is hidden until
        // late_delay has passed.
        let drive = f
            .day_plan(dev, 20_500)
            .into_iter()
            .find(|s| matches!(s.activity, Activity::Driving { .. }) && s.end - s.start > 300);
        let Some(drive) = drive else {
            panic!("no long drive")
        };
        let at = drive.start + 200;
        let early = f.track(dev, drive.start, at, at, late);
        let later = f.track(dev, drive.start, at, at + 3600, late);
        assert_eq!(later.len(), early.len() + 1);
        assert!(
            later
                .iter()
                .any(|p| p.retransmitted && p.t == drive.start + 90)
        );
        assert!(!early.iter().any(|p| p.retransmitted));
        let dups = f.track(
            dev,
            DAY0,
            now,
            now,
            TrackOptions {
                duplicates: true,
                late_points: false,
            },
        );
        assert!(dups.len() > pts.iter().filter(|p| p.t <= now).count());
    }

    #[test]
    fn location_follows_the_plan() {
        let f = fleet(1);
        let dev = &f.accounts[0].devices[0];
        let plan = f.day_plan(dev, 20_500);
        let drive = plan
            .iter()
            .find(|s| matches!(s.activity, Activity::Driving { .. }))
            .copied();
        let Some(drive) = drive else {
            panic!("no drive")
        };
        let l = f.location(dev, drive.start + 95);
        assert!(l.acc_on && l.speed_kmh > 0.0);
        assert_eq!(l.gps_time, drive.start + 90);
        let l = f.location(dev, DAY0 + 60);
        assert!(!l.acc_on);
        assert_eq!(l.pos, dev.home);
    }
}
