//! Deterministic randomness: SplitMix64 (tiny, fast, seedable per connection) and a Zipf sampler
//! over a precomputed CDF. Same seed, same numbers, on every platform.

/// SplitMix64 (Steele, Lea, Flood 2014).
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.state)
    }

    /// Uniform in `0..n` (`n > 0`), by multiply-shift (bias below 2^-32 for our ranges).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n.max(1))) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    #[inline]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    #[inline]
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// The SplitMix64 finaliser: a good 64-bit mixer.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Derive an independent stream seed from a run seed and a stream number.
pub fn stream_seed(seed: u64, stream: u64) -> u64 {
    mix64(seed ^ mix64(stream.wrapping_add(0x5EED)))
}

/// Zipf(s) over `0..n` (rank 0 the most popular); `s == 0` is uniform and needs no table.
#[derive(Clone, Debug)]
pub struct Zipf {
    n: u32,
    cdf: Vec<f64>,
}

impl Zipf {
    pub fn new(n: u32, s: f64) -> Zipf {
        let n = n.max(1);
        if s <= 0.0 {
            return Zipf { n, cdf: Vec::new() };
        }
        let mut cdf = Vec::with_capacity(n as usize);
        let mut total = 0.0f64;
        for k in 1..=n {
            total += 1.0 / f64::from(k).powf(s);
            cdf.push(total);
        }
        for c in &mut cdf {
            *c /= total;
        }
        Zipf { n, cdf }
    }

    pub fn n(&self) -> u32 {
        self.n
    }

    #[inline]
    pub fn sample(&self, rng: &mut SplitMix64) -> u32 {
        if self.cdf.is_empty() {
            return rng.below(u64::from(self.n)) as u32;
        }
        let u = rng.unit();
        let i = self.cdf.partition_point(|c| *c < u);
        (i as u32).min(self.n - 1)
    }
}
