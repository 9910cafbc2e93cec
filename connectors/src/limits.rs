//! The pacing every platform call goes through: a token bucket for the platform's request rate,
//! and exponential backoff with jitter for retries.

use std::time::Duration;

use tokio::time::Instant;

/// A token bucket: `rate` requests per second on average, bursts of at most `burst`. One per
/// shop, shared by its push, pull and confirmation tasks (the platform counts them together).
#[derive(Debug)]
pub struct RateLimiter {
    state: tokio::sync::Mutex<Bucket>,
    rate: f64,
    burst: f64,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    /// `rate` > 0 requests per second; the burst is one second's worth (at least one request).
    pub fn new(rate: f64) -> RateLimiter {
        debug_assert!(rate > 0.0, "rate {rate}");
        let burst = rate.max(1.0);
        RateLimiter { state: tokio::sync::Mutex::new(Bucket { tokens: burst, updated: Instant::now() }), rate, burst }
    }

    /// Wait until a request may be sent, and take its token. Callers queue fairly on the lock.
    pub async fn acquire(&self) {
        let mut bucket = self.state.lock().await;
        loop {
            let now = Instant::now();
            let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
            bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
            bucket.updated = now;
            if bucket.tokens >= 1.0 {
                bucket.tokens -= 1.0;
                return;
            }
            let wait = (1.0 - bucket.tokens) / self.rate;
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        }
    }

    /// The platform said "throttled": spend the rest of this second's tokens.
    pub async fn back_off(&self) {
        let mut bucket = self.state.lock().await;
        bucket.tokens = bucket.tokens.min(0.0) - self.rate.min(self.burst);
        bucket.updated = Instant::now();
    }
}

/// The delay before retry number `attempt` (1 = the first retry): `initial * 2^(attempt-1)`,
/// capped at `max`, then a uniformly random 50-100 % of it, so shops that failed together do not
/// retry together.
pub fn backoff(attempt: u32, initial: Duration, max: Duration) -> Duration {
    let exponent = attempt.saturating_sub(1).min(20);
    let full = initial.saturating_mul(1u32 << exponent).min(max);
    let jitter = 0.5 + fastrand::f64() * 0.5;
    full.mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_bucket_paces_requests_at_the_rate() {
        // 20/s with a burst of 20: 30 acquisitions need 10 more tokens, so at least 0.5 s (the upper
        // bound is loose: the machine is shared).
        let limiter = RateLimiter::new(20.0);
        let started = Instant::now();
        for _ in 0..30 {
            limiter.acquire().await;
        }
        let elapsed = started.elapsed().as_secs_f64();
        assert!((0.45..3.0).contains(&elapsed), "{elapsed}");
    }

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter() {
        // Each delay lies in [50 %, 100 %] of min(initial * 2^(n-1), max).
        let (initial, max) = (Duration::from_millis(100), Duration::from_secs(1));
        for attempt in 1..10 {
            let full = initial.saturating_mul(1 << (attempt - 1)).min(max);
            let d = backoff(attempt, initial, max);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?} vs {full:?}");
        }
    }
}
