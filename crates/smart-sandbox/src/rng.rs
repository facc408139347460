//! A tiny deterministic pseudo-random generator (SplitMix64) for the
//! synthetic data set.
//!
//! Why not `rand`: the data set is a test fixture. Its values must be the same
//! for a given seed on every machine and with every version of every
//! dependency, forever, so that tests can pin them and two sandboxes with the
//! same seed serve byte-identical data. `rand`'s `StdRng` explicitly does not
//! promise a stable output stream across versions, and its distributions may
//! change too. SplitMix64 is a few lines, passes BigCrush for this purpose,
//! and is fully specified here. Floating-point values are built only from
//! integer arithmetic and IEEE basic operations (no `ln`/`sin`, whose results
//! may differ between platforms' math libraries).

/// SplitMix64 (Steele, Lea, Flood 2014), as used to seed xoshiro generators.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64 {
    state: u64,
}

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 output function: a strong 64-bit mixer.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// An independent stream for `(seed, key)`, e.g. one per patient, so a
    /// patient's data does not depend on how many patients come before it.
    pub(crate) fn stream(seed: u64, key: u64) -> Self {
        SplitMix64::new(mix(seed ^ mix(key.wrapping_add(GOLDEN_GAMMA))))
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix(self.state)
    }

    /// A uniform integer in `0..n` (`0` when `n` is 0), by multiply-shift
    /// (Lemire); the tiny bias is irrelevant for fixtures.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A uniform integer in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        let span = hi.abs_diff(lo).saturating_add(1);
        lo.wrapping_add(self.below(span) as i64)
    }

    /// A uniform `f64` in `[0, 1)` from the top 53 bits.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniform `f64` in `[lo, hi)`.
    pub(crate) fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// A bell-shaped value around `mean` within `mean ± spread` (the mean of
    /// three uniforms: no transcendental functions, so it is exact everywhere).
    pub(crate) fn around(&mut self, mean: f64, spread: f64) -> f64 {
        let s = self.unit() + self.unit() + self.unit();
        mean + spread * (s / 1.5 - 1.0)
    }

    /// `true` with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// A uniformly chosen element (`None` for an empty slice).
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len() as u64) as usize)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_reference_values() {
        // Reference output of SplitMix64 seeded with 1234567 (from the
        // original C implementation).
        let mut r = SplitMix64::new(1_234_567);
        assert_eq!(r.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(r.next_u64(), 3_203_168_211_198_807_973);
        assert_eq!(r.next_u64(), 9_817_491_932_198_370_423);
    }

    #[test]
    fn ranges_stay_in_bounds() {
        let mut r = SplitMix64::stream(7, 3);
        for _ in 0..1000 {
            let v = r.range(-3, 4);
            assert!((-3..=4).contains(&v));
            let u = r.uniform(2.0, 3.0);
            assert!((2.0..3.0).contains(&u));
            let a = r.around(10.0, 2.0);
            assert!((8.0..=12.0).contains(&a));
            assert!(r.below(5) < 5);
        }
        assert_eq!(r.below(0), 0);
        assert!(r.pick::<u8>(&[]).is_none());
    }

    #[test]
    fn streams_are_independent_and_stable() {
        let a: Vec<u64> = (0..4)
            .map(|k| SplitMix64::stream(42, k).next_u64())
            .collect();
        let b: Vec<u64> = (0..4)
            .map(|k| SplitMix64::stream(42, k).next_u64())
            .collect();
        assert_eq!(a, b);
        assert_ne!(a[0], a[1]);
        assert_ne!(
            SplitMix64::stream(42, 0).next_u64(),
            SplitMix64::stream(43, 0).next_u64()
        );
    }
}
