//! Typed events from raw push items. Items of kinds we do not type (or that
//! lack a required field) are still stored raw in `push_events`; typing only
//! decides which other table they also go to.

use super::kind::PushKind;
use super::lenient::{float, imei, int, string, time};
use jiff::Timestamp;
use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
pub struct GpsFix {
    pub imei: String,
    pub gps_time: Timestamp,
    pub gate_time: Option<Timestamp>,
    pub lat: f64,
    pub lng: f64,
    /// km/h
    pub speed: Option<f64>,
    pub direction: Option<i64>,
    /// 0 real-time, 1 re-uploaded (buffered, late): never moves the latest
    /// position backwards.
    pub gps_mode: i64,
    pub acc: Option<i64>,
    pub satellites: Option<i64>,
    pub altitude: Option<f64>,
    pub status: Option<i64>,
    /// Cumulative odometer in metres.
    pub distance: Option<i64>,
    /// 1 GPS, 2 LBS, 3 Wi-Fi.
    pub post_type: Option<i64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Alarm {
    pub imei: String,
    /// `alertType` (per-type push) or `alarmType` (Open-API), as text: both
    /// numeric codes and platform names such as `overSpeed` occur.
    pub alarm_type: String,
    pub alarm_time: Timestamp,
    pub alarm_name: Option<String>,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub speed: Option<f64>,
    /// 0 JIMI, 1 JT/T 808.
    pub msg_class: Option<i64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Heartbeat {
    pub imei: String,
    pub gate_time: Timestamp,
    pub power_level: Option<i64>,
    pub gsm_sign: Option<i64>,
    pub acc: Option<i64>,
    pub oil_ele: Option<i64>,
    pub gps_pos: Option<i64>,
    pub power_status: Option<i64>,
    pub fortify: Option<i64>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Gps(GpsFix),
    Alarm(Alarm),
    Heartbeat(Heartbeat),
    /// Stored in `push_events` only.
    Raw,
}

/// Why a known kind could not be typed (the item is still kept raw).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Untyped(pub &'static str);

fn gps(item: &Value) -> Result<GpsFix, Untyped> {
    Ok(GpsFix {
        imei: imei(item).ok_or(Untyped("missing imei"))?,
        gps_time: time(item, "gpsTime").ok_or(Untyped("missing or bad gpsTime"))?,
        gate_time: time(item, "gateTime"),
        lat: float(item, "lat").ok_or(Untyped("missing lat"))?,
        lng: float(item, "lng").ok_or(Untyped("missing lng"))?,
        speed: float(item, "gpsSpeed"),
        direction: int(item, "direction"),
        gps_mode: int(item, "gpsMode").unwrap_or(0),
        acc: int(item, "acc"),
        satellites: int(item, "satelliteNum"),
        altitude: float(item, "altitude"),
        status: int(item, "status"),
        distance: int(item, "distance"),
        post_type: int(item, "postType"),
    })
}

/// `/pushalarm`: envelope `imei`, `msgClass`, `gateTime`, and `msg` with the
/// alarm; the time is `msg.alarmTime`, falling back to `gateTime`.
fn push_alarm(item: &Value) -> Result<Alarm, Untyped> {
    let msg = item.get("msg").filter(|m| m.is_object()).unwrap_or(item);
    Ok(Alarm {
        imei: imei(item).ok_or(Untyped("missing imei"))?,
        alarm_type: string(msg, "alertType")
            .or_else(|| string(msg, "alarmType"))
            .ok_or(Untyped("missing alertType"))?,
        alarm_time: time(msg, "alarmTime")
            .or_else(|| time(item, "gateTime"))
            .ok_or(Untyped("missing or bad alarmTime"))?,
        alarm_name: string(msg, "alarmName"),
        lat: float(msg, "lat"),
        lng: float(msg, "lng"),
        speed: float(msg, "gpsSpeed"),
        msg_class: int(item, "msgClass"),
    })
}

/// Open-API `jimi.push.device.alarm`: flat `imei`, `alarmType`, `alarmName`,
/// `lat`, `lng`, `alarmTime`.
fn open_api_alarm(item: &Value) -> Result<Alarm, Untyped> {
    Ok(Alarm {
        imei: imei(item).ok_or(Untyped("missing imei"))?,
        alarm_type: string(item, "alarmType")
            .or_else(|| string(item, "alertType"))
            .ok_or(Untyped("missing alarmType"))?,
        alarm_time: time(item, "alarmTime").ok_or(Untyped("missing or bad alarmTime"))?,
        alarm_name: string(item, "alarmName"),
        lat: float(item, "lat"),
        lng: float(item, "lng"),
        speed: float(item, "speed").or_else(|| float(item, "gpsSpeed")),
        msg_class: None,
    })
}

fn heartbeat(item: &Value) -> Result<Heartbeat, Untyped> {
    Ok(Heartbeat {
        imei: imei(item).ok_or(Untyped("missing imei"))?,
        gate_time: time(item, "gateTime").ok_or(Untyped("missing or bad gateTime"))?,
        power_level: int(item, "powerLevel"),
        gsm_sign: int(item, "gsmSign"),
        acc: int(item, "acc"),
        oil_ele: int(item, "oilEle"),
        gps_pos: int(item, "gpsPos"),
        power_status: int(item, "powerStatus"),
        fortify: int(item, "fortify"),
    })
}

/// Type one raw item of a push of `kind`.
pub fn classify(kind: &PushKind, item: &Value) -> Result<Event, Untyped> {
    match kind {
        PushKind::Gps => gps(item).map(Event::Gps),
        PushKind::Alarm => push_alarm(item).map(Event::Alarm),
        PushKind::OpenApiAlarm => open_api_alarm(item).map(Event::Alarm),
        PushKind::Heartbeat => heartbeat(item).map(Event::Heartbeat),
        _ => Ok(Event::Raw),
    }
}

/// The time an item says it happened, for the time guard (GPS fix time,
/// alarm time, gateway time).
pub fn event_time(event: &Event, item: &Value) -> Option<Timestamp> {
    match event {
        Event::Gps(g) => Some(g.gps_time),
        Event::Alarm(a) => Some(a.alarm_time),
        Event::Heartbeat(h) => Some(h.gate_time),
        Event::Raw => time(item, "gateTime").or_else(|| time(item, "gpsTime")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gps_sample_from_the_reference() {
        let item = json!({"deviceImei":"868120246598152","gpsTime":"2023-01-13 02:24:37","gateTime":"2023-01-13 02:24:38","satelliteNum":7,"lng":113.942885,"lat":22.576539,"gpsMode":0,"gpsSpeed":0,"direction":155,"acc":1,"postType":1,"altitude":0,"distance":698,"status":262147});
        let Event::Gps(g) = classify(&PushKind::Gps, &item).unwrap() else {
            panic!()
        };
        assert_eq!(g.imei, "868120246598152");
        assert_eq!(
            g.gps_time,
            "2023-01-13T02:24:37Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!((g.lat, g.lng), (22.576539, 113.942885));
        assert_eq!(
            (g.gps_mode, g.distance, g.status),
            (0, Some(698), Some(262147))
        );
    }

    #[test]
    fn both_alarm_samples_from_the_reference() {
        let jimi = json!({"gateTime":"2025-01-07 11:06:05","imei":"752533678900242","msg":{"alertType":212,"lng":113.943102,"alarmTime":"2024-12-31 03:26:34","gpsSpeed":0.0,"voltage":114.0,"satelliteNum":15,"file":"EVENT_864993060084267_00000000_2024_11_21_17_26_12_I_102.ts","deviceImei":"752533678900242","driverId":"04sl","driverName":"SL","alertValue":1,"lat":22.576649},"msgClass":0,"type":"DEVICE"});
        let Event::Alarm(a) = classify(&PushKind::Alarm, &jimi).unwrap() else {
            panic!()
        };
        assert_eq!(
            (a.imei.as_str(), a.alarm_type.as_str()),
            ("752533678900242", "212")
        );
        assert_eq!(
            a.alarm_time,
            "2024-12-31T03:26:34Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(a.msg_class, Some(0));

        let jtt = json!({"gateTime":"2025-01-07 11:06:05","imei":"869247060081665","msg":{"alertType":"256","standardAlarmValue":2048,"deviceImei":"869247060081665","lng":113.943261,"alarmTime":"2025-01-07 11:06:01","gpsSpeed":0.0,"alarmSerialNo":25075,"lat":22.576697},"msgClass":1,"type":"DEVICE"});
        let Event::Alarm(a) = classify(&PushKind::Alarm, &jtt).unwrap() else {
            panic!()
        };
        assert_eq!((a.alarm_type.as_str(), a.msg_class), ("256", Some(1)));
    }

    #[test]
    fn open_api_alarm_and_heartbeat() {
        let item = json!({"imei":"1","alarmType":"overSpeed","alarmName":"Overspeed","lat":"22.5","lng":113.9,"alarmTime":"2025-01-07 11:06:01"});
        let Event::Alarm(a) = classify(&PushKind::OpenApiAlarm, &item).unwrap() else {
            panic!()
        };
        assert_eq!((a.alarm_type.as_str(), a.lat), ("overSpeed", Some(22.5)));
        let hb = json!({"deviceImei":"868120246598152","gateTime":"2026-01-13 02:24:37","powerLevel":90,"gsmSign":"80"});
        let Event::Heartbeat(h) = classify(&PushKind::Heartbeat, &hb).unwrap() else {
            panic!()
        };
        assert_eq!((h.power_level, h.gsm_sign), (Some(90), Some(80)));
    }

    #[test]
    fn missing_fields_are_untyped_and_other_kinds_raw() {
        assert_eq!(
            classify(&PushKind::Gps, &json!({"deviceImei": "1"})),
            Err(Untyped("missing or bad gpsTime"))
        );
        assert_eq!(
            classify(&PushKind::Alarm, &json!({"msg": {}})),
            Err(Untyped("missing imei"))
        );
        assert_eq!(
            classify(&PushKind::Obd, &json!({"anything": 1})),
            Ok(Event::Raw)
        );
    }
}
