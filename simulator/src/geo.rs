//! Just enough geometry for vehicles on a sphere.

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LatLng {
    pub lat: f64,
    pub lng: f64,
}

const EARTH_RADIUS_M: f64 = 6_371_000.0;
const M_PER_DEG_LAT: f64 = 111_320.0;

pub fn haversine_m(a: LatLng, b: LatLng) -> f64 {
    let (la1, la2) = (a.lat.to_radians(), b.lat.to_radians());
    let dla = la2 - la1;
    let dln = (b.lng - a.lng).to_radians();
    let h = (dla / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dln / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().asin()
}

/// Initial bearing from `a` to `b`, degrees in `[0, 360)`.
pub fn bearing_deg(a: LatLng, b: LatLng) -> f64 {
    let (la1, la2) = (a.lat.to_radians(), b.lat.to_radians());
    let dln = (b.lng - a.lng).to_radians();
    let y = dln.sin() * la2.cos();
    let x = la1.cos() * la2.sin() - la1.sin() * la2.cos() * dln.cos();
    (y.atan2(x).to_degrees() + 360.0) % 360.0
}

/// Linear interpolation (fine over a few tens of km).
pub fn lerp(a: LatLng, b: LatLng, f: f64) -> LatLng {
    let f = f.clamp(0.0, 1.0);
    LatLng {
        lat: a.lat + (b.lat - a.lat) * f,
        lng: a.lng + (b.lng - a.lng) * f,
    }
}

/// The point `dist_m` from `from` towards `bearing` degrees (flat approximation).
pub fn offset(from: LatLng, bearing: f64, dist_m: f64) -> LatLng {
    let th = bearing.to_radians();
    let dlat = dist_m * th.cos() / M_PER_DEG_LAT;
    let dlng = dist_m * th.sin() / (M_PER_DEG_LAT * from.lat.to_radians().cos().max(0.01));
    LatLng {
        lat: from.lat + dlat,
        lng: from.lng + dlng,
    }
}

/// Rounds to 6 decimals, like the API's coordinates.
pub fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_and_bearings() {
        let a = LatLng {
            lat: -1.2921,
            lng: 36.8219,
        };
        let b = offset(a, 90.0, 10_000.0);
        assert!((haversine_m(a, b) - 10_000.0).abs() < 50.0);
        assert!((bearing_deg(a, b) - 90.0).abs() < 0.5);
        assert_eq!(lerp(a, b, 0.0), a);
        assert_eq!(lerp(a, b, 2.0), b);
        assert_eq!(round6(1.23456789), 1.234568);
    }
}
