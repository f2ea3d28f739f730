//! Asking the geocoder about the keys the cache did not know: one request at
//! a time, each start spaced by the [`RateLimiter`], within a per-run budget,
//! giving up after a run of consecutive failures (the service is down: the
//! remaining trips keep empty addresses and are filled by a later run).
//!
//! Runs with no database connection: the caller reads the cache before and
//! writes the answers after.

use super::{CacheKey, RateLimiter, ReverseGeocoder};
use std::collections::BTreeMap;
use tracing::{debug, warn};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResolveLimits {
    /// Requests per run at most (at 1/s, 600 is ten minutes).
    pub max_requests: usize,
    /// Stop after this many failures in a row.
    pub max_consecutive_failures: usize,
}

impl Default for ResolveLimits {
    fn default() -> Self {
        ResolveLimits {
            max_requests: 600,
            max_consecutive_failures: 3,
        }
    }
}

/// What the geocoder said.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolved {
    /// Answers to cache: `None` = no address at that point.
    pub answers: BTreeMap<CacheKey, Option<String>>,
    /// Requests sent.
    pub requests: usize,
    /// Requests that failed (not cached; asked again next run).
    pub failed: usize,
    /// Keys not asked: over the budget or after giving up.
    pub skipped: usize,
}

/// Resolves `keys` (in order, each once) through `geocoder`.
pub async fn resolve<G: ReverseGeocoder>(
    geocoder: &G,
    limiter: &mut RateLimiter,
    keys: &[CacheKey],
    limits: ResolveLimits,
) -> Resolved {
    let mut out = Resolved::default();
    let mut failures_in_a_row = 0;
    for (i, &key) in keys.iter().enumerate() {
        if out.answers.contains_key(&key) {
            continue;
        }
        if out.requests >= limits.max_requests
            || failures_in_a_row >= limits.max_consecutive_failures.max(1)
        {
            out.skipped = keys.len() - i;
            break;
        }
        limiter.wait().await;
        out.requests += 1;
        match geocoder.reverse(key).await {
            Ok(address) => {
                debug!(%key, found = address.is_some(), "geocoded");
                failures_in_a_row = 0;
                out.answers.insert(key, address);
            }
            Err(e) => {
                warn!(%key, error = %e, "reverse geocoding failed");
                failures_in_a_row += 1;
                out.failed += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::GeocodeError;
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;
    use tokio::time::Instant;

    /// A fake: answers from a function of the key, records when it was asked.
    struct Fake<F> {
        answer: F,
        latency: Duration,
        asked: Mutex<Vec<(CacheKey, Instant)>>,
    }

    impl<F> ReverseGeocoder for Fake<F>
    where
        F: Fn(CacheKey) -> Result<Option<String>, GeocodeError> + Sync,
    {
        async fn reverse(&self, at: CacheKey) -> Result<Option<String>, GeocodeError> {
            self.asked
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((at, Instant::now()));
            tokio::time::sleep(self.latency).await;
            (self.answer)(at)
        }
    }

    fn fake<F>(answer: F, latency_ms: u64) -> Fake<F> {
        Fake {
            answer,
            latency: Duration::from_millis(latency_ms),
            asked: Mutex::new(Vec::new()),
        }
    }

    fn keys(n: i32) -> Vec<CacheKey> {
        (1..=n)
            .map(|i| CacheKey {
                lat_e5: i,
                lng_e5: -i,
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn asks_each_key_once_at_the_rate() {
        let g = fake(|k: CacheKey| Ok(Some(format!("road {}", k.lat_e5))), 100);
        let mut l = RateLimiter::per_second(2);
        let mut ks = keys(4);
        ks.push(ks[0]);
        let r = resolve(&g, &mut l, &ks, ResolveLimits::default()).await;
        assert_eq!(r.requests, 4, "the repeated key is asked once");
        assert_eq!(r.answers.len(), 4);
        assert_eq!(r.answers[&ks[2]].as_deref(), Some("road 3"));
        let asked = g.asked.lock().unwrap().clone();
        let gaps: Vec<u128> = asked
            .windows(2)
            .map(|w| (w[1].1 - w[0].1).as_millis())
            .collect();
        // 100 ms latency < 500 ms interval: the limiter sets the pace.
        assert_eq!(gaps, vec![500, 500, 500]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_geocoder_is_not_waited_for_twice() {
        let g = fake(|_| Ok(None), 1500);
        let mut l = RateLimiter::per_second(1);
        let r = resolve(&g, &mut l, &keys(3), ResolveLimits::default()).await;
        assert_eq!(r.answers.values().filter(|a| a.is_none()).count(), 3);
        let asked = g.asked.lock().unwrap().clone();
        assert_eq!((asked[2].1 - asked[0].1).as_millis(), 3000);
    }

    #[tokio::test(start_paused = true)]
    async fn budget_and_giving_up() {
        let g = fake(|_| Ok(Some("x".to_owned())), 0);
        let mut l = RateLimiter::per_second(100);
        let limits = ResolveLimits {
            max_requests: 3,
            max_consecutive_failures: 3,
        };
        let r = resolve(&g, &mut l, &keys(5), limits).await;
        assert_eq!((r.requests, r.answers.len(), r.skipped), (3, 3, 2));

        let down = fake(|_| Err(GeocodeError::HttpStatus(503)), 0);
        let r = resolve(&down, &mut l, &keys(10), ResolveLimits::default()).await;
        assert_eq!((r.requests, r.failed, r.skipped), (3, 3, 7));
        assert!(r.answers.is_empty(), "failures are not cached");

        // A failure between successes does not count towards giving up.
        let flaky = fake(
            |k: CacheKey| {
                if k.lat_e5 % 2 == 0 {
                    Err(GeocodeError::Transport("reset".into()))
                } else {
                    Ok(Some("y".into()))
                }
            },
            0,
        );
        let r = resolve(&flaky, &mut l, &keys(6), ResolveLimits::default()).await;
        assert_eq!((r.requests, r.failed, r.answers.len()), (6, 3, 3));
    }
}
