//! Method names (reference §3, §5). Only documented names: SJEDDE's
//! `jimi.device.location.list` does not exist.

pub const TOKEN_GET: &str = "jimi.oauth.token.get";
pub const TOKEN_REFRESH: &str = "jimi.oauth.token.refresh";
pub const USER_DEVICE_LIST: &str = "jimi.user.device.list";
pub const USER_DEVICE_LOCATION_LIST: &str = "jimi.user.device.location.list";
pub const DEVICE_LOCATION_GET: &str = "jimi.device.location.get";
pub const DEVICE_TRACK_LIST: &str = "jimi.device.track.list";
pub const DEVICE_TRACK_MILEAGE: &str = "jimi.device.track.mileage";
pub const DEVICE_ALARM_LIST: &str = "jimi.device.alarm.list";
pub const REPORT_PARKING: &str = "jimi.open.platform.report.parking";
