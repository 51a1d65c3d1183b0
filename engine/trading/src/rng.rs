//! A small seeded PRNG (SplitMix64): the same stream for a seed on every platform and every
//! version of every dependency (exchange-sim's synthetic market, the random-entries baseline).

/// SplitMix64 generator.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform integer in [lo, hi] (inclusive).
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Poisson-distributed count with mean `lambda` (Knuth; small means only).
    pub fn poisson(&mut self, lambda: f64) -> u32 {
        let limit = (-lambda).exp();
        let mut product = self.unit();
        let mut count = 0;
        while product > limit && count < 1_000 {
            count += 1;
            product *= self.unit();
        }
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(Rng::new(7).next_u64(), Rng::new(8).next_u64());
    }

    #[test]
    fn distributions_are_sane() {
        let mut rng = Rng::new(1);
        let n = 20_000;
        let mean_unit: f64 = (0..n).map(|_| rng.unit()).sum::<f64>() / n as f64;
        assert!((mean_unit - 0.5).abs() < 0.02, "{mean_unit}");
        let mean_poisson: f64 = (0..n).map(|_| f64::from(rng.poisson(2.0))).sum::<f64>() / n as f64;
        assert!((mean_poisson - 2.0).abs() < 0.1, "{mean_poisson}");
        let var_normal: f64 = (0..n).map(|_| rng.normal().powi(2)).sum::<f64>() / n as f64;
        assert!((var_normal - 1.0).abs() < 0.1, "{var_normal}");
        assert!((0..1000).all(|_| (3..=5).contains(&rng.range(3, 5))));
    }
}
