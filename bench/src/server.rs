//! The server under test, run as a child process: the real `sealwire-relay` binary (with a
//! generated configuration: dev TLS, a durable redb store or the memory store in a fresh
//! temporary directory, limits raised so that the relay does not throttle the benchmark) or the
//! bare forwarder. Both are found next to the load generator's own executable, pinned to one
//! core with `taskset` when available, and print `listening: wss://ADDR/` and
//! `certificate-sha256: HEX` on stdout.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use sealwire_transport::tls::{ClientTls, parse_fingerprint};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::BoxError;

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ServerKind {
    /// The relay with its durable store (redb, fsync per group commit).
    RelayDurable,
    /// The relay with the in-memory store.
    RelayMemory,
    /// The bare forwarder (no auth, no storage, no crypto beyond TLS).
    Bare,
}

impl ServerKind {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::RelayDurable => "relay-durable",
            ServerKind::RelayMemory => "relay-memory",
            ServerKind::Bare => "bare",
        }
    }

    /// Whether it is the relay (authenticated clients).
    pub fn is_relay(self) -> bool {
        !matches!(self, ServerKind::Bare)
    }
}

/// How to start servers.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Pin the server with `taskset -c CPU` (if `taskset` exists).
    pub cpu: Option<usize>,
    /// The bare forwarder's runtime: `current` or `multi`.
    pub bare_runtime: String,
    /// The bare forwarder's WebSocket read buffer, bytes.
    pub bare_read_buffer: usize,
    /// Directory holding `sealwire-relay` and `bare_forwarder`.
    pub bin_dir: PathBuf,
    /// Where each run's temporary directory (configuration, redb file, server log) is made:
    /// the durable store's figures depend on this file system's fsync.
    pub work_dir: PathBuf,
}

/// A running server.
pub struct ServerProcess {
    child: Child,
    /// Its process id (the server itself: `taskset` execs it).
    pub pid: u32,
    /// Its WSS address.
    pub addr: SocketAddr,
    /// Its certificate's SHA-256.
    pub fingerprint: [u8; 32],
    /// Whether it was started under `taskset`.
    pub pinned: bool,
    dir: PathBuf,
}

/// Whether the `taskset` command exists.
pub fn taskset_available() -> bool {
    std::process::Command::new("taskset")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The relay configuration used for benchmarking: everything per-connection and per-address
/// raised far beyond the benchmark's needs, logging at `warn` (per-connection `info` lines
/// would be thousands of writes), no admin listener. Everything else (TLS, authentication,
/// timeouts, frame limits, outbound queues) is the default.
pub fn relay_config(data_dir: &Path, memory: bool) -> String {
    format!(
        r#"listen = "127.0.0.1:0"
data_dir = "{data}"
store = "{store}"

[admin]
enabled = false

[admission]
max_connections = 30000
max_connections_per_ip = 30000
connection_rate_per_ip = 1000000
connection_burst_per_ip = 1000000

[rates]
messages_per_second = 1000000000.0
message_burst = 1000000000.0
bytes_per_second = 1000000000000.0
byte_burst = 1000000000000.0

[quotas]
max_messages = 1000000000
max_bytes = 1099511627776
max_total_bytes = 1099511627776

[log]
level = "warn"
"#,
        data = data_dir.display(),
        store = if memory { "memory" } else { "redb" },
    )
}

impl ServerProcess {
    /// Starts `kind` in a fresh temporary directory and waits for its address and fingerprint.
    ///
    /// # Errors
    /// The binary is missing (build with `cargo build --release -p sealwire-relay -p
    /// sealwire-bench`), it does not start, or it prints nothing usable within 30 s.
    pub async fn start(
        kind: ServerKind,
        options: &ServerOptions,
    ) -> Result<ServerProcess, BoxError> {
        let dir = options.work_dir.join(format!(
            "sealwire-loadgen-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir)?;
        let (binary, args): (&str, Vec<String>) = match kind {
            ServerKind::RelayDurable | ServerKind::RelayMemory => {
                let config = dir.join("relay.toml");
                let data = dir.join("data");
                std::fs::write(
                    &config,
                    relay_config(&data, kind == ServerKind::RelayMemory),
                )?;
                (
                    "sealwire-relay",
                    vec![
                        "--dev".into(),
                        "--config".into(),
                        config.display().to_string(),
                    ],
                )
            }
            ServerKind::Bare => (
                "bare_forwarder",
                vec![
                    "--listen".into(),
                    "127.0.0.1:0".into(),
                    "--runtime".into(),
                    options.bare_runtime.clone(),
                    "--read-buffer".into(),
                    options.bare_read_buffer.to_string(),
                ],
            ),
        };
        let path = options.bin_dir.join(binary);
        if !path.exists() {
            return Err(format!(
                "{} not found: build with `cargo build --release -p sealwire-relay -p sealwire-bench`",
                path.display()
            )
            .into());
        }
        let pin = options.cpu.filter(|_| taskset_available());
        let mut command = match pin {
            Some(cpu) => {
                let mut command = Command::new("taskset");
                command.arg("-c").arg(cpu.to_string()).arg(&path);
                command
            }
            None => Command::new(&path),
        };
        let log = std::fs::File::create(dir.join("server.log"))?;
        command
            .args(&args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        let mut child = command.spawn()?;
        let pid = child.id().ok_or("the server exited at once")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let (mut addr, mut fingerprint) = (None, None);
        let read = async {
            while addr.is_none() || fingerprint.is_none() {
                let Some(line) = lines.next_line().await? else {
                    return Err::<(), BoxError>("the server exited before it was ready".into());
                };
                if let Some(rest) = line.strip_prefix("listening: wss://") {
                    addr = Some(rest.trim_end_matches('/').parse::<SocketAddr>()?);
                } else if let Some(hex) = line.strip_prefix("certificate-sha256: ") {
                    fingerprint = Some(parse_fingerprint(hex.trim())?);
                }
            }
            Ok(())
        };
        let ready = tokio::time::timeout(Duration::from_secs(30), read).await;
        let log_path = dir.join("server.log");
        let failed = |why: String| -> BoxError {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            format!("{} did not start: {why}\n{log}", kind.name()).into()
        };
        match ready {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(failed(error.to_string())),
            Err(_) => return Err(failed("nothing printed within 30 s".into())),
        }
        // Keep reading stdout so the server never writes to a closed pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (Some(addr), Some(fingerprint)) = (addr, fingerprint) else {
            return Err(failed("no address or fingerprint".into()));
        };
        Ok(ServerProcess {
            child,
            pid,
            addr,
            fingerprint,
            pinned: pin.is_some(),
            dir,
        })
    }

    /// TLS trusting exactly this server's certificate.
    ///
    /// # Errors
    /// Not expected (a pin is always a valid configuration).
    pub fn client_tls(&self) -> Result<ClientTls, BoxError> {
        Ok(ClientTls::builder()
            .pin_sha256(self.fingerprint)
            .pin_only()
            .build()?)
    }

    /// The server's resident memory, KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.pid)
    }

    /// The server's CPU time so far (user + system, all threads), from `/proc/<pid>/stat`.
    pub fn cpu_time(&self) -> Option<Duration> {
        cpu_time(self.pid, *CLOCK_TICKS)
    }

    /// Stops the server (SIGTERM, then SIGKILL after 10 s) and deletes its directory.
    pub async fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status()
            .await;
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `VmRSS` of process `pid`, KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vmrss(&status)
}

/// Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`; 100 on Linux if that
/// cannot be run).
static CLOCK_TICKS: std::sync::LazyLock<u64> = std::sync::LazyLock::new(|| {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|ticks| *ticks > 0)
        .unwrap_or(100)
});

/// The CPU time (user + system) of process `pid`, or `None` if it cannot be read.
pub fn cpu_time(pid: u32, ticks_per_second: u64) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_ticks(&stat)
        .map(|ticks| Duration::from_secs_f64(ticks as f64 / ticks_per_second.max(1) as f64))
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line. The command name (field 2)
/// is in parentheses and may contain spaces: fields are counted after its closing one.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn parse_vmrss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmrss_is_parsed() {
        let status = "Name:\tx\nVmPeak:\t 100 kB\nVmRSS:\t   2048 kB\nThreads:\t1\n";
        assert_eq!(parse_vmrss(status), Some(2048));
        assert_eq!(parse_vmrss("Name:\tx\n"), None);
        assert!(rss_kib(std::process::id()).is_some_and(|kib| kib > 0));
    }

    #[test]
    fn cpu_ticks_are_fields_14_and_15_counted_after_the_command_name() {
        let stat = "4242 (sealwire relay) S 1 4242 4242 0 -1 4194560 900 0 0 0 123 45 0 0 20 0 3";
        assert_eq!(parse_cpu_ticks(stat), Some(168));
        assert_eq!(parse_cpu_ticks("garbage"), None);
        assert_eq!(parse_cpu_ticks("1 (x) S 1 2"), None);
    }

    #[test]
    fn relay_config_is_valid_toml_for_both_stores() {
        let dir =
            std::env::temp_dir().join(format!("sealwire-loadgen-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for memory in [true, false] {
            let path = dir.join("relay.toml");
            std::fs::write(&path, relay_config(&dir.join("data"), memory)).unwrap();
            let config = sealwire_relay::config::Config::load(Some(&path), Vec::new()).unwrap();
            config.validate(true).unwrap();
            assert_eq!(
                config.store == sealwire_relay::config::StoreKind::Memory,
                memory
            );
            assert!(config.admission.max_connections_per_ip >= 10_000);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
