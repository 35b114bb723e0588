//! Admission control at accept time: bounds on open connections, in total and per client
//! address, and a per-address connection rate, checked *before* any TLS work is spent.
//!
//! The limits, their defaults and how addresses are grouped are documented on
//! [`AdmissionLimits`] (this module is private; its public types are re-exported by
//! [`server`](super)). Internally, [`Admission`] is the table shared by the accept loop, the
//! [`AdmissionPermit`]s of admitted connections and the server handle.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, Result};

/// Bounds on connections, checked when a TCP connection is accepted, before TLS.
///
/// | limit | default | on breach |
/// |---|---|---|
/// | `max_connections` | 10 000 | TCP closed before TLS ([`AdmissionRefusal::TooManyConnections`]) |
/// | `max_connections_per_ip` | 64 | TCP closed before TLS ([`AdmissionRefusal::TooManyFromAddress`]) |
/// | `connection_rate_per_ip` | 20 per second | TCP closed before TLS ([`AdmissionRefusal::ConnectionRate`]) |
/// | `connection_burst_per_ip` | 40 | (the rate bucket's capacity) |
///
/// The accept loop asks for admission right after `accept()`. A refused TCP stream is closed at
/// once: no TLS handshake, no task, no buffer; the refusal is reported to
/// [`Service::refused`](super::Service::refused). An admitted connection holds a permit until
/// its task ends, however it ends (closed, failed, timed out, aborted); the permit releases the
/// connection's place in the total and in its address's count.
///
/// **Addresses.** An IPv4 address counts on its own. An IPv6 address counts with its whole /64
/// prefix, since one subscriber (one home, one VPS) usually holds a whole /64 and could
/// otherwise pick a fresh address per connection. An IPv4-mapped IPv6 address
/// (`::ffff:a.b.c.d`, what a dual-stack listener reports for IPv4 clients) counts as the IPv4
/// address.
///
/// **Rate.** Each address group has a token bucket of `connection_burst_per_ip` tokens,
/// refilled at `connection_rate_per_ip` tokens per second; every admitted connection takes one
/// token, and a connection that finds the bucket empty is refused. Refused attempts take no
/// token. The bucket runs on [`tokio::time::Instant`], so tests can drive it with paused time.
///
/// **Memory.** The table holds one small entry per address group that has open connections
/// or whose bucket is still refilling. An entry is removed when its last connection ends with
/// a full bucket, and a sweep (at most once a second, on admission) removes entries that have
/// since refilled; so the table never holds more than the groups with open connections plus
/// those that connected within the last `connection_burst_per_ip / connection_rate_per_ip`
/// seconds plus one second.
///
/// Behind a reverse proxy or load balancer every connection comes from the proxy's address:
/// raise `max_connections_per_ip` and the rate accordingly (the transport does not read
/// `PROXY` headers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// Most admitted TCP connections open at once, before and after authentication. Default
    /// 10 000. Beyond it new connections are closed before TLS
    /// ([`AdmissionRefusal::TooManyConnections`]).
    pub max_connections: usize,
    /// Most connections open at once from one IPv4 address or one IPv6 /64. Default 64. Beyond
    /// it new connections from that address are closed before TLS
    /// ([`AdmissionRefusal::TooManyFromAddress`]).
    pub max_connections_per_ip: usize,
    /// New connections per second from one IPv4 address or IPv6 /64, on average (the refill
    /// rate of the address's token bucket). Default 20. Faster attempts are closed before TLS
    /// ([`AdmissionRefusal::ConnectionRate`]).
    pub connection_rate_per_ip: u32,
    /// New connections one address may open in a burst (the capacity of its token bucket).
    /// Default 40, so that a client behind a NAT with many users, or a reconnect wave after a
    /// restart, is not refused at once.
    pub connection_burst_per_ip: u32,
}

impl Default for AdmissionLimits {
    fn default() -> Self {
        AdmissionLimits {
            max_connections: 10_000,
            max_connections_per_ip: 64,
            connection_rate_per_ip: 20,
            connection_burst_per_ip: 40,
        }
    }
}

impl AdmissionLimits {
    /// Checks that the limits are consistent.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field: a zero value (which would refuse every
    /// connection). A per-address limit above the total, or a burst below the rate, is
    /// allowed (the total, or the burst, is then what binds).
    pub fn validate(&self) -> Result<()> {
        let invalid = |what: &str| Err(Error::InvalidConfig(format!("admission: {what}")));
        if self.max_connections == 0 || self.max_connections_per_ip == 0 {
            return invalid("max_connections and max_connections_per_ip must be positive");
        }
        if self.connection_rate_per_ip == 0 || self.connection_burst_per_ip == 0 {
            return invalid("connection_rate_per_ip and connection_burst_per_ip must be positive");
        }
        Ok(())
    }

    /// Time for one token to refill.
    fn interval(&self) -> Duration {
        Duration::from_secs(1) / self.connection_rate_per_ip.max(1)
    }

    /// Time for an empty bucket to refill completely.
    fn capacity(&self) -> Duration {
        self.interval()
            .saturating_mul(self.connection_burst_per_ip.max(1))
    }
}

/// Why a TCP connection was refused at accept time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AdmissionRefusal {
    /// The server holds [`AdmissionLimits::max_connections`] connections.
    TooManyConnections,
    /// The address (IPv4, or IPv6 /64) holds [`AdmissionLimits::max_connections_per_ip`]
    /// connections.
    TooManyFromAddress,
    /// The address opened connections faster than [`AdmissionLimits::connection_rate_per_ip`]
    /// (beyond the burst).
    ConnectionRate,
}

impl AdmissionRefusal {
    /// The name of the limit that was reached: `"max_connections"`,
    /// `"max_connections_per_ip"` or `"connection_rate_per_ip"` (for metrics labels).
    pub fn as_str(self) -> &'static str {
        match self {
            AdmissionRefusal::TooManyConnections => "max_connections",
            AdmissionRefusal::TooManyFromAddress => "max_connections_per_ip",
            AdmissionRefusal::ConnectionRate => "connection_rate_per_ip",
        }
    }
}

impl fmt::Display for AdmissionRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The group an address counts in for per-address limits: IPv4 addresses (also IPv4-mapped
/// IPv6 ones) on their own, IPv6 addresses by their /64 prefix (one subscriber usually holds a
/// whole /64). Services keying their own limits by address should use the same groups.
pub fn address_group(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !u128::from(u64::MAX);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

/// How often at most the table is swept for entries that have refilled.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// One address group's connections and rate bucket.
#[derive(Debug)]
struct Entry {
    /// Admitted connections still open.
    open: usize,
    /// The bucket as a "theoretical arrival time" (the virtual-scheduling form of a token
    /// bucket): the bucket is full when `refilled_at <= now`, and holds
    /// `(capacity - (refilled_at - now)) / interval` tokens otherwise.
    refilled_at: Instant,
}

impl Entry {
    fn is_full(&self, now: Instant) -> bool {
        self.refilled_at <= now
    }

    fn is_idle(&self, now: Instant) -> bool {
        self.open == 0 && self.is_full(now)
    }
}

#[derive(Debug)]
struct Table {
    total: usize,
    entries: HashMap<IpAddr, Entry>,
    next_sweep: Instant,
}

/// The admission state shared by the accept loop, the permits and the server handle.
#[derive(Debug)]
pub(crate) struct Admission {
    limits: AdmissionLimits,
    table: Mutex<Table>,
}

impl Admission {
    pub(crate) fn new(limits: AdmissionLimits) -> Arc<Admission> {
        Arc::new(Admission {
            limits,
            table: Mutex::new(Table {
                total: 0,
                entries: HashMap::new(),
                next_sweep: Instant::now() + SWEEP_INTERVAL,
            }),
        })
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // The table is consistent after every statement that can panic (none do).
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a connection from `ip`, or says which limit refuses it.
    pub(crate) fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
    ) -> core::result::Result<AdmissionPermit, AdmissionRefusal> {
        let now = Instant::now();
        let group = address_group(ip);
        let limits = &self.limits;
        let mut table = self.table();
        if now >= table.next_sweep {
            table.entries.retain(|_, entry| !entry.is_idle(now));
            table.next_sweep = now + SWEEP_INTERVAL;
        }
        if table.total >= limits.max_connections {
            return Err(AdmissionRefusal::TooManyConnections);
        }
        let (open, refilled_at) = table
            .entries
            .get(&group)
            .map_or((0, now), |entry| (entry.open, entry.refilled_at));
        if open >= limits.max_connections_per_ip {
            return Err(AdmissionRefusal::TooManyFromAddress);
        }
        // Taking a token moves the refill time one interval later; the bucket is empty when
        // that would put it more than the bucket's capacity ahead of now.
        let taken = refilled_at.max(now) + limits.interval();
        if taken.saturating_duration_since(now) > limits.capacity() {
            return Err(AdmissionRefusal::ConnectionRate);
        }
        table.total += 1;
        let entry = table.entries.entry(group).or_insert(Entry {
            open: 0,
            refilled_at: now,
        });
        entry.open += 1;
        entry.refilled_at = taken;
        drop(table);
        Ok(AdmissionPermit {
            admission: self.clone(),
            group,
        })
    }

    fn release(&self, group: IpAddr) {
        let now = Instant::now();
        let mut table = self.table();
        table.total = table.total.saturating_sub(1);
        if let Some(entry) = table.entries.get_mut(&group) {
            entry.open = entry.open.saturating_sub(1);
            if entry.is_idle(now) {
                table.entries.remove(&group);
            }
        }
    }

    /// Admitted connections currently open.
    pub(crate) fn connections(&self) -> usize {
        self.table().total
    }

    /// Address groups currently tracked (for tests of the table's bound).
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.table().entries.len()
    }
}

/// An admitted connection's place in the counts, released when dropped.
#[must_use = "the connection's place is released when the permit is dropped"]
pub(crate) struct AdmissionPermit {
    admission: Arc<Admission>,
    group: IpAddr,
}

impl Drop for AdmissionPermit {
    fn drop(&mut self) {
        self.admission.release(self.group);
    }
}

impl fmt::Debug for AdmissionPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdmissionPermit")
            .field("group", &self.group)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn limits(total: usize, per_ip: usize, rate: u32, burst: u32) -> AdmissionLimits {
        AdmissionLimits {
            max_connections: total,
            max_connections_per_ip: per_ip,
            connection_rate_per_ip: rate,
            connection_burst_per_ip: burst,
        }
    }

    #[test]
    fn defaults_are_valid_and_inconsistent_limits_are_refused() {
        let defaults = AdmissionLimits::default();
        defaults.validate().unwrap();
        assert_eq!(
            (
                defaults.max_connections,
                defaults.max_connections_per_ip,
                defaults.connection_rate_per_ip,
                defaults.connection_burst_per_ip
            ),
            (10_000, 64, 20, 40)
        );
        for bad in [
            limits(0, 1, 1, 1),
            limits(10, 0, 1, 1),
            limits(10, 1, 0, 1),
            limits(10, 1, 1, 0),
        ] {
            assert!(
                matches!(bad.validate(), Err(Error::InvalidConfig(_))),
                "{bad:?}"
            );
        }
        // A burst below the rate is fine (it only smooths the rate), and so is a per-address
        // limit above the total (the total binds first).
        limits(10, 2, 50, 2).validate().unwrap();
        limits(10, 64, 20, 40).validate().unwrap();
    }

    #[test]
    fn refusals_name_their_limit() {
        assert_eq!(
            AdmissionRefusal::TooManyConnections.as_str(),
            "max_connections"
        );
        assert_eq!(
            AdmissionRefusal::TooManyFromAddress.to_string(),
            "max_connections_per_ip"
        );
        assert_eq!(
            AdmissionRefusal::ConnectionRate.to_string(),
            "connection_rate_per_ip"
        );
    }

    #[test]
    fn ipv6_groups_by_64_and_ipv4_mapped_counts_as_ipv4() {
        assert_eq!(address_group(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(address_group(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(
            address_group(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(
            address_group(ip("2001:db8:1:2::1")),
            address_group(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            address_group(ip("2001:db8:1:2::1")),
            address_group(ip("2001:db8:1:3::1"))
        );
        // The IPv4-compatible (deprecated) form is not the mapped one.
        assert_eq!(address_group(ip("::1")), ip("::"));
    }

    #[tokio::test(start_paused = true)]
    async fn per_address_and_total_limits_and_release_on_drop() {
        let admission = Admission::new(limits(3, 2, 1000, 1000));
        let a1 = admission.admit(ip("192.0.2.1")).unwrap();
        let a2 = admission.admit(ip("::ffff:192.0.2.1")).unwrap();
        assert_eq!(
            admission.admit(ip("192.0.2.1")).unwrap_err(),
            AdmissionRefusal::TooManyFromAddress
        );
        // Another /64 member of one IPv6 subscriber shares its count.
        let b1 = admission.admit(ip("2001:db8::1")).unwrap();
        assert_eq!(
            admission.admit(ip("2001:db8::2")).unwrap_err(),
            AdmissionRefusal::TooManyConnections
        );
        assert_eq!(admission.connections(), 3);
        drop(b1);
        assert_eq!(admission.connections(), 2);
        let b2 = admission.admit(ip("2001:db8::ffff:1")).unwrap();
        assert_eq!(
            admission.admit(ip("2001:db8::3")).unwrap_err(),
            AdmissionRefusal::TooManyConnections
        );
        drop(a1);
        let a3 = admission.admit(ip("192.0.2.1")).unwrap();
        drop((a2, a3, b2));
        assert_eq!(admission.connections(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_bucket_refills_at_the_rate() {
        // 10 per second (one token every 100 ms), burst 3.
        let admission = Admission::new(limits(100, 100, 10, 3));
        let addr = ip("198.51.100.9");
        let mut permits = Vec::new();
        for _ in 0..3 {
            permits.push(admission.admit(addr).unwrap());
        }
        assert_eq!(
            admission.admit(addr).unwrap_err(),
            AdmissionRefusal::ConnectionRate
        );
        // Another address has its own bucket.
        permits.push(admission.admit(ip("198.51.100.10")).unwrap());
        // Refused attempts take no token.
        tokio::time::advance(Duration::from_millis(99)).await;
        assert!(admission.admit(addr).is_err());
        tokio::time::advance(Duration::from_millis(1)).await;
        permits.push(admission.admit(addr).unwrap());
        assert!(admission.admit(addr).is_err());
        // A full refill allows a full burst again, no more.
        tokio::time::advance(Duration::from_secs(5)).await;
        for _ in 0..3 {
            permits.push(admission.admit(addr).unwrap());
        }
        assert_eq!(
            admission.admit(addr).unwrap_err(),
            AdmissionRefusal::ConnectionRate
        );
        assert_eq!(admission.connections(), permits.len());
    }

    #[tokio::test(start_paused = true)]
    async fn the_table_forgets_idle_addresses() {
        let admission = Admission::new(limits(100, 10, 10, 2));
        // Released with a full bucket (time passed): removed at once.
        let permit = admission.admit(ip("192.0.2.1")).unwrap();
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(admission.tracked(), 1);
        drop(permit);
        assert_eq!(admission.tracked(), 0);

        // Released while the bucket refills: kept (the rate must still apply), then swept.
        for i in 0..50u8 {
            drop(admission.admit(IpAddr::from([203, 0, 113, i])).unwrap());
        }
        assert_eq!(admission.tracked(), 50);
        let open = admission.admit(ip("2001:db8::1")).unwrap();
        tokio::time::advance(SWEEP_INTERVAL).await;
        // Any admission sweeps; the address with an open connection stays.
        drop(admission.admit(ip("192.0.2.2")).unwrap());
        assert_eq!(admission.tracked(), 2);
        drop(open);
        assert_eq!(admission.tracked(), 1);
        tokio::time::advance(SWEEP_INTERVAL).await;
        let last = admission.admit(ip("192.0.2.3")).unwrap();
        assert_eq!(admission.tracked(), 1);
        drop(last);
        assert_eq!(admission.connections(), 0);
    }
}
