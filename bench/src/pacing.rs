//! Open-loop pacing: when each message is due, independent of when earlier ones completed.
//!
//! A sender offered `rate` messages per second sends message `k` at `start + offset + k /
//! rate`. If it falls behind (the server or its own backpressure held it up), it sends every
//! overdue message at once and stamps each with its **scheduled** time, so the latency measured
//! at the receiver includes the time the message waited to be sent: no coordinated omission.
//! The `offset` spreads senders evenly over one interval so they do not fire in lockstep.

use std::time::Duration;

/// The schedule of one open-loop sender.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// When message 0 is due, nanoseconds since the base instant.
    pub first_nanos: u64,
    /// Nanoseconds between two messages.
    pub interval_nanos: f64,
}

impl Schedule {
    /// Sender `index` of `senders` sharing `total_rate` messages per second, starting at
    /// `start_nanos`.
    pub fn new(start_nanos: u64, total_rate: f64, senders: usize, index: usize) -> Schedule {
        let senders = senders.max(1) as f64;
        let per_sender = (total_rate / senders).max(1e-9);
        let interval_nanos = 1e9 / per_sender;
        let offset = interval_nanos * (index as f64 % senders) / senders;
        Schedule {
            first_nanos: start_nanos + offset as u64,
            interval_nanos,
        }
    }

    /// When message `k` is due.
    pub fn due(&self, k: u64) -> u64 {
        self.first_nanos + (k as f64 * self.interval_nanos) as u64
    }

    /// How many messages are due at `now_nanos` (messages `0..n`).
    pub fn due_by(&self, now_nanos: u64) -> u64 {
        if now_nanos < self.first_nanos {
            return 0;
        }
        ((now_nanos - self.first_nanos) as f64 / self.interval_nanos) as u64 + 1
    }

    /// The interval as a [`Duration`].
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(self.interval_nanos as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_is_shared_and_senders_are_staggered() {
        // 1000 msg/s over 10 senders: 100/s each, 10 ms apart, offsets 1 ms apart.
        let a = Schedule::new(0, 1000.0, 10, 0);
        let b = Schedule::new(0, 1000.0, 10, 1);
        assert_eq!(a.interval(), Duration::from_millis(10));
        assert_eq!(a.due(0), 0);
        assert_eq!(a.due(3), 30_000_000);
        assert_eq!(b.due(0), 1_000_000);
    }

    #[test]
    fn due_by_counts_overdue_messages() {
        let s = Schedule::new(1_000, 100.0, 1, 0);
        assert_eq!(s.due_by(0), 0);
        assert_eq!(s.due_by(1_000), 1);
        assert_eq!(s.due_by(1_000 + 10_000_000 - 1), 1);
        assert_eq!(s.due_by(1_000 + 10_000_000), 2);
        // One second at 100/s: 101 messages due counting the one at t=0.
        assert_eq!(s.due_by(1_000 + 1_000_000_000), 101);
        // The total offered over all senders matches the rate.
        let total: u64 = (0..10)
            .map(|i| Schedule::new(0, 5_000.0, 10, i).due_by(999_999_999))
            .sum();
        assert_eq!(total, 5_000);
    }
}
