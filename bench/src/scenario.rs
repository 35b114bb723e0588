//! The scenarios: traffic (1:1 in a ring, or fan-out from a few senders to a group), closed or
//! open loop, and idle connections.
//!
//! Timeline of a traffic run: connect every client (at most `connect_concurrency` at once;
//! on the relay each one is authenticated before traffic starts, since a recipient must have
//! connected once to be known), start every receiver, then the senders: a warm-up (sent,
//! checked for loss, not measured), the measurement window, then the drain: no more sends, and
//! the run waits until every expected delivery arrived or the drain timeout expired.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use sealwire_core::IdentityKeyPair;
use tokio::sync::{Semaphore, watch};
use tokio::time::sleep_until;

use crate::BoxError;
use crate::accounting::{Losses, Receipts};
use crate::conn::{self, Addr, Conn, Received, Sender, Shared, Target};
use crate::pacing::Schedule;
use crate::report::{Latency, RunResult};
use crate::stamp::Stamp;

/// Closed loop (saturation) or open loop (fixed offered rate).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// Each sender keeps at most `window` messages (times their recipients) undelivered.
    Closed {
        /// Messages in flight per sender.
        window: usize,
    },
    /// Messages per second over all senders, on a fixed schedule.
    Open {
        /// The offered rate.
        rate: f64,
    },
}

/// Who sends to whom.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Connections to open.
    pub clients: usize,
    /// `(sender, recipients)` by client index; every list has the same length.
    pub routes: Vec<(u32, Vec<u32>)>,
}

impl Plan {
    /// A ring of `clients`: client `i` sends to `i + 1` (every client sends and receives).
    pub fn ring(clients: usize) -> Plan {
        let n = clients.max(2) as u32;
        Plan {
            clients: n as usize,
            routes: (0..n).map(|i| (i, vec![(i + 1) % n])).collect(),
        }
    }

    /// `senders` clients each sending to the same `recipients` other clients.
    pub fn fan_out(senders: usize, recipients: usize) -> Plan {
        let senders = senders.max(1) as u32;
        let group: Vec<u32> = (senders..senders + recipients.max(1) as u32).collect();
        Plan {
            clients: (senders as usize) + group.len(),
            routes: (0..senders).map(|s| (s, group.clone())).collect(),
        }
    }

    /// Recipients of each message.
    pub fn fan(&self) -> usize {
        self.routes.first().map_or(0, |(_, to)| to.len())
    }
}

/// Timing of a traffic run.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Sent, checked, not measured.
    pub warmup: Duration,
    /// The measurement window.
    pub duration: Duration,
    /// Longest wait for the last deliveries after sending stopped.
    pub drain: Duration,
    /// Connections opened at once.
    pub connect_concurrency: usize,
}

/// Opens `count` connections, at most `concurrency` at a time. Returns those that succeeded
/// (in order), their addresses, the server's recipient limit, the time taken (identity keys are
/// made before the clock starts) and the errors.
pub async fn connect_all(
    target: &Target,
    count: usize,
    concurrency: usize,
) -> (Vec<(Conn, Addr)>, usize, Duration, Vec<String>) {
    let mut identities: Vec<Option<IdentityKeyPair>> = (0..count)
        .map(|_| {
            target
                .relay
                .then(|| IdentityKeyPair::generate(&mut rand::rng()))
        })
        .collect();
    let started = Instant::now();
    let mut max_recipients = conn::default_max_recipients();
    let mut connected = Vec::with_capacity(count);
    let mut errors = Vec::new();
    let mut attempts = futures_util::stream::iter(identities.iter_mut().enumerate())
        .map(|(index, identity)| Conn::connect(target, index as u32, identity.take()))
        .buffered(concurrency.max(1));
    while let Some(result) = attempts.next().await {
        match result {
            Ok((conn, addr, max)) => {
                max_recipients = max_recipients.min(max);
                connected.push((conn, addr));
            }
            Err(error) => errors.push(error.to_string()),
        }
    }
    (connected, max_recipients, started.elapsed(), errors)
}

/// Runs traffic against a started server. `rss` samples the server's memory.
///
/// # Errors
/// A client fails to connect (the run is abandoned) or a task fails.
pub async fn traffic(
    target: &Target,
    plan: &Plan,
    load: Load,
    timing: Timing,
    rss: &dyn Fn() -> Option<u64>,
) -> Result<RunResult, BoxError> {
    let rss_before = rss();
    let (conns, max_recipients, connect_time, errors) =
        connect_all(target, plan.clients, timing.connect_concurrency).await;
    if let Some(first) = errors.first() {
        return Err(format!(
            "{} of {} connections failed: {first}",
            errors.len(),
            plan.clients
        )
        .into());
    }
    let fan = plan.fan();
    let chunk_size = max_recipients.max(1);
    let chunk_sizes: Vec<u64> = (0..fan)
        .step_by(chunk_size)
        .map(|start| (fan - start).min(chunk_size) as u64)
        .collect();
    let addrs: Vec<Addr> = conns.iter().map(|(_, addr)| *addr).collect();
    let base = Instant::now();
    let start = 50_000_000u64;
    let measure_start = start + nanos(timing.warmup);
    let measure_end = measure_start + nanos(timing.duration);
    let mut windows: Vec<Option<Arc<Semaphore>>> = vec![None; plan.clients];
    if let Load::Closed { window } = load {
        for (sender, _) in &plan.routes {
            if let Some(slot) = windows.get_mut(*sender as usize) {
                *slot = Some(Arc::new(Semaphore::new(window.max(1) * fan)));
            }
        }
    }
    let shared = Arc::new(Shared {
        base,
        measure_start,
        measure_end,
        windows,
        chunk_sizes,
        distinct: Default::default(),
        accepted: Default::default(),
        rejected: Default::default(),
        rejected_deliveries: Default::default(),
        disconnects: Default::default(),
        errors: Default::default(),
        error_samples: Mutex::new(errors),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut senders: Vec<Option<Sender>> = Vec::with_capacity(plan.clients);
    let mut receivers = Vec::with_capacity(plan.clients);
    for (index, (conn, _)) in conns.into_iter().enumerate() {
        let (sender, events) = conn.split();
        senders.push(Some(sender));
        receivers.push(tokio::spawn(conn::receive(
            index as u32,
            events,
            shared.clone(),
            stop_rx.clone(),
        )));
    }
    let salt: u16 = rand::random();
    let mut sending = Vec::with_capacity(plan.routes.len());
    for (position, (sender, to)) in plan.routes.iter().enumerate() {
        let handle = senders
            .get_mut(*sender as usize)
            .and_then(Option::take)
            .ok_or("a sender is listed twice")?;
        let recipients: Vec<Addr> = to
            .iter()
            .filter_map(|i| addrs.get(*i as usize).copied())
            .collect();
        let schedule = match load {
            Load::Open { rate } => Some(Schedule::new(start, rate, plan.routes.len(), position)),
            Load::Closed { .. } => None,
        };
        let job = SenderJob {
            index: *sender,
            salt,
            handle,
            recipients,
            chunk_size,
            schedule,
            shared: shared.clone(),
            give_up: measure_end + nanos(timing.drain),
        };
        sending.push(tokio::spawn(job.run()));
    }
    drop(senders);
    let mut sent_total = 0u64;
    for task in sending {
        sent_total += task.await?;
    }
    // Drain: every message sent, times its recipients, minus refused chunks.
    let drain_until = measure_end + nanos(timing.drain);
    let expected = || {
        (sent_total * fan as u64).saturating_sub(shared.rejected_deliveries.load(Ordering::Relaxed))
    };
    let mut drained = false;
    while shared.now() < drain_until {
        if shared.distinct.load(Ordering::Relaxed) >= expected() {
            drained = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let rss_after = rss();
    let _ = stop_tx.send(true);
    let mut latency = conn::histogram()?;
    let mut receipts: Vec<Receipts> = Vec::with_capacity(receivers.len());
    let mut in_window = 0;
    for task in receivers {
        let Received {
            receipts: seen,
            latency: histogram,
            in_window: count,
        } = task.await??;
        latency.add(&histogram)?;
        receipts.push(seen);
        in_window += count;
    }
    let losses = Losses::compute(expected(), &receipts);
    let duration = timing.duration.as_secs_f64();
    let errors = shared.errors.load(Ordering::Relaxed)
        + shared.disconnects.load(Ordering::Relaxed)
        + losses.foreign;
    let error_samples = shared
        .error_samples
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    Ok(RunResult {
        clients: plan.clients,
        senders: plan.routes.len(),
        recipients_per_message: fan,
        window: match load {
            Load::Closed { window } => Some(window),
            Load::Open { .. } => None,
        },
        offered_rate: match load {
            Load::Open { rate } => Some(rate),
            Load::Closed { .. } => None,
        },
        duration_s: duration,
        sent: sent_total,
        accepted: shared.accepted.load(Ordering::Relaxed),
        rejected: shared.rejected.load(Ordering::Relaxed),
        losses,
        delivered_in_window: in_window,
        msgs_per_s: in_window as f64 / duration.max(1e-9),
        latency: Latency::from_histogram(&latency),
        drained,
        rss_before_kib: rss_before,
        rss_after_kib: rss_after,
        handshakes_per_s: Some(plan.clients as f64 / connect_time.as_secs_f64().max(1e-9)),
        errors,
        error_samples,
        ..RunResult::default()
    })
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// One sending client.
struct SenderJob {
    index: u32,
    salt: u16,
    handle: Sender,
    recipients: Vec<Addr>,
    chunk_size: usize,
    /// Open loop: the schedule; closed loop: `None` (the window paces).
    schedule: Option<Schedule>,
    shared: Arc<Shared>,
    /// After this instant a blocked send is abandoned (counted as an error).
    give_up: u64,
}

impl SenderJob {
    /// Sends until the end of the measurement window; returns how many messages it sent.
    async fn run(self) -> u64 {
        let at = |nanos: u64| {
            tokio::time::Instant::from_std(self.shared.base + Duration::from_nanos(nanos))
        };
        let end = self.shared.measure_end;
        sleep_until(at(self.schedule.map_or(50_000_000, |s| s.first_nanos))).await;
        let mut seq = 0u64;
        let fan = u32::try_from(self.recipients.len()).unwrap_or(u32::MAX);
        let window = self
            .shared
            .windows
            .get(self.index as usize)
            .cloned()
            .flatten();
        loop {
            let now = self.shared.now();
            if now >= end {
                break;
            }
            let (due, stamp_at) = match (&self.schedule, &window) {
                (Some(schedule), _) => {
                    let due = schedule
                        .due_by(now)
                        .min(schedule.due_by(end.saturating_sub(1)));
                    if seq >= due {
                        sleep_until(at(schedule.due(seq))).await;
                        continue;
                    }
                    (due, Some(*schedule))
                }
                (None, Some(window)) => {
                    let permit = tokio::select! {
                        permit = window.acquire_many(fan) => permit,
                        () = sleep_until(at(end)) => break,
                    };
                    match permit {
                        Ok(permit) => permit.forget(),
                        Err(_) => break,
                    }
                    (seq + 1, None)
                }
                (None, None) => (seq + 1, None),
            };
            while seq < due {
                let sent_nanos = stamp_at.map_or_else(|| self.shared.now(), |s| s.due(seq));
                let payload = Stamp {
                    sender: self.index,
                    seq,
                    sent_nanos,
                }
                .encode();
                // Counted as sent before the attempt: if it fails, it shows up as lost.
                seq += 1;
                let send = self.handle.send(
                    self.salt,
                    self.index,
                    seq - 1,
                    &self.recipients,
                    self.chunk_size,
                    &payload,
                );
                let result = tokio::select! {
                    result = send => result,
                    () = sleep_until(at(self.give_up)) => Err("send blocked until the drain timeout".into()),
                };
                if let Err(error) = result {
                    self.shared
                        .error(format!("client {}: send failed: {error}", self.index));
                    return seq;
                }
            }
        }
        seq
    }
}

/// Opens `count` idle connections (at most `concurrency` at once), measures the server's RSS
/// before and after (settled), holds them for `hold`, and checks they are all still open.
pub async fn idle(
    target: &Target,
    count: usize,
    concurrency: usize,
    hold: Duration,
    rss: &dyn Fn() -> Option<u64>,
    cpu: &dyn Fn() -> Option<Duration>,
) -> RunResult {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = rss();
    let cpu_before = cpu();
    let (mut conns, _, elapsed, errors) = connect_all(target, count, concurrency).await;
    let cpu_after = cpu();
    let opened = conns.len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = rss();
    tokio::time::sleep(hold).await;
    let still_open = conns
        .iter_mut()
        .map(|(conn, _)| conn.still_open())
        .filter(|open| *open)
        .count();
    let kib_per_connection = match (rss_before, rss_after) {
        (Some(before), Some(after)) if opened > 0 => {
            Some(after.saturating_sub(before) as f64 / opened as f64)
        }
        _ => None,
    };
    let mut samples = errors.clone();
    samples.truncate(10);
    RunResult {
        clients: count,
        duration_s: hold.as_secs_f64(),
        rss_before_kib: rss_before,
        rss_after_kib: rss_after,
        kib_per_connection,
        handshakes_per_s: Some(opened as f64 / elapsed.as_secs_f64().max(1e-9)),
        server_cpu_us_per_handshake: match (cpu_before, cpu_after) {
            (Some(before), Some(after)) if opened > 0 => {
                Some(after.saturating_sub(before).as_secs_f64() * 1e6 / opened as f64)
            }
            _ => None,
        },
        still_open: Some(still_open),
        errors: (errors.len() + (opened - still_open)) as u64,
        error_samples: samples,
        ..RunResult::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans() {
        let ring = Plan::ring(4);
        assert_eq!(ring.routes[3], (3, vec![0]));
        assert_eq!(ring.fan(), 1);
        let fan = Plan::fan_out(2, 3);
        assert_eq!(fan.clients, 5);
        assert_eq!(fan.routes[1], (1, vec![2, 3, 4]));
        assert_eq!(fan.fan(), 3);
    }
}
