//! Typed rows of the methods we use, decoded leniently (see [`super::lenient`]).
//! Field names follow the wire (camelCase); documented alternative spellings
//! are accepted too (reference pitfall 10). Times are UTC instants.
//!
//! A row may carry both spellings of such a field. Each spelling is then
//! decoded on its own (a private wire struct with both as separate fields,
//! merged by `From`), so the row decodes instead of failing serde's
//! duplicate-field check, and the winner is fixed, whatever the key order:
//!
//! | field | wins | used only when the winner is absent or unreadable |
//! |---|---|---|
//! | [`Trip::run_time_second`] | `runTimeSecond` (the reference's table) | `elapsed` (its example) |
//! | [`Alarm::alarm_type_name`] | `alarmTypeName` (the reference's choice: example and live code) | `alertTypeName` (the doc's table) |
//! | [`TrackPoint::gps_speed`] | `gpsSpeed` (the reference: "not `speed`") | `speed` |
//!
//! "Absent or unreadable" is what the lenient decoders turn into `None`:
//! missing, `null`, `""`, or a value that does not read as the field's type.

use super::lenient;
use jiff::Timestamp;
use serde::Deserialize;

/// `jimi.oauth.token.get` / `jimi.oauth.token.refresh` `result` (reference §3.1).
#[derive(Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TokenGrant {
    #[serde(default, deserialize_with = "lenient::string")]
    pub access_token: String,
    /// Seconds; documented as a string, sent as a number in the examples.
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub expires_in: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub refresh_token: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub account: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub app_key: Option<String>,
    /// "Token generated time", kept raw: its time zone is undocumented and
    /// the expiry is computed from our own clock instead.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub time: Option<String>,
}

impl std::fmt::Debug for TokenGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenGrant")
            .field("expires_in", &self.expires_in)
            .field("account", &self.account)
            .field("time", &self.time)
            .finish_non_exhaustive()
    }
}

/// One device of `jimi.user.device.list` (reference §5.1).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    #[serde(default, deserialize_with = "lenient::string")]
    pub imei: String,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub device_name: Option<String>,
    /// The model.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub mc_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub mc_type_use_scope: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub sim: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_utc")]
    pub expiration: Option<Timestamp>,
    #[serde(default, deserialize_with = "lenient::opt_utc")]
    pub activation_time: Option<Timestamp>,
    #[serde(default, rename = "reMark", deserialize_with = "lenient::opt_string")]
    pub remark: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub vehicle_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub vehicle_icon: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub vehicle_number: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub vehicle_models: Option<String>,
    /// The VIN.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub car_frame: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub driver_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub driver_phone: Option<String>,
    /// 1 available, 0 not.
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub enabled_flag: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub engine_number: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub device_group_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub device_group: Option<String>,
}

/// A latest position from `jimi.user.device.location.list` or
/// `jimi.device.location.get` (reference §5.2).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    #[serde(default, deserialize_with = "lenient::string")]
    pub imei: String,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub device_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub mc_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub icon: Option<String>,
    /// "1" online, "0" offline.
    #[serde(default, deserialize_with = "lenient::opt_flag")]
    pub status: Option<bool>,
    /// `GPS` / `LBS` / `WIFI` / `BEACON`.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub pos_type: Option<String>,
    /// Latitude (the doc's table has the labels swapped; the examples do not).
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    pub lat: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    pub lng: Option<f64>,
    /// Time of the fix: the observation time.
    #[serde(default, deserialize_with = "lenient::opt_utc")]
    pub gps_time: Option<Timestamp>,
    /// Time of the last heartbeat.
    #[serde(default, deserialize_with = "lenient::opt_utc")]
    pub hb_time: Option<Timestamp>,
    /// km/h.
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    pub speed: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_flag")]
    pub acc_status: Option<bool>,
    /// Degrees from north; -1 means unknown (see [`Location::heading`]).
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    pub direction: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub gps_num: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub gps_signal: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    pub elect_quantity: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    pub power_value: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    pub battery_power_val: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    pub temperature: Option<f64>,
    /// Fuel; the unit (`"0.00L"`) is dropped.
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    pub tracker_oil: Option<f64>,
    /// km.
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    pub current_mileage: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub loc_desc: Option<String>,
    /// "1" not expired, "0" expired.
    #[serde(default, deserialize_with = "lenient::opt_flag")]
    pub expire_flag: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_flag")]
    pub activation_flag: Option<bool>,
    /// 1 (worst) to 3 (best).
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub confidence: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub account: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub customer_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub iccid: Option<String>,
}

/// Whether `(lat, lng)` is a usable fix: present, finite, in range and not
/// (0,0) (expired devices report 0,0: reference pitfall 7).
pub fn is_real_fix(lat: Option<f64>, lng: Option<f64>) -> bool {
    match (lat, lng) {
        (Some(la), Some(ln)) => {
            la.is_finite()
                && ln.is_finite()
                && la.abs() <= 90.0
                && ln.abs() <= 180.0
                && !(la == 0.0 && ln == 0.0)
        }
        _ => false,
    }
}

fn heading(direction: Option<f64>) -> Option<f64> {
    direction.filter(|d| (0.0..=360.0).contains(d))
}

impl Location {
    pub fn has_fix(&self) -> bool {
        is_real_fix(self.lat, self.lng)
    }

    /// The direction, `None` when unknown (-1) or out of range.
    pub fn heading(&self) -> Option<f64> {
        heading(self.direction)
    }
}

/// A point of `jimi.device.track.list` (reference §5.3).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(from = "TrackPointWire")]
pub struct TrackPoint {
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub gps_time: Option<Timestamp>,
    pub direction: Option<f64>,
    /// km/h (`gpsSpeed` here, not `speed`); -1 for TAG/beacon points.
    /// `speed` is read when `gpsSpeed` is absent (module doc).
    pub gps_speed: Option<f64>,
    /// Numeric here: 1 GPS, 2 LBS, 3 WIFI, 5 BEACON (kept as text).
    pub pos_type: Option<String>,
    pub satellite: Option<i64>,
    pub ignition: Option<bool>,
    /// "ON"/"OFF" in this method.
    pub acc_status: Option<bool>,
    /// 0 real time, 1 retransmitted (buffered).
    pub gps_mode: Option<i64>,
    pub confidence: Option<i64>,
}

impl TrackPoint {
    pub fn has_fix(&self) -> bool {
        is_real_fix(self.lat, self.lng)
    }

    pub fn heading(&self) -> Option<f64> {
        heading(self.direction)
    }

    /// A buffered point, sent late by the device (`gpsMode = 1`).
    pub fn is_retransmitted(&self) -> bool {
        self.gps_mode == Some(1)
    }
}

/// The answer of one `jimi.device.track.list` call, or several joined.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Track {
    pub points: Vec<TrackPoint>,
    /// `data.mileage` (summed over the windows queried). Its unit is not
    /// documented.
    pub mileage: Option<f64>,
}

#[derive(Deserialize, Default)]
pub(crate) struct TrackData {
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    pub mileage: Option<f64>,
}

/// An alarm of `jimi.device.alarm.list` (reference §5.6).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(from = "AlarmWire")]
pub struct Alarm {
    pub imei: String,
    pub device_name: Option<String>,
    pub model: Option<String>,
    pub account: Option<String>,
    /// A number-as-string for device alarms ("1" SOS), an English token for
    /// platform alarms (`ACC_ON`, `overSpeed`, `in`, …).
    pub alert_type_id: String,
    /// `alarmTypeName` in the doc's example and live code, `alertTypeName`
    /// in the doc's table; `alarmTypeName` wins when both come (module doc).
    pub alarm_type_name: Option<String>,
    pub alert_time: Option<Timestamp>,
    pub positioning_time: Option<Timestamp>,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub speed: Option<f64>,
    /// Fence id, for geofence alarms.
    pub geoid: Option<String>,
}

impl Alarm {
    pub fn has_fix(&self) -> bool {
        is_real_fix(self.lat, self.lng)
    }
}

/// `acc_type` of the parking report: `on` idling, `off` parking.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccType {
    /// Engine on while stopped.
    Idling,
    /// Engine off.
    Parking,
}

impl AccType {
    pub fn as_param(self) -> &'static str {
        match self {
            AccType::Idling => "on",
            AccType::Parking => "off",
        }
    }
}

/// A row of `jimi.open.platform.report.parking` (reference §5.5). Its times
/// are ISO-8601 with a `Z`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ParkingRow {
    #[serde(default, deserialize_with = "lenient::string")]
    pub imei: String,
    #[serde(default, deserialize_with = "lenient::opt_utc")]
    pub start_time: Option<Timestamp>,
    #[serde(default, deserialize_with = "lenient::opt_utc")]
    pub end_time: Option<Timestamp>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub dur_second: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub stop_second: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    pub lat: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    pub lng: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub addr: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub device_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub mc_type: Option<String>,
    /// "on" / "off".
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub acc: Option<String>,
}

/// One page of the parking report (`data`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ParkingPage {
    /// Seconds, over all rows of the query.
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub total_time: Option<i64>,
    /// Rows of the whole query (all pages).
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub data_total_rows: Option<i64>,
    /// Rows that do not decode are skipped (and logged); the rest are kept.
    #[serde(default, deserialize_with = "lenient::rows_or_null")]
    pub rows: Vec<ParkingRow>,
}

/// A trip of `jimi.device.track.mileage` (reference §5.4).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(from = "TripWire")]
pub struct Trip {
    pub imei: String,
    pub start_time: Option<Timestamp>,
    pub end_time: Option<Timestamp>,
    pub start_lat: Option<f64>,
    pub start_lng: Option<f64>,
    pub end_lat: Option<f64>,
    pub end_lng: Option<f64>,
    /// Seconds: `runTimeSecond` in the doc's table, `elapsed` in its example;
    /// `runTimeSecond` wins when both come (module doc).
    pub run_time_second: Option<i64>,
    /// Metres.
    pub distance_m: Option<f64>,
    /// km/h.
    pub avg_speed: Option<f64>,
}

/// `data[]` of `jimi.device.track.mileage`: the total per device.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MileageTotal {
    #[serde(default, deserialize_with = "lenient::string")]
    pub imei: String,
    /// Metres.
    #[serde(
        default,
        rename = "totalMileage",
        deserialize_with = "lenient::opt_f64"
    )]
    pub total_mileage_m: Option<f64>,
}

/// One page of `jimi.device.track.mileage`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MileagePage {
    pub trips: Vec<Trip>,
    pub totals: Vec<MileageTotal>,
}

// ---- wire forms of the rows with two spellings of a field -----------------
//
// Each spelling is its own field here, so a row with both decodes; `From`
// picks the winner (module doc).

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TrackPointWire {
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    lat: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    lng: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_utc")]
    gps_time: Option<Timestamp>,
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    direction: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    gps_speed: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pos_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    satellite: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_flag")]
    ignition: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_flag")]
    acc_status: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    gps_mode: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    confidence: Option<i64>,
    /// The other spelling of `gpsSpeed`.
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    speed: Option<f64>,
}

impl From<TrackPointWire> for TrackPoint {
    fn from(w: TrackPointWire) -> Self {
        TrackPoint {
            lat: w.lat,
            lng: w.lng,
            gps_time: w.gps_time,
            direction: w.direction,
            gps_speed: w.gps_speed.or(w.speed),
            pos_type: w.pos_type,
            satellite: w.satellite,
            ignition: w.ignition,
            acc_status: w.acc_status,
            gps_mode: w.gps_mode,
            confidence: w.confidence,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlarmWire {
    #[serde(default, deserialize_with = "lenient::string")]
    imei: String,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    device_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    model: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    account: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    alert_type_id: String,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    alarm_type_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_utc")]
    alert_time: Option<Timestamp>,
    #[serde(default, deserialize_with = "lenient::opt_utc")]
    positioning_time: Option<Timestamp>,
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    lat: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    lng: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    speed: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    geoid: Option<String>,
    /// The doc table's spelling of `alarmTypeName`.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    alert_type_name: Option<String>,
}

impl From<AlarmWire> for Alarm {
    fn from(w: AlarmWire) -> Self {
        Alarm {
            imei: w.imei,
            device_name: w.device_name,
            model: w.model,
            account: w.account,
            alert_type_id: w.alert_type_id,
            alarm_type_name: w.alarm_type_name.or(w.alert_type_name),
            alert_time: w.alert_time,
            positioning_time: w.positioning_time,
            lat: w.lat,
            lng: w.lng,
            speed: w.speed,
            geoid: w.geoid,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TripWire {
    #[serde(default, deserialize_with = "lenient::string")]
    imei: String,
    #[serde(default, deserialize_with = "lenient::opt_utc")]
    start_time: Option<Timestamp>,
    #[serde(default, deserialize_with = "lenient::opt_utc")]
    end_time: Option<Timestamp>,
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    start_lat: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    start_lng: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    end_lat: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    end_lng: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    run_time_second: Option<i64>,
    #[serde(default, rename = "distance", deserialize_with = "lenient::opt_f64")]
    distance_m: Option<f64>,
    #[serde(default, deserialize_with = "lenient::opt_f64")]
    avg_speed: Option<f64>,
    /// The doc example's spelling of `runTimeSecond`.
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    elapsed: Option<i64>,
}

impl From<TripWire> for Trip {
    fn from(w: TripWire) -> Self {
        Trip {
            imei: w.imei,
            start_time: w.start_time,
            end_time: w.end_time,
            start_lat: w.start_lat,
            start_lng: w.start_lng,
            end_lat: w.end_lat,
            end_lng: w.end_lng,
            run_time_second: w.run_time_second.or(w.elapsed),
            distance_m: w.distance_m,
            avg_speed: w.avg_speed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result<T: serde::de::DeserializeOwned>(json: &str, field: &str) -> T {
        let v: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}"));
        serde_json::from_value(v[field].clone()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn ts(s: &str) -> Option<Timestamp> {
        s.parse().ok()
    }

    // Fixtures S1, S3, S4, S5, S6, S7, S8, S9 of the reference, verbatim.

    #[test]
    fn s1_token() {
        let g: TokenGrant = result(
            r#"{"code":0,"message":"success","result":{"appKey":"8FB345B8693CCD003CC2DAB61EC8791D","account":"jimitest","accessToken":"7da3330ec28e3996b6ef4a7e3390ba71","expiresIn":60,"refreshToken":"7da3330ec28e3996b6ef4a7e3390ba71","time":"2017-06-15 10:00:00"}}"#,
            "result",
        );
        assert_eq!(g.access_token, "7da3330ec28e3996b6ef4a7e3390ba71");
        assert_eq!(g.expires_in, Some(60));
        assert_eq!(g.account.as_deref(), Some("jimitest"));
        let g: TokenGrant = result(
            r#"{"result":{"accessToken":"t","expiresIn":"7200"}}"#,
            "result",
        );
        assert_eq!(g.expires_in, Some(7200));
        assert!(!format!("{g:?}").contains("\"t\""));
    }

    #[test]
    fn s3_device_list() {
        let d: Vec<Device> = result(
            r#"{"code":0,"message":"success","result":[{"imei":"868120145233604","deviceName":"868120145233604","mcType":"GT300L","mcTypeUseScope":"personal","sim":"415451","expiration":"2037-04-01 23:59:59","activationTime":"2017-04-01 11:02:20","reMark":"test","vehicleName":null,"vehicleIcon":"bus","vehicleNumber":"粤 B3604","vehicleModels":null,"carFrame":"2235","driverName":"driver","driverPhone":"13825036579","enabledFlag":1,"engineNumber":"8565674","deviceGroupId":"b54ab3c430864e31a64e54de44c79a1d","deviceGroup":"default group"}]}"#,
            "result",
        );
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].imei, "868120145233604");
        assert_eq!(d[0].mc_type.as_deref(), Some("GT300L"));
        assert_eq!(d[0].expiration, ts("2037-04-01T23:59:59Z"));
        assert_eq!(d[0].remark.as_deref(), Some("test"));
        assert_eq!(d[0].vehicle_name, None);
        assert_eq!(d[0].vehicle_number.as_deref(), Some("粤 B3604"));
        assert_eq!(d[0].enabled_flag, Some(1));
        assert_eq!(d[0].device_group.as_deref(), Some("default group"));
    }

    #[test]
    fn s4_location_list() {
        let l: Vec<Location> = result(
            r#"{"code":0,"message":"success","result":[{"imei":"860121060369660","deviceName":"VL802-69660","mcType":"VL802","icon":"other","status":"1","posType":"GPS","lat":22.576562,"lng":113.943084,"hbTime":"2026-03-26 11:25:38","accStatus":"1","gpsSignal":"4","powerValue":null,"batteryPowerVal":"0.06","speed":"0","gpsNum":"15","gpsTime":"2026-03-18 10:20:37","direction":"0","activationFlag":"1","expireFlag":"1","electQuantity":"","locDesc":null,"distance":"-1","temperature":null,"trackerOil":"0.00L","trackerOils":null,"currentMileage":"0.6481649691599485","account":"FAETEST","customerName":"FAETEST","state":null,"stateTime":null,"iccid":"898608401024C0669758","mac":"","chargeStatus":null,"shutdown":null,"confidence":null}],"data":null}"#,
            "result",
        );
        let l = &l[0];
        assert_eq!(l.status, Some(true));
        assert_eq!(l.pos_type.as_deref(), Some("GPS"));
        assert_eq!((l.lat, l.lng), (Some(22.576562), Some(113.943084)));
        assert_eq!(l.gps_time, ts("2026-03-18T10:20:37Z"));
        assert_eq!(l.hb_time, ts("2026-03-26T11:25:38Z"));
        assert_eq!(l.acc_status, Some(true));
        assert_eq!(l.speed, Some(0.0));
        assert_eq!(l.gps_num, Some(15));
        assert_eq!(l.gps_signal, Some(4));
        assert_eq!(l.elect_quantity, None);
        assert_eq!(l.battery_power_val, Some(0.06));
        assert_eq!(l.tracker_oil, Some(0.0));
        assert_eq!(l.current_mileage, Some(0.6481649691599485));
        assert_eq!(l.heading(), Some(0.0));
        assert_eq!(l.confidence, None);
        assert!(l.has_fix());
    }

    #[test]
    fn s5_location_get_and_zero_fix() {
        let l: Vec<Location> = result(
            r#"{"code":0,"message":"success","result":[{"imei":"868120145233604","deviceName":"868120145233604","icon":"bus","status":"0","posType":"GPS","lat":22.577282,"lng":113.916604,"hbTime":"2017-04-26 09:14:50","accStatus":"0","speed":"0","gpsNum":"11","gpsTime":"2017-04-26 09:17:46","activationFlag":"1","expireFlag":"1","electQuantity":"60","locDesc":null,"powerValue":null,"temperature":"86.5","trackerOil":null,"currentMileage":"86.5"}]}"#,
            "result",
        );
        assert_eq!(l[0].status, Some(false));
        assert_eq!(l[0].acc_status, Some(false));
        assert_eq!(l[0].elect_quantity, Some(60.0));
        assert_eq!(l[0].temperature, Some(86.5));
        let z: Location = serde_json::from_str(r#"{"imei":"1","lat":0,"lng":0,"direction":"-1"}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!z.has_fix());
        assert_eq!(z.heading(), None);
    }

    #[test]
    fn s6_track() {
        let json = r#"{"code":0,"message":"success","result":[{"lat":22.576607,"lng":113.943084,"gpsTime":"2026-03-18 09:40:46","direction":0,"gpsSpeed":0.0,"posType":1,"satellite":0,"ignition":"ON","accStatus":"ON","gpsMode":0,"confidence":null}],"data":{"mileage":0}}"#;
        let p: Vec<TrackPoint> = result(json, "result");
        assert_eq!(p[0].pos_type.as_deref(), Some("1"));
        assert_eq!(p[0].ignition, Some(true));
        assert_eq!(p[0].acc_status, Some(true));
        assert_eq!(p[0].gps_time, ts("2026-03-18T09:40:46Z"));
        assert!(!p[0].is_retransmitted());
        let d: TrackData = result(json, "data");
        assert_eq!(d.mileage, Some(0.0));
        // S14 (wialon fixture): a TAG point.
        let t: TrackPoint = serde_json::from_str(r#"{"lat":4.0227,"lng":9.703,"gpsTime":"2026-09-30 12:16:29","direction":0,"gpsSpeed":-1.0,"posType":5,"confidence":3,"gpsMode":1}"#).unwrap_or_else(|e| panic!("{e}"));
        assert!(t.is_retransmitted());
        assert_eq!(t.gps_speed, Some(-1.0));
    }

    #[test]
    fn s7_mileage_with_elapsed() {
        let json = r#"{"code":0,"message":"success","result":[{"imei":"3505831983422342","startTime":"2017-04-26 00:00:58","endTime":"2017-04-26 00:03:58","startLat":22.577144898887813,"startLng":113.91674845964586,"endLat":22.677144898887813,"endLng":113.92674845964586,"elapsed":2130,"distance":25000,"avgSpeed":90}],"data":[{"imei":"3505831983422342","totalMileage":60000}]}"#;
        let t: Vec<Trip> = result(json, "result");
        assert_eq!(t[0].run_time_second, Some(2130));
        assert_eq!(t[0].distance_m, Some(25000.0));
        assert_eq!(t[0].avg_speed, Some(90.0));
        assert_eq!(t[0].end_time, ts("2017-04-26T00:03:58Z"));
        let tot: Vec<MileageTotal> = result(json, "data");
        assert_eq!(tot[0].total_mileage_m, Some(60000.0));
        let t: Trip = serde_json::from_str(r#"{"imei":"1","runTimeSecond":"12"}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.run_time_second, Some(12));
    }

    #[test]
    fn s8_alarm() {
        let a: Vec<Alarm> = result(
            r#"{"code":0,"message":"success","result":[{"deviceName":"ABC-34352","imei":"343503422910345","model":"GT06N","account":"test1234","alertTypeId":"1002","alarmTypeName":"ACC On","alertTime":"2019-03-14 14:02:03","positioningTime":"2019-03-14 14:02:03","lat":22.577144898887813,"lng":113.91674845964586,"speed":"10","geoid":"se8yg081p0qh5vnniqrakr1nr0tdh6a0"}]}"#,
            "result",
        );
        assert_eq!(a[0].alert_type_id, "1002");
        assert_eq!(a[0].alarm_type_name.as_deref(), Some("ACC On"));
        assert_eq!(a[0].alert_time, ts("2019-03-14T14:02:03Z"));
        assert_eq!(a[0].speed, Some(10.0));
        let b: Alarm =
            serde_json::from_str(r#"{"imei":"1","alertTypeId":1,"alertTypeName":"SOS"}"#)
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(b.alert_type_id, "1");
        assert_eq!(b.alarm_type_name.as_deref(), Some("SOS"));
    }

    #[test]
    fn s9_parking_iso_times() {
        let p: ParkingPage = result(
            r#"{"code":0,"message":"success","result":null,"data":{"totalTime":"185641","dataTotalRows":"2","rows":[{"imei":"869247060001739","startTime":"2022-12-10T01:05:33.000Z","endTime":"2022-12-10T04:17:48.000Z","durSecond":"11535","lng":113.943093,"lat":22.576748,"addr":"Shigu Road","deviceName":"JC450Pro-01739","mcType":"JC450Pro","acc":"on","stopSecond":"11535"},{"imei":"869247060001739","startTime":"2022-12-09T22:13:16.000Z","endTime":"2022-12-10T01:04:25.000Z","durSecond":"10269","lng":113.943002,"lat":22.57649,"addr":"Shigu Road","deviceName":"JC450Pro-01739","mcType":"JC450Pro","acc":"on","stopSecond":"10269"}]}}"#,
            "data",
        );
        assert_eq!(p.total_time, Some(185641));
        assert_eq!(p.data_total_rows, Some(2));
        assert_eq!(p.rows.len(), 2);
        assert_eq!(p.rows[0].start_time, ts("2022-12-10T01:05:33Z"));
        assert_eq!(p.rows[0].dur_second, Some(11535));
        let empty: ParkingPage =
            serde_json::from_str(r#"{"rows":null}"#).unwrap_or_else(|e| panic!("{e}"));
        assert!(empty.rows.is_empty());
        let one_bad: ParkingPage =
            serde_json::from_str(r#"{"rows":[{"imei":"1"},"x",{"imei":"2"}]}"#)
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(one_bad.rows.len(), 2);
    }

    #[test]
    fn both_spellings_decode_and_the_documented_one_wins() {
        fn de<T: serde::de::DeserializeOwned>(s: &str) -> T {
            serde_json::from_str(s).unwrap_or_else(|e| panic!("{s}: {e}"))
        }
        // Both key orders, from text and from a `Value` (sorted keys).
        for s in [
            r#"{"imei":"1","runTimeSecond":12,"elapsed":"99"}"#,
            r#"{"imei":"1","elapsed":"99","runTimeSecond":12}"#,
        ] {
            assert_eq!(de::<Trip>(s).run_time_second, Some(12));
            let v: serde_json::Value = de(s);
            assert_eq!(de::<Trip>(&v.to_string()).run_time_second, Some(12));
        }
        for s in [
            r#"{"imei":"1","alarmTypeName":"SOS","alertTypeName":"Other"}"#,
            r#"{"imei":"1","alertTypeName":"Other","alarmTypeName":"SOS"}"#,
        ] {
            assert_eq!(de::<Alarm>(s).alarm_type_name.as_deref(), Some("SOS"));
        }
        for s in [
            r#"{"lat":1,"gpsSpeed":3,"speed":"7"}"#,
            r#"{"lat":1,"speed":"7","gpsSpeed":3}"#,
        ] {
            assert_eq!(de::<TrackPoint>(s).gps_speed, Some(3.0));
        }
        // The other spelling fills in when the winner is absent or unreadable.
        assert_eq!(
            de::<Trip>(r#"{"runTimeSecond":"","elapsed":5}"#).run_time_second,
            Some(5)
        );
        assert_eq!(
            de::<Alarm>(r#"{"alarmTypeName":null,"alertTypeName":"SOS"}"#)
                .alarm_type_name
                .as_deref(),
            Some("SOS")
        );
        assert_eq!(
            de::<TrackPoint>(r#"{"gpsSpeed":"n/a","speed":4}"#).gps_speed,
            Some(4.0)
        );
        assert_eq!(de::<TrackPoint>(r#"{"speed":4}"#).gps_speed, Some(4.0));
        assert_eq!(de::<TrackPoint>(r#"{}"#).gps_speed, None);
    }
}
