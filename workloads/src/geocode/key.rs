//! The cache key: coordinates rounded to 1e-5 degrees (about 1.1 m), the
//! resolution of `geocode_cache (lat_e5, lng_e5)`. The geocoder is asked
//! about the rounded point, so a cached address always answers exactly the
//! question that was sent.

use std::fmt;

/// A point rounded to 1e-5 degrees, in integer units of 1e-5.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CacheKey {
    pub lat_e5: i32,
    pub lng_e5: i32,
}

const SCALE: f64 = 100_000.0;

impl CacheKey {
    /// The key of a point, or `None` for coordinates that are not a place on
    /// Earth (non-finite, out of range) or exactly (0,0) (a device without a
    /// fix, reference §8.7).
    pub fn from_degrees(lat: f64, lng: f64) -> Option<CacheKey> {
        if !lat.is_finite() || !lng.is_finite() {
            return None;
        }
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lng) {
            return None;
        }
        if lat == 0.0 && lng == 0.0 {
            return None;
        }
        // In range, so |value| ≤ 18_000_000: the casts cannot overflow.
        Some(CacheKey {
            lat_e5: (lat * SCALE).round() as i32,
            lng_e5: (lng * SCALE).round() as i32,
        })
    }

    /// The key of an optional pair (either half missing: no key).
    pub fn from_opt(lat: Option<f64>, lng: Option<f64>) -> Option<CacheKey> {
        CacheKey::from_degrees(lat?, lng?)
    }

    pub fn lat(self) -> f64 {
        f64::from(self.lat_e5) / SCALE
    }

    pub fn lng(self) -> f64 {
        f64::from(self.lng_e5) / SCALE
    }

    /// Latitude as sent to the geocoder: exactly five decimals.
    pub fn lat_param(self) -> String {
        format_e5(self.lat_e5)
    }

    /// Longitude as sent to the geocoder: exactly five decimals.
    pub fn lng_param(self) -> String {
        format_e5(self.lng_e5)
    }
}

/// Integer arithmetic, so no float formatting can print `-0.00000` or round
/// differently from the key.
fn format_e5(v: i32) -> String {
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    format!("{sign}{}.{:05}", a / 100_000, a % 100_000)
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{}", self.lat_param(), self.lng_param())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_to_the_nearest_hundred_thousandth() {
        let k = CacheKey::from_degrees(-1.292_064_9, 36.821_945_1).unwrap();
        assert_eq!(
            k,
            CacheKey {
                lat_e5: -129_206,
                lng_e5: 3_682_195
            }
        );
        assert_eq!(k.lat_param(), "-1.29206");
        assert_eq!(k.lng_param(), "36.82195");
        // Nearest, on both sides of the equator.
        assert_eq!(CacheKey::from_degrees(0.000_006, 1.0).unwrap().lat_e5, 1);
        assert_eq!(CacheKey::from_degrees(-0.000_006, 1.0).unwrap().lat_e5, -1);
        assert_eq!(CacheKey::from_degrees(0.000_004, 1.0).unwrap().lat_e5, 0);
        // Points closer than the resolution share a key.
        assert_eq!(
            CacheKey::from_degrees(22.577_144_898_887_813, 113.916_748_459_645_86),
            CacheKey::from_degrees(22.577_141, 113.916_751)
        );
    }

    #[test]
    fn small_negative_values_keep_their_sign() {
        let k = CacheKey::from_degrees(-0.000_04, -0.5).unwrap();
        assert_eq!(k.lat_param(), "-0.00004");
        assert_eq!(k.lng_param(), "-0.50000");
        assert_eq!(k.to_string(), "-0.00004,-0.50000");
        let z = CacheKey::from_degrees(-0.000_001, 10.0).unwrap();
        assert_eq!(z.lat_param(), "0.00000", "rounds to zero, no negative zero");
    }

    #[test]
    fn not_a_place_has_no_key() {
        assert_eq!(CacheKey::from_degrees(0.0, 0.0), None);
        assert_eq!(CacheKey::from_degrees(f64::NAN, 1.0), None);
        assert_eq!(CacheKey::from_degrees(1.0, f64::INFINITY), None);
        assert_eq!(CacheKey::from_degrees(90.000_1, 1.0), None);
        assert_eq!(CacheKey::from_degrees(1.0, -180.5), None);
        assert_eq!(CacheKey::from_opt(Some(1.0), None), None);
        let edge = CacheKey::from_degrees(-90.0, 180.0).unwrap();
        assert_eq!((edge.lat_e5, edge.lng_e5), (-9_000_000, 18_000_000));
        assert_eq!((edge.lat(), edge.lng()), (-90.0, 180.0));
    }
}
