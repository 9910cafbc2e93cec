//! Retry delays for every loop that reconnects or redelivers (webhooks, the replication
//! follower, the PostgreSQL sink): exponential backoff with jitter, kept in one place so they all
//! behave alike.

use std::time::Duration;

/// Exponential backoff with "equal jitter": each delay is a random duration between half and all
/// of the current step, and the step doubles after each failure up to `max`. The random half
/// spreads out clients that failed together (a restarted primary, a robot's outage) so they do
/// not retry in lockstep; the fixed half keeps a retry from coming back at once.
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    step: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        let initial = initial.max(Duration::from_millis(1));
        let max = max.max(initial);
        Backoff { initial, max, step: initial }
    }

    /// The delay to wait before the next attempt; later calls grow it.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.step;
        self.step = (self.step * 2).min(self.max);
        let half = step / 2;
        let jitter_ms = fastrand::u64(0..=(step - half).as_millis() as u64);
        let delay = half + Duration::from_millis(jitter_ms);
        debug_assert!(delay <= self.max && delay >= half);
        delay
    }

    /// Back to the initial step (after a success).
    pub fn reset(&mut self) {
        self.step = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_within_jitter_and_stop_at_the_max() {
        // Draws many sequences and checks each delay lies in [step/2, step] for the doubling
        // step, capped at the max, and that reset starts over.
        for _ in 0..200 {
            let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
            for step_ms in [100u64, 200, 400, 800, 1000, 1000] {
                let d = backoff.next_delay().as_millis() as u64;
                assert!((step_ms / 2..=step_ms).contains(&d), "{d} ms for step {step_ms}");
            }
            backoff.reset();
            assert!(backoff.next_delay() <= Duration::from_millis(100));
        }
    }

    #[test]
    fn jitter_spreads_the_delays() {
        // Two hundred clients failing together do not all wait the same time.
        let delays: std::collections::BTreeSet<Duration> =
            (0..200).map(|_| Backoff::new(Duration::from_millis(1000), Duration::from_secs(5)).next_delay()).collect();
        assert!(delays.len() > 50, "{} distinct delays", delays.len());
    }
}
