//! Reconnect delays: exponential backoff with full jitter.

use std::time::Duration;

/// Exponential backoff with full jitter: before attempt `n` (counting from 0 after the last
/// success) the client waits a uniformly random time in `[0, min(max, initial × 2ⁿ)]`, so that
/// thousands of clients dropped at once (a relay restart) do not reconnect in lockstep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first delay.
    pub initial: Duration,
    /// The largest delay.
    pub max: Duration,
}

impl Default for Backoff {
    /// 250 ms initial ceiling, 30 s maximum.
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The ceiling of the delay before attempt `attempt`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// A random delay for attempt `attempt`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::random_range(0..=millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_up_to_the_maximum_and_delays_stay_below_them() {
        let backoff = Backoff::default();
        assert_eq!(backoff.ceiling(0), Duration::from_millis(250));
        assert_eq!(backoff.ceiling(3), Duration::from_secs(2));
        assert_eq!(backoff.ceiling(40), Duration::from_secs(30));
        let delays: Vec<_> = (0..200).map(|_| backoff.delay(4)).collect();
        assert!(delays.iter().all(|delay| *delay <= Duration::from_secs(4)));
        // Jitter: the delays are spread out, not all equal.
        assert!(delays.iter().any(|delay| *delay != delays[0]));
    }
}
