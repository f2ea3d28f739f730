//! The geocoder's rate limit: request starts at least `1 / rate` apart
//! (Nominatim's usage policy allows one request per second). Only requests
//! that go to the geocoder take a slot; cache hits never wait.

use std::time::Duration;
use tokio::time::Instant;

/// Spaces request starts `interval` apart. The first request goes at once.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    interval: Duration,
    next: Option<Instant>,
}

impl RateLimiter {
    /// At most `requests_per_second` request starts per second (0 is taken
    /// as 1: there is no "unlimited").
    pub fn per_second(requests_per_second: u32) -> RateLimiter {
        let rate = requests_per_second.max(1);
        RateLimiter::with_interval(Duration::from_secs(1) / rate)
    }

    pub fn with_interval(interval: Duration) -> RateLimiter {
        RateLimiter {
            interval,
            next: None,
        }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Takes the next slot for a request wanting to start at `now`: the
    /// instant it may start (`now`, or later when the previous start was less
    /// than an interval ago).
    pub fn reserve(&mut self, now: Instant) -> Instant {
        let at = match self.next {
            Some(next) if next > now => next,
            _ => now,
        };
        self.next = Some(at + self.interval);
        at
    }

    /// Waits for the next slot.
    pub async fn wait(&mut self) {
        let at = self.reserve(Instant::now());
        tokio::time::sleep_until(at).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_one_interval_apart() {
        let t0 = Instant::now();
        let mut l = RateLimiter::per_second(1);
        assert_eq!(l.interval(), Duration::from_secs(1));
        // A burst of three at t0: now, +1 s, +2 s.
        assert_eq!(l.reserve(t0), t0);
        assert_eq!(l.reserve(t0), t0 + Duration::from_secs(1));
        assert_eq!(l.reserve(t0), t0 + Duration::from_secs(2));
        // Asking later than the next slot: no wait, and the spacing restarts.
        let late = t0 + Duration::from_secs(10);
        assert_eq!(l.reserve(late), late);
        assert_eq!(
            l.reserve(late + Duration::from_millis(300)),
            late + Duration::from_secs(1)
        );
    }

    #[test]
    fn rates() {
        assert_eq!(
            RateLimiter::per_second(4).interval(),
            Duration::from_millis(250)
        );
        assert_eq!(
            RateLimiter::per_second(0).interval(),
            Duration::from_secs(1),
            "0 means 1, never unlimited"
        );
        assert_eq!(
            RateLimiter::per_second(3).interval(),
            Duration::from_nanos(333_333_333)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn waits_for_the_slot() {
        let t0 = Instant::now();
        let mut l = RateLimiter::per_second(2);
        let mut starts = Vec::new();
        for _ in 0..5 {
            l.wait().await;
            starts.push(Instant::now() - t0);
        }
        let ms: Vec<u128> = starts.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, vec![0, 500, 1000, 1500, 2000]);
    }
}
