//! Fault knobs. Set at start (CLI flags or config) and changed at run time
//! through `POST /_sim/faults` (a [`FaultsPatch`]) or
//! [`crate::state::SimState::patch_faults`].
//!
//! Device-level faults pick devices by position in each account's device
//! list: the first `zero_fix_devices` report (0,0), the next
//! `clock_2019_devices` have clocks in 2019, the next `future_clock_devices`
//! clocks in the future (`GET /_sim/accounts` lists which IMEIs).
//! `hidden_devices` names IMEIs that have left their account: every method
//! answers as if they did not exist.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Added to every API answer.
    pub latency_ms: u64,
    /// The next N API requests fail with HTTP `fail_status` (5xx burst).
    pub fail_next: u32,
    /// The status of those failures (default 500).
    pub fail_status: Option<u16>,
    /// The next N API requests answer code -1 "system busy".
    pub busy_next: u32,
    /// The next N API requests answer 1006.
    pub rate_limit_next: u32,
    /// At most this many requests per second and app key; the rest get 1006.
    pub rate_limit_per_sec: Option<u32>,
    /// App keys or user ids whose requests get HTTP 503 (account down).
    pub down_accounts: BTreeSet<String>,
    /// Devices reporting (0,0) everywhere (expired devices do).
    pub zero_fix_devices: usize,
    /// Devices whose clocks are in 2019.
    pub clock_2019_devices: usize,
    /// Devices whose clocks are ahead (by `motion.future_clock_offset_secs`).
    pub future_clock_devices: usize,
    /// Some track points come twice.
    pub duplicate_points: bool,
    /// Some track points are buffered: `gpsMode` 1, visible only
    /// `motion.late_delay_secs` after their `gpsTime`.
    pub late_points: bool,
    /// `code` as a string (`"0"`, `"1004"`) instead of a number.
    pub codes_as_strings: bool,
    /// The `n`-th API request from now finds every issued token forgotten
    /// (once): a 1004 in the middle of a run.
    pub expire_tokens_after: Option<u32>,
    /// IMEIs removed from their account: absent from the device and
    /// location lists, unknown to the per-device methods.
    pub hidden_devices: BTreeSet<String>,
}

impl Faults {
    pub fn fail_status(&self) -> u16 {
        self.fail_status
            .filter(|s| (500..=599).contains(s))
            .unwrap_or(500)
    }
}

/// A partial update: absent fields are left as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultsPatch {
    pub latency_ms: Option<u64>,
    pub fail_next: Option<u32>,
    pub fail_status: Option<u16>,
    pub busy_next: Option<u32>,
    pub rate_limit_next: Option<u32>,
    /// `0` turns the limit off.
    pub rate_limit_per_sec: Option<u32>,
    pub down_accounts: Option<BTreeSet<String>>,
    pub zero_fix_devices: Option<usize>,
    pub clock_2019_devices: Option<usize>,
    pub future_clock_devices: Option<usize>,
    pub duplicate_points: Option<bool>,
    pub late_points: Option<bool>,
    pub codes_as_strings: Option<bool>,
    /// `0` turns it off.
    pub expire_tokens_after: Option<u32>,
    pub hidden_devices: Option<BTreeSet<String>>,
    /// `true`: forget every issued token now (clients get 1004 next).
    pub invalidate_tokens: Option<bool>,
    /// `true`: back to no faults first, then apply the rest of the patch.
    pub reset: Option<bool>,
}

impl FaultsPatch {
    /// Applies the patch; returns whether tokens are to be invalidated.
    pub fn apply(&self, f: &mut Faults) -> bool {
        if self.reset == Some(true) {
            *f = Faults::default();
        }
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = &self.$field { f.$field = v.clone(); } )* };
        }
        set!(
            latency_ms,
            fail_next,
            busy_next,
            rate_limit_next,
            down_accounts,
            zero_fix_devices,
            clock_2019_devices,
            future_clock_devices,
            duplicate_points,
            late_points,
            codes_as_strings,
            hidden_devices
        );
        if let Some(s) = self.fail_status {
            f.fail_status = Some(s);
        }
        if let Some(r) = self.rate_limit_per_sec {
            f.rate_limit_per_sec = (r > 0).then_some(r);
        }
        if let Some(n) = self.expire_tokens_after {
            f.expire_tokens_after = (n > 0).then_some(n);
        }
        self.invalidate_tokens == Some(true)
    }
}

/// A device's clock, as the faults set it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceQuirk {
    None,
    ZeroFix,
    Clock2019,
    FutureClock,
}

impl Faults {
    /// The quirk of the device at `index` in its account's list.
    pub fn quirk(&self, index: usize) -> DeviceQuirk {
        let a = self.zero_fix_devices;
        let b = a + self.clock_2019_devices;
        let c = b + self.future_clock_devices;
        if index < a {
            DeviceQuirk::ZeroFix
        } else if index < b {
            DeviceQuirk::Clock2019
        } else if index < c {
            DeviceQuirk::FutureClock
        } else {
            DeviceQuirk::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_and_quirks() {
        let mut f = Faults::default();
        let p: FaultsPatch = serde_json::from_str(
            r#"{"fail_next":3,"rate_limit_per_sec":2,"zero_fix_devices":1,"clock_2019_devices":2,"future_clock_devices":1,"invalidate_tokens":true}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(p.apply(&mut f));
        assert_eq!(f.fail_next, 3);
        assert_eq!(f.rate_limit_per_sec, Some(2));
        let q: Vec<DeviceQuirk> = (0..5).map(|i| f.quirk(i)).collect();
        assert_eq!(
            q,
            vec![
                DeviceQuirk::ZeroFix,
                DeviceQuirk::Clock2019,
                DeviceQuirk::Clock2019,
                DeviceQuirk::FutureClock,
                DeviceQuirk::None
            ]
        );
        let off = FaultsPatch {
            rate_limit_per_sec: Some(0),
            ..FaultsPatch::default()
        };
        assert!(!off.apply(&mut f));
        assert_eq!(f.rate_limit_per_sec, None);
        assert!(serde_json::from_str::<FaultsPatch>(r#"{"no_such_knob":1}"#).is_err());
        let p: FaultsPatch =
            serde_json::from_str(r#"{"expire_tokens_after":4,"hidden_devices":["1","2"]}"#)
                .unwrap_or_else(|e| panic!("{e}"));
        p.apply(&mut f);
        assert_eq!(f.expire_tokens_after, Some(4));
        assert_eq!(f.hidden_devices.len(), 2);
        let reset = FaultsPatch {
            reset: Some(true),
            ..FaultsPatch::default()
        };
        reset.apply(&mut f);
        assert_eq!(f, Faults::default());
        assert_eq!(f.fail_status(), 500);
    }
}
