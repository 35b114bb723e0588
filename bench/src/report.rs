//! The load generator's results: one [`RunResult`] per scenario run, serialised to JSON, and
//! rendered as a Markdown fragment with a table of every figure and a targets table (the
//! issue's targets, each with the measured value, the target, their ratio and pass/FAIL).

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::accounting::Losses;

/// The Node `ws` recipe's 1:1 throughput with 100 clients (msg/s), quoted from the issue.
pub const NODE_ONE_TO_ONE_100: f64 = 295_000.0;
/// The Node recipe's 1:1 throughput with 1,000 clients (msg/s), quoted from the issue.
pub const NODE_ONE_TO_ONE_1000: f64 = 48_000.0;
/// The Node recipe's fan-out to 100 receivers (deliveries/s), quoted from the issue.
pub const NODE_FAN_OUT_100: f64 = 462_000.0;
/// The Node recipe's memory per idle connection (KiB), quoted from the issue.
pub const NODE_KIB_PER_CONNECTION: f64 = 33.5;

/// Latency percentiles, milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Messages measured.
    pub samples: u64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Latency {
    /// From a histogram of microseconds; `None` if it is empty.
    pub fn from_histogram(histogram: &Histogram<u64>) -> Option<Latency> {
        if histogram.is_empty() {
            return None;
        }
        let ms = |micros: u64| micros as f64 / 1_000.0;
        Some(Latency {
            samples: histogram.len(),
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            p999_ms: ms(histogram.value_at_quantile(0.999)),
            max_ms: ms(histogram.max()),
        })
    }
}

/// Every figure of one scenario run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunResult {
    /// `one-to-one`, `fan-out` or `idle`.
    pub scenario: String,
    /// `relay-durable`, `relay-memory` or `bare`.
    pub server: String,
    /// `saturation` (closed loop), `rate-50%` / `rate-80%` (open loop) or `idle`.
    pub mode: String,
    /// Connections opened.
    pub clients: usize,
    /// Sending clients.
    pub senders: usize,
    /// Recipients of each message.
    pub recipients_per_message: usize,
    /// Closed loop: deliveries each sender may have outstanding.
    pub window: Option<usize>,
    /// Open loop: messages per second offered over all senders.
    pub offered_rate: Option<f64>,
    /// The measurement window, seconds (after the warm-up).
    pub duration_s: f64,
    /// Messages sent (whole run, warm-up included).
    pub sent: u64,
    /// Send requests (chunks) the relay accepted.
    pub accepted: u64,
    /// Send requests the relay refused.
    pub rejected: u64,
    /// Deliveries expected, seen, lost and duplicated (whole run).
    pub losses: Losses,
    /// Deliveries received inside the measurement window.
    pub delivered_in_window: u64,
    /// Deliveries per second in the window (for 1:1 equal to messages per second).
    pub msgs_per_s: f64,
    /// End-to-end latency of messages scheduled inside the window (open loop: from the
    /// scheduled send time).
    pub latency: Option<Latency>,
    /// Whether every expected delivery arrived before the drain timeout.
    pub drained: bool,
    /// Server RSS before the clients connected, KiB.
    pub rss_before_kib: Option<u64>,
    /// Server RSS at the end (idle: after the connections settled), KiB.
    pub rss_after_kib: Option<u64>,
    /// Idle: RSS growth per connection, KiB.
    pub kib_per_connection: Option<f64>,
    /// Connections (TLS, upgrade and, on the relay, authentication) completed per second
    /// while opening them.
    pub handshakes_per_s: Option<f64>,
    /// Idle: the server's CPU time (user + system) spent while the connections were opened,
    /// per connection, µs: what one handshake costs the server, whatever limits the load
    /// generator's own rate.
    pub server_cpu_us_per_handshake: Option<f64>,
    /// Idle: connections still open after the hold.
    pub still_open: Option<usize>,
    /// Connection failures, lost connections and other errors (must be 0).
    pub errors: u64,
    /// The first error messages.
    pub error_samples: Vec<String>,
    /// Whether server and load generator were pinned to separate cores.
    pub pinned: bool,
}

impl RunResult {
    /// Handshakes per second that one fully busy server core could complete at the measured
    /// CPU cost per handshake.
    pub fn handshake_capacity(&self) -> Option<f64> {
        self.server_cpu_us_per_handshake
            .filter(|us| *us > 0.0)
            .map(|us| 1e6 / us)
    }
}

/// The whole report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// What ran: command line and environment notes.
    pub notes: Vec<String>,
    /// Whether pinning happened (server `taskset -c 0`, load generator core 1).
    pub pinned: bool,
    /// Every run, in order.
    pub runs: Vec<RunResult>,
}

fn opt(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
}

impl Report {
    fn find(&self, scenario: &str, server: &str, mode: &str, clients: usize) -> Option<&RunResult> {
        self.runs.iter().find(|run| {
            run.scenario == scenario
                && run.server == server
                && run.mode == mode
                && (run.clients == clients
                    || (scenario == "fan-out" && run.recipients_per_message == clients))
        })
    }

    /// The Markdown fragment: traffic table, idle table, targets table.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "### Relay load generator\n");
        for note in &self.notes {
            let _ = writeln!(out, "- {note}");
        }
        let _ = writeln!(
            out,
            "- pinned (server core 0, load generator core 1): {}\n",
            if self.pinned { "yes" } else { "no" }
        );
        let _ = writeln!(
            out,
            "| scenario | server | mode | clients | recipients/msg | window | offered msg/s | sent | expected | delivered | lost | dup | msg/s (deliveries) | p50 ms | p99 ms | p99.9 ms | max ms | errors |"
        );
        let _ = writeln!(out, "|{}", "---|".repeat(18));
        for run in self.runs.iter().filter(|run| run.scenario != "idle") {
            let latency = run.latency.unwrap_or_default();
            let has = run.latency.is_some();
            let ms = |v: f64| {
                if has {
                    format!("{v:.2}")
                } else {
                    "-".to_owned()
                }
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} |",
                run.scenario,
                run.server,
                run.mode,
                run.clients,
                run.recipients_per_message,
                run.window.map_or_else(|| "-".to_owned(), |w| w.to_string()),
                opt(run.offered_rate, 0),
                run.sent,
                run.losses.expected,
                run.losses.delivered,
                run.losses.lost,
                run.losses.duplicates,
                run.msgs_per_s,
                ms(latency.p50_ms),
                ms(latency.p99_ms),
                ms(latency.p999_ms),
                ms(latency.max_ms),
                run.errors,
            );
        }
        let idle: Vec<&RunResult> = self.runs.iter().filter(|r| r.scenario == "idle").collect();
        if !idle.is_empty() {
            let _ = writeln!(
                out,
                "\n| idle | connections | still open | handshakes/s | server CPU µs per handshake | handshakes/s one server core could serve | RSS before KiB | RSS after KiB | KiB/connection | errors |"
            );
            let _ = writeln!(out, "|{}", "---|".repeat(10));
            for run in idle {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    run.server,
                    run.clients,
                    run.still_open
                        .map_or_else(|| "-".to_owned(), |n| n.to_string()),
                    opt(run.handshakes_per_s, 0),
                    opt(run.server_cpu_us_per_handshake, 0),
                    opt(run.handshake_capacity(), 0),
                    run.rss_before_kib
                        .map_or_else(|| "-".to_owned(), |n| n.to_string()),
                    run.rss_after_kib
                        .map_or_else(|| "-".to_owned(), |n| n.to_string()),
                    opt(run.kib_per_connection, 1),
                    run.errors,
                );
            }
        }
        let cost = self.durability_markdown();
        if !cost.is_empty() {
            let _ = writeln!(out, "\n{cost}");
        }
        let _ = writeln!(out, "\n{}", self.targets_markdown());
        out
    }

    /// What durability costs: each saturation run of the durable relay next to the same run on
    /// the memory store. Empty if no pair was run.
    pub fn durability_markdown(&self) -> String {
        let mut out = String::new();
        for durable in self
            .runs
            .iter()
            .filter(|r| r.server == "relay-durable" && r.mode == "saturation")
        {
            let Some(memory) = self.runs.iter().find(|r| {
                r.server == "relay-memory"
                    && r.mode == "saturation"
                    && r.scenario == durable.scenario
                    && r.clients == durable.clients
            }) else {
                continue;
            };
            if out.is_empty() {
                let _ = writeln!(
                    out,
                    "| durability cost (saturation) | clients | durable msg/s | memory msg/s | durable / memory | durable p99 ms | memory p99 ms |"
                );
                let _ = writeln!(out, "|---|---|---|---|---|---|---|");
            }
            let p99 = |r: &RunResult| opt(r.latency.map(|l| l.p99_ms), 2);
            let ratio = (memory.msgs_per_s > 0.0).then(|| durable.msgs_per_s / memory.msgs_per_s);
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.0} | {} | {} | {} |",
                durable.scenario,
                durable.clients,
                durable.msgs_per_s,
                memory.msgs_per_s,
                opt(ratio, 2),
                p99(durable),
                p99(memory),
            );
        }
        out
    }

    /// The targets of the issue (durable store, authentication on), with pass/FAIL.
    pub fn targets_markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "| target | measured | target | ratio | result |");
        let _ = writeln!(out, "|---|---|---|---|---|");
        let durable = "relay-durable";
        let mut row = |name: String, measured: Option<f64>, target: Option<f64>, at_least: bool| {
            let (measured_text, target_text) = (opt(measured, 1), opt(target, 1));
            let (ratio, verdict) = match (measured, target) {
                (Some(m), Some(t)) if t > 0.0 => {
                    let pass = if at_least { m >= t } else { m <= t };
                    (format!("{:.2}", m / t), if pass { "pass" } else { "FAIL" })
                }
                _ => ("-".to_owned(), "n/a (not run)"),
            };
            let sign = if at_least { "≥" } else { "≤" };
            let _ = writeln!(
                out,
                "| {name} | {measured_text} | {sign} {target_text} | {ratio} | {verdict} |"
            );
        };
        for clients in [100, 1_000] {
            let relay = self.find("one-to-one", durable, "saturation", clients);
            let bare = self.find("one-to-one", "bare", "saturation", clients);
            let node = if clients == 100 {
                NODE_ONE_TO_ONE_100
            } else {
                NODE_ONE_TO_ONE_1000
            };
            row(
                format!("1:1 msg/s, {clients} clients, vs Node recipe"),
                relay.map(|r| r.msgs_per_s),
                Some(node),
                true,
            );
            row(
                format!("1:1 msg/s, {clients} clients, vs 50% of bare forwarder"),
                relay.map(|r| r.msgs_per_s),
                bare.map(|b| b.msgs_per_s * 0.5),
                true,
            );
        }
        for clients in [100, 1_000] {
            let p99 = |mode: &str| {
                self.find("one-to-one", durable, mode, clients)
                    .and_then(|r| r.latency)
                    .map(|l| l.p99_ms)
            };
            row(
                format!("1:1 p99 ms at 50% of saturation, {clients} clients"),
                p99("rate-50%"),
                Some(10.0),
                false,
            );
            if clients == 1_000 {
                row(
                    format!("1:1 p99 ms at saturation, {clients} clients"),
                    p99("saturation"),
                    Some(50.0),
                    false,
                );
            }
        }
        for recipients in [100, 1_000] {
            let relay = self.find("fan-out", durable, "saturation", recipients);
            let bare = self.find("fan-out", "bare", "saturation", recipients);
            row(
                format!("fan-out deliveries/s to {recipients}, vs 50% of bare forwarder"),
                relay.map(|r| r.msgs_per_s),
                bare.map(|b| b.msgs_per_s * 0.5),
                true,
            );
        }
        let idle = self.find("idle", durable, "idle", 0).or_else(|| {
            self.runs
                .iter()
                .find(|r| r.scenario == "idle" && r.server == durable)
        });
        row(
            "KiB of relay RSS per idle authenticated connection".to_owned(),
            idle.and_then(|r| r.kib_per_connection),
            Some(20.0),
            false,
        );
        row(
            "authenticated handshakes/s".to_owned(),
            idle.and_then(|r| r.handshakes_per_s),
            Some(4_000.0),
            true,
        );
        row(
            "authenticated handshakes/s one relay core can serve (from its CPU time per handshake)"
                .to_owned(),
            idle.and_then(RunResult::handshake_capacity),
            Some(4_000.0),
            true,
        );
        row(
            "idle connections held without error".to_owned(),
            idle.map(|r| {
                if r.errors == 0 {
                    r.still_open.unwrap_or(0) as f64
                } else {
                    0.0
                }
            }),
            Some(10_000.0),
            true,
        );
        let relay_runs: Vec<&RunResult> = self
            .runs
            .iter()
            .filter(|r| r.server.starts_with("relay") && r.scenario != "idle")
            .collect();
        let lost =
            (!relay_runs.is_empty()).then(|| relay_runs.iter().map(|r| r.losses.lost).sum::<u64>());
        // A "= 0" target: the ratio is meaningless, so it is written out.
        let lost_text = lost.map_or_else(|| "-".to_owned(), |n| n.to_string());
        let verdict = match lost {
            Some(0) => "pass",
            Some(_) => "FAIL",
            None => "n/a (not run)",
        };
        let _ = writeln!(
            out,
            "| messages lost over all relay runs | {lost_text} | = 0 | - | {verdict} |"
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(scenario: &str, server: &str, mode: &str, clients: usize, rate: f64) -> RunResult {
        RunResult {
            scenario: scenario.into(),
            server: server.into(),
            mode: mode.into(),
            clients,
            recipients_per_message: if scenario == "fan-out" { clients } else { 1 },
            msgs_per_s: rate,
            latency: Some(Latency {
                samples: 10,
                p50_ms: 1.0,
                p99_ms: 5.0,
                p999_ms: 9.0,
                max_ms: 12.0,
            }),
            ..RunResult::default()
        }
    }

    #[test]
    fn markdown_has_every_table_and_verdict() {
        let mut idle = run("idle", "relay-durable", "idle", 10_000, 0.0);
        idle.kib_per_connection = Some(18.5);
        idle.handshakes_per_s = Some(3_000.0);
        idle.still_open = Some(10_000);
        let report = Report {
            notes: vec!["smoke".into()],
            pinned: true,
            runs: vec![
                run("one-to-one", "relay-durable", "saturation", 100, 300_000.0),
                run("one-to-one", "bare", "saturation", 100, 800_000.0),
                run("one-to-one", "relay-durable", "rate-50%", 100, 150_000.0),
                idle,
            ],
        };
        let text = report.markdown();
        assert!(
            text.contains("| one-to-one | relay-durable | saturation | 100 | 1 | - | - |"),
            "{text}"
        );
        assert!(text.contains("pinned (server core 0, load generator core 1): yes"));
        assert!(
            text.contains(
                "| 1:1 msg/s, 100 clients, vs Node recipe | 300000.0 | ≥ 295000.0 | 1.02 | pass |"
            ),
            "{text}"
        );
        assert!(text.contains(
            "| 1:1 msg/s, 100 clients, vs 50% of bare forwarder | 300000.0 | ≥ 400000.0 | 0.75 | FAIL |"
        ));
        assert!(text.contains(
            "| 1:1 p99 ms at 50% of saturation, 100 clients | 5.0 | ≤ 10.0 | 0.50 | pass |"
        ));
        assert!(text.contains(
            "1:1 msg/s, 1000 clients, vs Node recipe | - | ≥ 48000.0 | - | n/a (not run) |"
        ));
        assert!(text.contains(
            "| KiB of relay RSS per idle authenticated connection | 18.5 | ≤ 20.0 | 0.93 | pass |"
        ));
        assert!(text.contains("| authenticated handshakes/s | 3000.0 | ≥ 4000.0 | 0.75 | FAIL |"));
        assert!(text.contains("| messages lost over all relay runs | 0 | = 0 | - | pass |"));
        assert!(!text.contains("durability cost"));
        let mut with_memory = report.clone();
        with_memory.runs.push(run(
            "one-to-one",
            "relay-memory",
            "saturation",
            100,
            600_000.0,
        ));
        assert!(
            with_memory
                .markdown()
                .contains("| one-to-one | 100 | 300000 | 600000 | 0.50 | 5.00 | 5.00 |")
        );
        let json = serde_json::to_string(&report).unwrap();
        assert!(json.contains("\"msgs_per_s\":300000.0"));
    }
}
