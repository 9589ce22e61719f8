//! A small, portable, seedable random number generator.
//!
//! We own the generator instead of depending on `rand` so that a seed means the same
//! stream forever: saved models, generated inventories and splits must not change when a
//! dependency changes its algorithm. SplitMix64 seeds xoshiro256**, as its authors advise.

/// SplitMix64 step: used to expand seeds and to mix values into derived seeds.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Derive a child seed from a parent seed and a sequence of labels (node id, target name,
/// tree index...). The result depends only on the inputs, never on timing or threads.
pub fn derive_seed(seed: u64, labels: &[&[u8]]) -> u64 {
    let mut state = seed ^ 0x6E65_7875_736D_6C00; // "nexusml\0"
    let mut acc = splitmix64(&mut state);
    for label in labels {
        // FNV-1a over the label, then mixed so that ("ab","c") differs from ("a","bc").
        let mut h: u64 = 0xCBF2_9CE4_8422_2325;
        for &b in *label {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01B3);
        }
        state ^= h ^ (label.len() as u64).rotate_left(32);
        acc ^= splitmix64(&mut state);
    }
    acc
}

/// xoshiro256** generator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut st = seed;
        let s = [
            splitmix64(&mut st),
            splitmix64(&mut st),
            splitmix64(&mut st),
            splitmix64(&mut st),
        ];
        Rng { s }
    }

    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform float in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in [0, n). `n` must be > 0. Lemire's multiply-shift, unbiased.
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "Rng::below(0)");
        let n = n as u64;
        loop {
            let x = self.next_u64();
            let m = (x as u128) * (n as u128);
            let lo = m as u64;
            // Lemire's test: the threshold `2⁶⁴ mod n` is below n, so `lo >= n` accepts
            // without the division (the same draws are accepted as with it). The linear
            // solver shuffles its coordinates with this every pass.
            if lo >= n || lo >= n.wrapping_neg() % n {
                return (m >> 64) as usize;
            }
        }
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }

    /// A uniformly chosen element. `items` must not be empty.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let a: Vec<u64> = (0..5).scan(Rng::new(7), |r, _| Some(r.next_u64())).collect();
        let b: Vec<u64> = (0..5).scan(Rng::new(7), |r, _| Some(r.next_u64())).collect();
        assert_eq!(a, b);
        assert_ne!(
            a,
            (0..5)
                .scan(Rng::new(8), |r, _| Some(r.next_u64()))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn derived_seeds_separate_labels() {
        let a = derive_seed(42, &[b"ab", b"c"]);
        let b = derive_seed(42, &[b"a", b"bc"]);
        assert_ne!(a, b);
        assert_eq!(a, derive_seed(42, &[b"ab", b"c"]));
        assert_ne!(derive_seed(42, &[b"x"]), derive_seed(43, &[b"x"]));
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut r = Rng::new(1);
        let mut seen = [0usize; 7];
        for _ in 0..7000 {
            seen[r.below(7)] += 1;
        }
        assert!(seen.iter().all(|&c| c > 800), "{seen:?}");
    }
}
