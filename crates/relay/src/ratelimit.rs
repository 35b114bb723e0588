//! Rate limits: token buckets that **throttle** rather than refuse.
//!
//! Every authenticated connection has three buckets: messages (one token per `send` or
//! `upload_prekeys`), bytes (one token per payload byte per recipient: a group send costs every
//! copy it makes the relay store) and bundle fetches (one token per `fetch_bundle`, so that
//! nobody drains other people's one-time prekeys quickly). Bundle fetches are also counted per
//! client **address** (an IPv4 address or an IPv6 /64, as for admission) across all its
//! connections, with a larger bucket: a connection's bucket starts full again on every
//! reconnect, and identities cost nothing to make, so without it reconnecting would buy a
//! fresh burst.
//!
//! A request that finds a bucket short is not refused: the relay waits until the bucket has
//! refilled enough before handling it. The transport reads nothing more from that connection meanwhile, so a flooding client
//! is slowed to the configured rate by TCP backpressure, and an honest client that bursts
//! loses nothing. Each wait is counted in `sealwire_relay_limit_rejections_total`.
//!
//! The bucket may go into debt by one request (a payload larger than the burst still passes,
//! after a proportionate wait), so every wait is bounded by one request's cost divided by the
//! rate.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, Result};

/// The longest a single request is held back (a bound whatever the configuration says).
const MAX_WAIT: Duration = Duration::from_secs(10);

/// Per-connection rates. Defaults suit people chatting and groups of hundreds; raise them for
/// bots and bridges.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    /// Sustained `send`s and prekey uploads per second per connection (default 100).
    pub messages_per_second: f64,
    /// Burst of `send`s and prekey uploads (default 500).
    pub message_burst: f64,
    /// Sustained payload bytes per second per connection (default 4 MiB).
    pub bytes_per_second: f64,
    /// Burst of payload bytes (default 16 MiB).
    pub byte_burst: f64,
    /// Sustained `fetch_bundle`s per second per connection (default 5).
    pub fetches_per_second: f64,
    /// Burst of `fetch_bundle`s per connection (default 100).
    pub fetch_burst: f64,
    /// Sustained `fetch_bundle`s per second per client address (IPv4 address or IPv6 /64),
    /// over all its connections (default 50: many users may share one address behind NAT).
    pub fetches_per_second_per_address: f64,
    /// Burst of `fetch_bundle`s per client address (default 500).
    pub fetch_burst_per_address: f64,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            messages_per_second: 100.0,
            message_burst: 500.0,
            bytes_per_second: 4.0 * 1024.0 * 1024.0,
            byte_burst: 16.0 * 1024.0 * 1024.0,
            fetches_per_second: 5.0,
            fetch_burst: 100.0,
            fetches_per_second_per_address: 50.0,
            fetch_burst_per_address: 500.0,
        }
    }
}

impl RateLimits {
    /// Checks that every rate and burst is positive and finite.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting.
    pub fn validate(&self) -> Result<()> {
        // Minimums that keep the relay usable: one message and one fetch per second, 1 KiB/s,
        // bursts of at least one request.
        let settings = [
            ("rates.messages_per_second", self.messages_per_second, 1.0),
            ("rates.message_burst", self.message_burst, 1.0),
            ("rates.bytes_per_second", self.bytes_per_second, 1024.0),
            ("rates.byte_burst", self.byte_burst, 1024.0),
            ("rates.fetches_per_second", self.fetches_per_second, 1.0),
            ("rates.fetch_burst", self.fetch_burst, 1.0),
            (
                "rates.fetches_per_second_per_address",
                self.fetches_per_second_per_address,
                1.0,
            ),
            (
                "rates.fetch_burst_per_address",
                self.fetch_burst_per_address,
                1.0,
            ),
        ];
        for (name, value, minimum) in settings {
            if !(value.is_finite() && value >= minimum) {
                return Err(Error::Config(format!(
                    "{name} must be a number of at least {minimum}, not {value}"
                )));
            }
        }
        Ok(())
    }
}

/// A token bucket: `capacity` tokens, refilled at `rate` per second.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    capacity: f64,
    rate: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub(crate) fn new(capacity: f64, rate: f64, now: Instant) -> TokenBucket {
        TokenBucket {
            capacity,
            rate,
            tokens: capacity,
            updated: now,
        }
    }

    /// Takes `cost` tokens, going into debt if needed; returns how long to wait before the
    /// request may proceed (zero if the bucket had enough).
    pub(crate) fn take(&mut self, cost: f64, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.updated = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity) - cost;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::try_from_secs_f64(-self.tokens / self.rate)
                .unwrap_or(MAX_WAIT)
                .min(MAX_WAIT)
        }
    }

    /// Whether the bucket would be full at `now`: then it is no different from a new one.
    fn is_full(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens + elapsed * self.rate >= self.capacity
    }
}

/// The three buckets of one connection.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionBuckets {
    pub(crate) messages: TokenBucket,
    pub(crate) bytes: TokenBucket,
    pub(crate) fetches: TokenBucket,
}

impl ConnectionBuckets {
    pub(crate) fn new(limits: &RateLimits, now: Instant) -> ConnectionBuckets {
        ConnectionBuckets {
            messages: TokenBucket::new(limits.message_burst, limits.messages_per_second, now),
            bytes: TokenBucket::new(limits.byte_burst, limits.bytes_per_second, now),
            fetches: TokenBucket::new(limits.fetch_burst, limits.fetches_per_second, now),
        }
    }
}

/// Entries kept before full (refilled) buckets are pruned.
const PRUNE_ABOVE: usize = 4096;

/// How often at most the table is swept (a sweep walks every entry).
const PRUNE_INTERVAL: Duration = Duration::from_secs(1);

/// One bucket per client address (for bundle fetches). A bucket that has refilled is the same
/// as a new one, so such entries are pruned once there are many (at most once a second):
/// memory stays bounded by the addresses that fetched within about one refill period
/// (`burst / rate`, 10 s by default), each of which needed an admitted connection to do so.
#[derive(Debug, Default)]
pub(crate) struct AddressBuckets {
    buckets: HashMap<IpAddr, TokenBucket>,
    pruned_at: Option<Instant>,
}

impl AddressBuckets {
    /// Takes `cost` from `address`'s bucket; returns how long to wait (see
    /// [`TokenBucket::take`]).
    pub(crate) fn take(
        &mut self,
        address: IpAddr,
        cost: f64,
        capacity: f64,
        rate: f64,
        now: Instant,
    ) -> Duration {
        let due = self
            .pruned_at
            .is_none_or(|at| now.saturating_duration_since(at) >= PRUNE_INTERVAL);
        if due && self.buckets.len() >= PRUNE_ABOVE && !self.buckets.contains_key(&address) {
            self.buckets.retain(|_, bucket| !bucket.is_full(now));
            self.pruned_at = Some(now);
        }
        self.buckets
            .entry(address)
            .or_insert_with(|| TokenBucket::new(capacity, rate, now))
            .take(cost, now)
    }

    /// Addresses tracked now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_bucket_passes_its_burst_then_throttles_at_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(3.0, 10.0, start);
        for _ in 0..3 {
            assert_eq!(bucket.take(1.0, start), Duration::ZERO);
        }
        let wait = bucket.take(1.0, start);
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9, "{wait:?}");
        // After waiting it off, the next request waits another 1/rate.
        let later = start + wait;
        let wait = bucket.take(1.0, later);
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9, "{wait:?}");
    }

    #[test]
    fn refill_is_capped_at_capacity() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(2.0, 100.0, start);
        let much_later = start + Duration::from_secs(3600);
        assert_eq!(bucket.take(2.0, much_later), Duration::ZERO);
        assert!(bucket.take(1.0, much_later) > Duration::ZERO);
    }

    #[test]
    fn fetches_are_counted_per_address_and_refilled_buckets_are_pruned() {
        let start = Instant::now();
        let mut buckets = AddressBuckets::default();
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        for _ in 0..3 {
            assert_eq!(buckets.take(a, 1.0, 3.0, 1.0, start), Duration::ZERO);
        }
        // The same address, whatever the connection: the burst is spent.
        assert!(buckets.take(a, 1.0, 3.0, 1.0, start) > Duration::ZERO);
        assert_eq!(buckets.take(b, 1.0, 3.0, 1.0, start), Duration::ZERO);
        // Many addresses: once refilled, their entries go; a draining one stays.
        for i in 0..PRUNE_ABOVE as u32 {
            buckets.take(IpAddr::from((i + 100).to_be_bytes()), 1.0, 3.0, 1.0, start);
        }
        let later = start + Duration::from_secs(2);
        buckets.take([10, 0, 0, 3].into(), 1.0, 3.0, 1.0, later);
        assert_eq!(buckets.len(), 2, "a (still in debt) and the new address");
        // a's bucket kept its debt (one token back, where a new bucket would have three).
        assert!(buckets.take(a, 2.0, 3.0, 1.0, later) > Duration::ZERO);
    }

    #[test]
    fn a_wait_is_bounded_whatever_the_cost() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(1.0, 1e-300, start);
        assert_eq!(bucket.take(1e300, start), MAX_WAIT);
    }

    #[test]
    fn a_request_larger_than_the_burst_waits_in_proportion() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(1000.0, 1000.0, start);
        let wait = bucket.take(3000.0, start);
        assert!((wait.as_secs_f64() - 2.0).abs() < 1e-9, "{wait:?}");
    }

    #[test]
    fn invalid_rates_are_refused_with_the_setting_named() {
        let rates = RateLimits {
            bytes_per_second: 1e-300,
            ..RateLimits::default()
        };
        let error = rates.validate().unwrap_err().to_string();
        assert!(error.contains("rates.bytes_per_second"), "{error}");
        let rates = RateLimits {
            fetch_burst: f64::NAN,
            ..RateLimits::default()
        };
        assert!(rates.validate().is_err());
        RateLimits::default().validate().unwrap();
    }
}
