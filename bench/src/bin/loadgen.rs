//! The relay load generator (issue 8): N authenticated clients over real WSS to a relay on
//! 127.0.0.1, bounded in count and time, reporting delivered messages per second, end-to-end
//! latency (p50 / p99 / p99.9 / max) and losses, against the relay with its durable store, the
//! relay with the memory store, and the bare forwarder (the ceiling), plus idle connections
//! (RSS per connection, handshakes per second). See `bench/README.md`.
//!
//! ```sh
//! cargo build --release -p sealwire-relay -p sealwire-bench
//! target/release/loadgen all                               # the full set (a few minutes)
//! target/release/loadgen one-to-one --clients 20 --duration 2 --servers relay-memory
//! ```
//!
//! Writes `target/bench/loadgen.json` (every figure) and `target/bench/loadgen.md` (tables
//! and the targets with pass/FAIL).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use clap::{Parser, ValueEnum};
use sealwire_bench::BoxError;
use sealwire_bench::conn::Target;
use sealwire_bench::report::{Report, RunResult};
use sealwire_bench::scenario::{self, Load, Plan, Timing};
use sealwire_bench::server::{ServerKind, ServerOptions, ServerProcess, taskset_available};

/// What to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// 1:1 in a ring: saturation (closed loop), then open loop at fractions of it.
    OneToOne,
    /// One (or a few) senders to a group, split into requests of at most `max_recipients`.
    FanOut,
    /// Idle authenticated connections: RSS per connection, handshakes per second.
    Idle,
    /// All of the above.
    All,
}

/// The relay load generator: real authenticated clients over WSS against the relay (durable
/// and memory store) and a bare forwarder baseline, as child processes pinned to their own core.
#[derive(Debug, Parser)]
#[command(name = "loadgen")]
struct Args {
    /// Scenarios to run.
    #[arg(value_enum, default_values_t = [Scenario::All])]
    scenarios: Vec<Scenario>,
    /// Servers for the traffic scenarios.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [ServerKind::RelayDurable, ServerKind::RelayMemory, ServerKind::Bare])]
    servers: Vec<ServerKind>,
    /// Client counts of the 1:1 scenario (a ring: each sends to the next).
    #[arg(long, value_delimiter = ',', default_values_t = [100, 1000])]
    clients: Vec<usize>,
    /// Open-loop rates of the 1:1 scenario, as fractions of the measured saturation.
    #[arg(long, value_delimiter = ',', default_values_t = [0.5, 0.8])]
    rates: Vec<f64>,
    /// Group sizes of the fan-out scenario.
    #[arg(long, value_delimiter = ',', default_values_t = [100, 1000])]
    recipients: Vec<usize>,
    /// Senders in the fan-out scenario (each sends to the whole group).
    #[arg(long, default_value_t = 1)]
    fanout_senders: usize,
    /// 1:1 closed loop: messages each sender may have undelivered [default: --in-flight
    /// divided by the clients, between 1 and 64].
    #[arg(long)]
    window: Option<usize>,
    /// 1:1 closed loop: messages undelivered over all senders, when --window is not given. In a
    /// closed loop latency is in-flight / throughput (Little's law): enough to keep the server
    /// busy, no more, or the saturation latency measures the window rather than the server.
    #[arg(long, default_value_t = 2_000)]
    in_flight: usize,
    /// Fan-out closed loop: messages each sender may have undelivered (each counts once per
    /// recipient).
    #[arg(long, default_value_t = 8)]
    fanout_window: usize,
    /// Measurement window per run, seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Warm-up before the window, seconds (sent and checked for loss, not measured).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Longest wait for the last deliveries after sending stopped, seconds.
    #[arg(long, default_value_t = 10.0)]
    drain: f64,
    /// Connections opened at once.
    #[arg(long, default_value_t = 100)]
    connect_concurrency: usize,
    /// Idle connections to open.
    #[arg(long, default_value_t = 10_000)]
    idle_connections: usize,
    /// How long idle connections are held before checking they are all open, seconds.
    #[arg(long, default_value_t = 5.0)]
    idle_hold: f64,
    /// Servers for the idle scenario.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [ServerKind::RelayDurable, ServerKind::Bare])]
    idle_servers: Vec<ServerKind>,
    /// Do not pin the server and the load generator to separate cores.
    #[arg(long)]
    no_pin: bool,
    /// Core of the server.
    #[arg(long, default_value_t = 0)]
    server_cpu: usize,
    /// Core of the load generator.
    #[arg(long, default_value_t = 1)]
    loadgen_cpu: usize,
    /// The bare forwarder's runtime (`current` or `multi`).
    #[arg(long, default_value = "current", value_parser = ["current", "multi"])]
    bare_runtime: String,
    /// The bare forwarder's WebSocket read buffer, bytes [default: the transport's, which the
    /// relay uses].
    #[arg(long, default_value_t = sealwire_transport::limits::Limits::default().read_buffer_size)]
    bare_read_buffer: usize,
    /// Directory of `sealwire-relay` and `bare_forwarder` [default: next to this program].
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Directory for the servers' temporary directories (redb store, logs) [default: the
    /// system's temporary directory]. The durable store's figures depend on its fsync.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// JSON output.
    #[arg(long, default_value = "target/bench/loadgen.json")]
    json: PathBuf,
    /// Markdown output.
    #[arg(long, default_value = "target/bench/loadgen.md")]
    markdown: PathBuf,
}

/// Upper bounds, so that no command line runs unbounded.
const MAX_CLIENTS: usize = 15_000;
const MAX_SECONDS: f64 = 300.0;

fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    check_bounds(&args)?;
    let mut notes = Vec::new();
    let pinned = !args.no_pin && pin_self(args.loadgen_cpu, &mut notes);
    raise_nofile(&mut notes);
    // One thread: the load generator owns one core, like the server.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args, notes, pinned))
}

fn check_bounds(args: &Args) -> Result<(), BoxError> {
    let counts = args
        .clients
        .iter()
        .chain(&args.recipients)
        .chain([&args.idle_connections]);
    for &count in counts {
        if count == 0 || count > MAX_CLIENTS {
            return Err(format!("client counts must be 1..={MAX_CLIENTS}, not {count}").into());
        }
    }
    for seconds in [args.duration, args.warmup, args.drain, args.idle_hold] {
        if !(0.0..=MAX_SECONDS).contains(&seconds) {
            return Err(format!("durations must be 0..={MAX_SECONDS} s, not {seconds}").into());
        }
    }
    if args.duration <= 0.0 {
        return Err("--duration must be positive".into());
    }
    if args.rates.iter().any(|r| !(*r > 0.0 && *r <= 2.0)) {
        return Err("--rates are fractions of saturation in (0, 2]".into());
    }
    let windows = [args.window.unwrap_or(1), args.fanout_window, args.in_flight];
    if args.fanout_senders == 0
        || args.fanout_senders > 64
        || windows.iter().any(|w| !(1..=100_000).contains(w))
    {
        return Err("--fanout-senders must be 1..=64, windows and --in-flight 1..=100000".into());
    }
    Ok(())
}

/// Pins this process (all threads; called before any are made) with `taskset -a -p`.
fn pin_self(cpu: usize, notes: &mut Vec<String>) -> bool {
    if !taskset_available() {
        notes.push("taskset not found: nothing pinned".into());
        return false;
    }
    let pinned = Command::new("taskset")
        .args([
            "-a",
            "-p",
            "-c",
            &cpu.to_string(),
            &std::process::id().to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    let allowed = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("Cpus_allowed_list:")
                    .map(|v| v.trim().to_owned())
            })
        })
        .unwrap_or_default();
    notes.push(format!(
        "load generator pinned to core {cpu}: {} (Cpus_allowed_list {allowed})",
        if pinned { "yes" } else { "no" }
    ));
    pinned && allowed == cpu.to_string()
}

/// Raises the soft open-file limit to the hard one with `prlimit` (no unsafe code here); the
/// servers inherit it.
fn raise_nofile(notes: &mut Vec<String>) {
    let read = || -> Option<(String, String)> {
        let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        let mut fields = line.split_whitespace().skip(3);
        Some((fields.next()?.to_owned(), fields.next()?.to_owned()))
    };
    let Some((soft, hard)) = read() else {
        notes.push("open-file limit unknown".into());
        return;
    };
    if soft != hard {
        let _ = Command::new("prlimit")
            .args([
                "--pid",
                &std::process::id().to_string(),
                &format!("--nofile={hard}:{hard}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let now = read().map_or_else(|| "?".to_owned(), |(soft, _)| soft);
    notes.push(format!(
        "open-file limit: soft {now} (was {soft}), hard {hard}"
    ));
}

async fn run(args: Args, mut notes: Vec<String>, pinned: bool) -> Result<(), BoxError> {
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()?
            .parent()
            .ok_or("no directory for this executable")?
            .to_path_buf(),
    };
    let options = ServerOptions {
        cpu: (!args.no_pin).then_some(args.server_cpu),
        bare_runtime: args.bare_runtime.clone(),
        bare_read_buffer: args.bare_read_buffer,
        bin_dir,
        work_dir: args.work_dir.clone().unwrap_or_else(std::env::temp_dir),
    };
    notes.push(format!(
        "servers' directories (durable store) under {}",
        options.work_dir.display()
    ));
    notes.push(format!(
        "payload 256 B; 1:1 window per sender {}; fan-out window {} messages per sender; warm-up {} s, window {} s, drain timeout {} s; bare forwarder runtime {}, read buffer {} B; load generator on one current-thread runtime",
        args.window.map_or_else(|| format!("{} / clients (1..=64)", args.in_flight), |w| w.to_string()),
        args.fanout_window,
        args.warmup, args.duration, args.drain, args.bare_runtime, args.bare_read_buffer
    ));
    let mut report = Report {
        notes,
        pinned,
        runs: Vec::new(),
    };
    let wants =
        |s: Scenario| args.scenarios.contains(&s) || args.scenarios.contains(&Scenario::All);
    let timing = Timing {
        warmup: Duration::from_secs_f64(args.warmup),
        duration: Duration::from_secs_f64(args.duration),
        drain: Duration::from_secs_f64(args.drain),
        connect_concurrency: args.connect_concurrency,
    };
    for &server in &args.servers {
        if wants(Scenario::OneToOne) {
            for &clients in &args.clients {
                let plan = Plan::ring(clients);
                let window = args
                    .window
                    .unwrap_or((args.in_flight / clients.max(1)).clamp(1, 64));
                let closed = Load::Closed { window };
                let saturation = traffic(
                    &options,
                    server,
                    "one-to-one",
                    "saturation",
                    &plan,
                    closed,
                    timing,
                )
                .await;
                let measured = saturation.msgs_per_s;
                record(&mut report, saturation, &args)?;
                for &fraction in &args.rates {
                    let mode = format!("rate-{:.0}%", fraction * 100.0);
                    if measured <= 0.0 {
                        continue;
                    }
                    let load = Load::Open {
                        rate: measured * fraction,
                    };
                    let result =
                        traffic(&options, server, "one-to-one", &mode, &plan, load, timing).await;
                    record(&mut report, result, &args)?;
                }
            }
        }
        if wants(Scenario::FanOut) {
            for &recipients in &args.recipients {
                let plan = Plan::fan_out(args.fanout_senders, recipients);
                let closed = Load::Closed {
                    window: args.fanout_window,
                };
                let result = traffic(
                    &options,
                    server,
                    "fan-out",
                    "saturation",
                    &plan,
                    closed,
                    timing,
                )
                .await;
                record(&mut report, result, &args)?;
            }
        }
    }
    if wants(Scenario::Idle) {
        for &server in &args.idle_servers {
            let result = idle(&options, server, &args).await;
            record(&mut report, result, &args)?;
        }
    }
    eprintln!(
        "loadgen: wrote {} and {}",
        args.json.display(),
        args.markdown.display()
    );
    Ok(())
}

/// Adds a result, prints its summary and rewrites both outputs (partial results survive an
/// interrupted run).
fn record(report: &mut Report, result: RunResult, args: &Args) -> Result<(), BoxError> {
    let latency = result.latency.map_or_else(String::new, |l| {
        format!(
            " p50 {:.2} ms p99 {:.2} ms p99.9 {:.2} ms max {:.2} ms",
            l.p50_ms, l.p99_ms, l.p999_ms, l.max_ms
        )
    });
    let idle = result.kib_per_connection.map_or_else(String::new, |kib| {
        format!(
            " {kib:.1} KiB/conn, {:.0} handshakes/s, still open {:?}",
            result.handshakes_per_s.unwrap_or(0.0),
            result.still_open
        )
    });
    eprintln!(
        "loadgen: {} {} {} clients={} fan={}: {:.0} msg/s sent={} expected={} delivered={} lost={} dup={}{latency}{idle} errors={} {:?}",
        result.scenario,
        result.server,
        result.mode,
        result.clients,
        result.recipients_per_message,
        result.msgs_per_s,
        result.sent,
        result.losses.expected,
        result.losses.delivered,
        result.losses.lost,
        result.losses.duplicates,
        result.errors,
        result.error_samples.first(),
    );
    report.runs.push(result);
    for path in [&args.json, &args.markdown] {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
    }
    std::fs::write(&args.json, serde_json::to_string_pretty(report)?)?;
    std::fs::write(&args.markdown, report.markdown())?;
    Ok(())
}

fn failed(
    scenario: &str,
    server: ServerKind,
    mode: &str,
    clients: usize,
    error: &BoxError,
) -> RunResult {
    RunResult {
        scenario: scenario.into(),
        server: server.name().into(),
        mode: mode.into(),
        clients,
        errors: 1,
        error_samples: vec![error.to_string()],
        ..RunResult::default()
    }
}

async fn traffic(
    options: &ServerOptions,
    kind: ServerKind,
    scenario: &str,
    mode: &str,
    plan: &Plan,
    load: Load,
    timing: Timing,
) -> RunResult {
    let process = match ServerProcess::start(kind, options).await {
        Ok(process) => process,
        Err(error) => return failed(scenario, kind, mode, plan.clients, &error),
    };
    let outcome = async {
        let target = Target {
            relay: kind.is_relay(),
            addr: process.addr,
            tls: process.client_tls()?,
        };
        scenario::traffic(&target, plan, load, timing, &|| process.rss_kib()).await
    }
    .await;
    let pinned = process.pinned;
    process.stop().await;
    match outcome {
        Ok(mut result) => {
            result.scenario = scenario.into();
            result.server = kind.name().into();
            result.mode = mode.into();
            result.pinned = pinned;
            result
        }
        Err(error) => failed(scenario, kind, mode, plan.clients, &error),
    }
}

async fn idle(options: &ServerOptions, kind: ServerKind, args: &Args) -> RunResult {
    let process = match ServerProcess::start(kind, options).await {
        Ok(process) => process,
        Err(error) => return failed("idle", kind, "idle", args.idle_connections, &error),
    };
    let target = match process.client_tls() {
        Ok(tls) => Target {
            relay: kind.is_relay(),
            addr: process.addr,
            tls,
        },
        Err(error) => {
            process.stop().await;
            return failed("idle", kind, "idle", args.idle_connections, &error);
        }
    };
    let mut result = scenario::idle(
        &target,
        args.idle_connections,
        args.connect_concurrency,
        Duration::from_secs_f64(args.idle_hold),
        &|| process.rss_kib(),
        &|| process.cpu_time(),
    )
    .await;
    result.scenario = "idle".into();
    result.server = kind.name().into();
    result.mode = "idle".into();
    result.pinned = process.pinned;
    process.stop().await;
    result
}
