//! Limit hits in the log without flooding it: at most one `warn` line per limit per
//! [`INTERVAL`], carrying how many hits it stands for and the last peer. Every hit is counted
//! in the metrics regardless; per-hit detail is at `debug`.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::time::Duration;

use tokio::time::Instant;

use crate::metrics::Limit;

/// The shortest time between two log lines for the same limit.
pub(crate) const INTERVAL: Duration = Duration::from_secs(10);

/// Hits since the last line, per limit.
#[derive(Debug, Default)]
pub(crate) struct LimitLog {
    state: Mutex<Vec<(Limit, Option<Instant>, u64)>>,
}

impl LimitLog {
    /// Records a hit of `limit` by `peer`; logs a summary line if the last one for this limit
    /// is older than [`INTERVAL`].
    pub(crate) fn hit(&self, limit: Limit, peer: Option<SocketAddr>) {
        let now = Instant::now();
        let hits = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let index = match state.iter().position(|(l, _, _)| *l == limit) {
                Some(index) => index,
                None => {
                    state.push((limit, None, 0));
                    state.len() - 1
                }
            };
            let entry = &mut state[index];
            entry.2 += 1;
            if entry
                .1
                .is_some_and(|last| now.duration_since(last) < INTERVAL)
            {
                return;
            }
            entry.1 = Some(now);
            std::mem::take(&mut entry.2)
        };
        match peer {
            Some(peer) => {
                tracing::warn!(limit = limit.as_str(), hits, last_peer = %peer, "limit hit")
            }
            None => tracing::warn!(limit = limit.as_str(), hits, "limit hit"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_line_per_interval_with_the_count_of_hits() {
        let log = LimitLog::default();
        let peer = Some("192.0.2.1:1".parse().unwrap());
        log.hit(Limit::MessageRate, peer);
        for _ in 0..5 {
            log.hit(Limit::MessageRate, peer);
        }
        let pending = |log: &LimitLog| log.state.lock().unwrap()[0].2;
        assert_eq!(pending(&log), 5, "held back after the first line");
        tokio::time::advance(INTERVAL).await;
        log.hit(Limit::MessageRate, peer);
        assert_eq!(pending(&log), 0, "a summary line took them");
        log.hit(Limit::ByteRate, None);
        assert_eq!(log.state.lock().unwrap().len(), 2);
    }
}
