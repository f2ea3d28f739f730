//! Retry policy: exponential back-off with jitter for transient failures and
//! rate limiting (reference §6: "back off on 1006 … use jitter, and cap it").

use super::error::ErrorClass;
use std::time::Duration;

/// How often and how patiently a call is retried.
///
/// Attempt `n` (1-based) that fails with a retryable class waits
/// `min(max_delay, base · 2^(n-1))` scaled by a jitter factor drawn from
/// `[1 - jitter, 1]` ("equal jitter" when `jitter = 0.5`), where `base` is
/// `rate_limit_base_delay` for 1006/1005 and `base_delay` otherwise.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Total attempts per call, the first included (≥ 1).
    pub max_attempts: u32,
    /// First back-off for transient failures.
    pub base_delay: Duration,
    /// First back-off after a rate-limit answer.
    pub rate_limit_base_delay: Duration,
    /// Upper bound of any single back-off.
    pub max_delay: Duration,
    /// Fraction of the delay that is randomised, in `[0, 1]`.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            rate_limit_base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(30),
            jitter: 0.5,
        }
    }
}

impl RetryPolicy {
    /// A policy with no waiting at all, for tests.
    pub fn immediate(max_attempts: u32) -> Self {
        RetryPolicy {
            max_attempts,
            base_delay: Duration::ZERO,
            rate_limit_base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            jitter: 0.0,
        }
    }

    /// Whether a failure of this class is retried at all.
    pub fn retries(class: ErrorClass) -> bool {
        matches!(class, ErrorClass::Transient | ErrorClass::RateLimited)
    }

    /// Whether attempt `attempt` (1-based) may be followed by another one.
    pub fn may_retry(&self, attempt: u32, class: ErrorClass) -> bool {
        Self::retries(class) && attempt < self.max_attempts.max(1)
    }

    /// The back-off after failed attempt `attempt` (1-based), with `unit`
    /// a uniform random number in `[0, 1)` (deterministic for tests).
    pub fn backoff_with(&self, attempt: u32, class: ErrorClass, unit: f64) -> Duration {
        let base = match class {
            ErrorClass::RateLimited => self.rate_limit_base_delay,
            _ => self.base_delay,
        };
        let exp = attempt.saturating_sub(1).min(30);
        let full = base
            .checked_mul(1u32 << exp)
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        let jitter = self.jitter.clamp(0.0, 1.0);
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.0
        };
        full.mul_f64(1.0 - jitter * unit)
    }

    /// The back-off after failed attempt `attempt`, with random jitter.
    pub fn backoff(&self, attempt: u32, class: ErrorClass) -> Duration {
        use rand::RngExt;
        let unit: f64 = rand::rng().random();
        self.backoff_with(attempt, class, unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(100),
            rate_limit_base_delay: Duration::from_secs(1),
            max_delay: Duration::from_millis(2500),
            jitter: 0.5,
        }
    }

    #[test]
    fn exponential_and_capped() {
        let p = policy();
        let t = ErrorClass::Transient;
        assert_eq!(p.backoff_with(1, t, 0.0), Duration::from_millis(100));
        assert_eq!(p.backoff_with(2, t, 0.0), Duration::from_millis(200));
        assert_eq!(p.backoff_with(3, t, 0.0), Duration::from_millis(400));
        assert_eq!(p.backoff_with(10, t, 0.0), Duration::from_millis(2500));
        assert_eq!(
            p.backoff_with(u32::MAX, t, 0.0),
            Duration::from_millis(2500)
        );
        let r = ErrorClass::RateLimited;
        assert_eq!(p.backoff_with(1, r, 0.0), Duration::from_secs(1));
        assert_eq!(p.backoff_with(2, r, 0.0), Duration::from_secs(2));
        assert_eq!(p.backoff_with(3, r, 0.0), Duration::from_millis(2500));
    }

    #[test]
    fn jitter_stays_within_its_band() {
        let p = policy();
        assert_eq!(
            p.backoff_with(2, ErrorClass::Transient, 1.0),
            Duration::from_millis(100)
        );
        assert_eq!(
            p.backoff_with(2, ErrorClass::Transient, 0.5),
            Duration::from_millis(150)
        );
        for _ in 0..200 {
            let d = p.backoff(2, ErrorClass::Transient);
            assert!(
                d >= Duration::from_millis(100) && d <= Duration::from_millis(200),
                "{d:?}"
            );
        }
        // Garbage in does not escape the band either.
        assert_eq!(
            p.backoff_with(2, ErrorClass::Transient, f64::NAN),
            Duration::from_millis(200)
        );
        assert_eq!(
            p.backoff_with(2, ErrorClass::Transient, 7.0),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn which_failures_are_retried_and_how_often() {
        let p = policy();
        assert!(p.may_retry(1, ErrorClass::Transient));
        assert!(p.may_retry(3, ErrorClass::RateLimited));
        assert!(!p.may_retry(4, ErrorClass::Transient), "4 attempts in all");
        assert!(!p.may_retry(1, ErrorClass::Permanent));
        assert!(
            !p.may_retry(1, ErrorClass::Token),
            "token errors re-login instead"
        );
        assert!(!RetryPolicy::immediate(0).may_retry(1, ErrorClass::Transient));
        assert_eq!(
            RetryPolicy::immediate(3).backoff(2, ErrorClass::RateLimited),
            Duration::ZERO
        );
    }
}
