//! A tiny deterministic PRNG (SplitMix64): the fleet must be the same for a
//! given seed in every build, whatever the `rand` crate's version does.

#[derive(Clone, Debug)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    /// A seed mixed from several parts.
    pub fn mixed(parts: &[u64]) -> Self {
        let mut s = SplitMix(0x9E37_79B9_7F4A_7C15);
        let mut acc = 0u64;
        for p in parts {
            s.0 ^= p.wrapping_mul(0xA24B_AED4_963E_E407);
            acc = acc.rotate_left(17) ^ s.next_u64();
        }
        SplitMix(acc)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform integer in `[lo, hi)` (`lo` when the range is empty).
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        let span = (hi - lo) as u64;
        lo + (self.next_u64() % span) as i64
    }

    pub fn range_f(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// A stateless hash of parts to `[0, 1)`, for per-point noise.
pub fn noise(parts: &[u64]) -> f64 {
    SplitMix::mixed(parts).unit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_in_range() {
        let a: Vec<u64> = (0..5)
            .map(|_| SplitMix::mixed(&[1, 2, 3]).next_u64())
            .collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(
            SplitMix::mixed(&[1, 2, 3]).next_u64(),
            SplitMix::mixed(&[1, 2, 4]).next_u64()
        );
        let mut r = SplitMix::new(7);
        for _ in 0..1000 {
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
            let i = r.range(3, 9);
            assert!((3..9).contains(&i));
        }
        assert_eq!(r.range(5, 5), 5);
    }
}
