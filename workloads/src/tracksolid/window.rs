//! Time windows and IMEI batches.

use super::error::TracksolidError;
use jiff::{SignedDuration, Timestamp};
use std::time::Duration;

/// Splits `[begin, end]` into consecutive windows no longer than `max`.
/// Neighbours share their boundary instant (whether the API's ends are
/// inclusive is undocumented, so nothing may fall between two windows);
/// rows stamped exactly on a boundary can therefore come back twice, and
/// the helpers that join windows drop such duplicates.
pub fn split_window(
    begin: Timestamp,
    end: Timestamp,
    max: Duration,
) -> Result<Vec<(Timestamp, Timestamp)>, TracksolidError> {
    if end < begin {
        return Err(TracksolidError::InvalidRequest(format!(
            "window ends ({end}) before it begins ({begin})"
        )));
    }
    let step = SignedDuration::try_from(max)
        .ok()
        .filter(|d| d.as_secs() >= 1)
        .ok_or_else(|| TracksolidError::InvalidRequest("window length below one second".into()))?;
    let mut out = Vec::new();
    let mut from = begin;
    loop {
        let to = match from.checked_add(step) {
            Ok(t) if t < end => t,
            _ => end,
        };
        out.push((from, to));
        if to >= end {
            return Ok(out);
        }
        from = to;
    }
}

/// The length of a window, as a `Duration` (zero when reversed).
pub fn window_len(begin: Timestamp, end: Timestamp) -> Duration {
    Duration::try_from(end.duration_since(begin)).unwrap_or(Duration::ZERO)
}

/// The midpoint of a window (rounded down to the second).
pub fn midpoint(begin: Timestamp, end: Timestamp) -> Timestamp {
    let half = end.duration_since(begin) / 2;
    let half = SignedDuration::from_secs(half.as_secs());
    begin.checked_add(half).unwrap_or(begin)
}

/// Splits IMEIs into batches of at most `max` (at least 1), skipping blanks.
pub fn batches<S: AsRef<str>>(imeis: &[S], max: usize) -> Vec<Vec<String>> {
    let clean: Vec<String> = imeis
        .iter()
        .map(|s| s.as_ref().trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    clean.chunks(max.max(1)).map(<[String]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn splits_into_contiguous_windows() {
        let w = split_window(
            ts("2026-01-01T00:00:00Z"),
            ts("2026-01-16T12:00:00Z"),
            Duration::from_secs(7 * 86400),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            w,
            vec![
                (ts("2026-01-01T00:00:00Z"), ts("2026-01-08T00:00:00Z")),
                (ts("2026-01-08T00:00:00Z"), ts("2026-01-15T00:00:00Z")),
                (ts("2026-01-15T00:00:00Z"), ts("2026-01-16T12:00:00Z")),
            ]
        );
        let exact = split_window(
            ts("2026-01-01T00:00:00Z"),
            ts("2026-01-08T00:00:00Z"),
            Duration::from_secs(7 * 86400),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(exact.len(), 1);
        let point = split_window(
            ts("2026-01-01T00:00:00Z"),
            ts("2026-01-01T00:00:00Z"),
            Duration::from_secs(60),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(point.len(), 1);
    }

    #[test]
    fn rejects_reversed_windows_and_zero_steps() {
        assert!(
            split_window(
                ts("2026-01-02T00:00:00Z"),
                ts("2026-01-01T00:00:00Z"),
                Duration::from_secs(60)
            )
            .is_err()
        );
        assert!(
            split_window(
                ts("2026-01-01T00:00:00Z"),
                ts("2026-01-02T00:00:00Z"),
                Duration::ZERO
            )
            .is_err()
        );
    }

    #[test]
    fn batches_of_at_most_max() {
        let imeis: Vec<String> = (0..250).map(|i| format!("{i:015}")).collect();
        let b = batches(&imeis, 100);
        assert_eq!(
            b.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![100, 100, 50]
        );
        assert_eq!(b[2][49], imeis[249]);
        assert!(batches::<&str>(&[], 100).is_empty());
        assert_eq!(batches(&["1", " ", "2"], 0).len(), 2);
    }

    #[test]
    fn midpoints() {
        assert_eq!(
            midpoint(ts("2026-01-01T00:00:00Z"), ts("2026-01-01T00:00:03Z")),
            ts("2026-01-01T00:00:01Z")
        );
        assert_eq!(
            window_len(ts("2026-01-01T00:00:03Z"), ts("2026-01-01T00:00:00Z")),
            Duration::ZERO
        );
    }
}
