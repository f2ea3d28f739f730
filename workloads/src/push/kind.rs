//! Which message a push carries, from its path (per-type pushes) or its
//! `msgType` (the Open-API form push). Paths are matched case-insensitively:
//! the documentation spells them in camelCase, some hubs send lower case.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PushKind {
    Gps,
    Heartbeat,
    Alarm,
    Event,
    Lbs,
    Obd,
    Oil,
    Temperature,
    FaultInfo,
    TripReport,
    /// Open-API `jimi.push.device.alarm`.
    OpenApiAlarm,
    /// Open-API `jimi.open.instruction.raw.receive`.
    OpenApiInstruction,
    /// Any other documented or undocumented type: stored raw, acknowledged.
    Other(String),
}

/// Per-type push paths (without the leading slash), lower-cased.
const PATHS: &[(&str, PushKind)] = &[
    ("pushgps", PushKind::Gps),
    ("pushhb", PushKind::Heartbeat),
    ("pushalarm", PushKind::Alarm),
    ("pushevent", PushKind::Event),
    ("pushlbs", PushKind::Lbs),
    ("pushobd", PushKind::Obd),
    ("pushoil", PushKind::Oil),
    ("pushtem", PushKind::Temperature),
    ("pushfaultinfo", PushKind::FaultInfo),
    ("pushtripreport", PushKind::TripReport),
];

/// Every per-type path the reference lists that we store raw only.
pub const RAW_PATHS: &[&str] = &[
    "rfid",
    "wgtc",
    "pushfileupload",
    "pushresourcelist",
    "pushftpfileupload",
    "pushiothubevent",
    "pushpassthroughdata",
    "pushterminaltransinfo",
    "pushinstructresponse",
    "pushfilecontent",
    "pushextendedkks",
    "uploadcallback",
    "generalbusiness",
];

impl PushKind {
    /// The kind for a request path such as `/pushGPS`; None for paths that
    /// are not push paths at all.
    pub fn from_path(path: &str) -> Option<PushKind> {
        let p = path.trim_matches('/').to_ascii_lowercase();
        if let Some((_, kind)) = PATHS.iter().find(|(name, _)| *name == p) {
            return Some(kind.clone());
        }
        RAW_PATHS
            .contains(&p.as_str())
            .then_some(PushKind::Other(p))
    }

    /// The kind for an Open-API `msgType`.
    pub fn from_msg_type(msg_type: &str) -> PushKind {
        match msg_type {
            "jimi.push.device.alarm" => PushKind::OpenApiAlarm,
            "jimi.open.instruction.raw.receive" => PushKind::OpenApiInstruction,
            other => PushKind::Other(other.to_owned()),
        }
    }

    /// Stable name for `push_events.kind`, metrics and logs.
    pub fn name(&self) -> &str {
        match self {
            PushKind::Gps => "gps",
            PushKind::Heartbeat => "heartbeat",
            PushKind::Alarm => "alarm",
            PushKind::Event => "event",
            PushKind::Lbs => "lbs",
            PushKind::Obd => "obd",
            PushKind::Oil => "oil",
            PushKind::Temperature => "temperature",
            PushKind::FaultInfo => "faultinfo",
            PushKind::TripReport => "tripreport",
            PushKind::OpenApiAlarm => "openapi.alarm",
            PushKind::OpenApiInstruction => "openapi.instruction",
            PushKind::Other(name) => name,
        }
    }
}

impl fmt::Display for PushKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_case_insensitive() {
        assert_eq!(PushKind::from_path("/pushgps"), Some(PushKind::Gps));
        assert_eq!(PushKind::from_path("/pushGPS"), Some(PushKind::Gps));
        assert_eq!(PushKind::from_path("/PushAlarm/"), Some(PushKind::Alarm));
        assert_eq!(
            PushKind::from_path("/pushIothubEvent"),
            Some(PushKind::Other("pushiothubevent".into()))
        );
        assert_eq!(PushKind::from_path("/admin"), None);
        assert_eq!(PushKind::from_path("/"), None);
    }

    #[test]
    fn open_api_types() {
        assert_eq!(
            PushKind::from_msg_type("jimi.push.device.alarm"),
            PushKind::OpenApiAlarm
        );
        assert_eq!(
            PushKind::from_msg_type("jimi.something.new").name(),
            "jimi.something.new"
        );
    }
}
