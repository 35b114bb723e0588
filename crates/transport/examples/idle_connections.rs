//! Measures what an idle authenticated connection costs the server: starts a server in a child
//! process (a dev certificate, a service that stores nothing), opens N authenticated client
//! connections to it from this process, and reports the server's resident memory before and
//! after, per connection.
//!
//! ```sh
//! cargo run --release -p sealwire-transport --example idle_connections -- 5000
//! ```
//!
//! N is bounded by the file-descriptor limit (`ulimit -n`) of both processes. This is a
//! measurement tool, not a test: its figures go into the issue notes and BENCHMARKS.md.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sealwire_core::IdentityKeyPair;
use sealwire_transport::client::{Client, ClientConfig, Event};
use sealwire_transport::code::CloseCode;
use sealwire_transport::server::{
    Connection, Refusal, Request, Server, ServerConfig, Service, Welcome,
};
use sealwire_transport::tls::{ClientTls, DevCertificate, fingerprint_hex, parse_fingerprint};

type BoxError = Box<dyn std::error::Error>;

/// Accepts every connection and ignores every request.
struct Idle;

impl Service for Idle {
    async fn connected(&self, _: &Connection) -> Result<Welcome, Refusal> {
        Ok(Welcome::default())
    }
    async fn request(&self, _: &Connection, _: Request) -> Result<(), Refusal> {
        Ok(())
    }
    async fn disconnected(&self, _: &Connection, _: CloseCode) {}
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match args.get(1).map(String::as_str) {
        Some("server") => runtime.block_on(server()),
        count => {
            let count = count.map_or(Ok(1000), str::parse)?;
            runtime.block_on(clients(count))
        }
    }
}

async fn server() -> Result<(), BoxError> {
    let certificate = DevCertificate::generate(&["localhost"])?;
    let mut config = ServerConfig::new(certificate.server_tls()?, ["localhost"]);
    // Every client comes from 127.0.0.1: lift the per-address caps and the connection rate
    // (defaults: 64 connections and 20/s per address), and room for the largest run.
    config.admission.max_connections = 100_000;
    config.admission.max_connections_per_ip = 100_000;
    config.admission.connection_rate_per_ip = 1_000_000;
    config.admission.connection_burst_per_ip = 1_000_000;
    let server = Server::bind("127.0.0.1:0".parse()?, config, Arc::new(Idle)).await?;
    println!(
        "{} {}",
        server.local_addr()?.port(),
        fingerprint_hex(&certificate.fingerprint())
    );
    let _handle = server.spawn()?;
    // Runs until the parent closes stdin.
    let mut line = String::new();
    let _ = tokio::task::spawn_blocking(move || std::io::stdin().read_line(&mut line)).await;
    Ok(())
}

fn rss_kib(pid: u32) -> Result<u64, BoxError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .ok_or("no VmRSS in /proc/<pid>/status")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .ok_or("bad VmRSS line")?
        .parse()?)
}

async fn clients(count: usize) -> Result<(), BoxError> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg("server")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let mut fields = line.split_whitespace();
    let port: u16 = fields.next().ok_or("no port")?.parse()?;
    let pin = parse_fingerprint(fields.next().ok_or("no fingerprint")?)?;
    let tls = ClientTls::builder().pin_sha256(pin).pin_only().build()?;
    let config = ClientConfig::new(format!("wss://localhost:{port}/"), tls);

    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_kib(child.id())?;
    let start = Instant::now();
    let mut held = Vec::with_capacity(count);
    let mut pending = Vec::new();
    for _ in 0..count {
        let identity = IdentityKeyPair::generate(&mut rand::rng());
        pending.push(Client::start(config.clone(), identity)?);
        if pending.len() == 200 {
            connect_all(&mut pending, &mut held).await?;
        }
    }
    connect_all(&mut pending, &mut held).await?;
    let elapsed = start.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_kib(child.id())?;
    let per_connection = (after.saturating_sub(before)) as f64 / count as f64;
    println!(
        "{count} idle authenticated connections in {:.2} s ({:.0} handshakes/s, with client work in the same machine); server RSS {before} KiB -> {after} KiB: {per_connection:.1} KiB per connection",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64()
    );
    drop(child.stdin.take());
    let _ = child.wait();
    Ok(())
}

async fn connect_all(pending: &mut Vec<Client>, held: &mut Vec<Client>) -> Result<(), BoxError> {
    for mut client in pending.drain(..) {
        loop {
            match tokio::time::timeout(Duration::from_secs(30), client.next_event()).await? {
                Some(Event::Connected(_)) => break,
                Some(Event::Disconnected { error, .. }) => return Err(error.into()),
                Some(Event::Stopped { error }) => return Err(error.into()),
                Some(_) => {}
                None => return Err("client ended".into()),
            }
        }
        held.push(client);
    }
    Ok(())
}
