//! The relay binary killed with SIGKILL in the middle of traffic and restarted on the same
//! data directory: every message the relay accepted is delivered, exactly once to the
//! application once transport duplicates are dropped by `(from, id)`; nothing the relay logged
//! contains a payload, even at trace level.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sealwire_transport::client::Event;
use sealwire_transport::frame::MessageId;
use support::*;

/// Messages Alice sends.
const MESSAGES: usize = 300;
/// Accepted messages seen before the relay is killed.
const KILL_AFTER: usize = 80;

struct Relay {
    child: Child,
}

impl Relay {
    /// Starts the binary and waits for its `listening:` line.
    fn start(dir: &Path, port: u16, cert: &Path, key: &Path, log: &Path) -> Relay {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_sealwire-relay"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--admin-listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(["--server-name", SERVER_NAME])
            .arg("--tls-cert")
            .arg(cert)
            .arg("--tls-key")
            .arg(key)
            .args(["--log-format", "json"])
            .env("RUST_LOG", "trace,tungstenite=trace")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (found, wait) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if line.starts_with("listening:") {
                    let _ = found.send(());
                }
            }
        });
        wait.recv_timeout(WAIT).expect("the relay did not start");
        Relay { child }
    }

    fn kill(mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }

    fn terminate(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "graceful shutdown exited with {status}");
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_traffic_loses_no_accepted_message() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = pki.write_files(dir.path());
    let log = dir.path().join("relay.log");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let relay = Relay::start(dir.path(), port, &cert, &key, &log);

    let bob_identity = identity();
    let mut bob = client(&pki, addr, duplicate(&bob_identity));
    connected(&mut bob).await;
    let bob_mailbox = bob.mailbox();
    let mut alice = client(&pki, addr, identity());
    connected(&mut alice).await;

    // Bob's application: records each message once by (from, id), acknowledges everything.
    let receiver = tokio::spawn(async move {
        let mut seen: HashMap<(String, MessageId), Vec<u8>> = HashMap::new();
        let mut duplicates = 0usize;
        while seen.len() < MESSAGES {
            let delivery = wait_for(&mut bob, delivered).await;
            let key = (delivery.from.to_hex(), delivery.id);
            if seen.insert(key, delivery.payload).is_some() {
                duplicates += 1;
            }
            bob.ack(vec![delivery.delivery]).await.unwrap();
        }
        bob.close().await;
        (seen, duplicates)
    });

    // Random payloads: also canaries that must never show up in the relay's logs.
    let payloads: Vec<Vec<u8>> = (0..MESSAGES)
        .map(|_| {
            let mut payload = vec![0u8; 48];
            rand::fill(&mut payload[..]);
            payload
        })
        .collect();
    let mut ids = HashMap::new();
    for payload in &payloads {
        let id = alice
            .send(vec![bob_mailbox], payload.clone())
            .await
            .unwrap();
        ids.insert(id, payload.clone());
    }

    let mut relay = Some(relay);
    let mut accepted = HashSet::new();
    let mut disconnects = 0;
    let mut killed = false;
    while accepted.len() < MESSAGES {
        match next_event(&mut alice).await {
            Event::Accepted(id) => {
                assert!(ids.contains_key(&id));
                accepted.insert(id);
            }
            Event::Disconnected { .. } => disconnects += 1,
            Event::Rejected { id, code } => panic!("send {id:?} rejected: {code}"),
            _ => {}
        }
        if accepted.len() >= KILL_AFTER && !killed {
            killed = true;
            relay.take().unwrap().kill();
            relay = Some(Relay::start(dir.path(), port, &cert, &key, &log));
        }
    }
    assert!(disconnects >= 1, "the kill was not seen by the sender");
    let (seen, duplicates) = tokio::time::timeout(Duration::from_secs(60), receiver)
        .await
        .expect("the recipient did not get everything")
        .unwrap();
    let received: HashSet<&Vec<u8>> = seen.values().collect();
    let sent: HashSet<&Vec<u8>> = payloads.iter().collect();
    assert_eq!(
        received, sent,
        "every accepted message arrives, once per (from, id)"
    );
    eprintln!("transport-level duplicates dropped by the application: {duplicates}");

    alice.close().await;
    relay.take().unwrap().terminate();

    // Blindness: no payload in any log line, in hex, base64-ish or raw.
    let logged = std::fs::read(&log).unwrap();
    let text = String::from_utf8_lossy(&logged);
    assert!(text.contains("authenticated"), "the log is empty?\n{text}");
    for payload in &payloads {
        assert!(!text.contains(&hex::encode(payload)));
        assert!(!logged.windows(payload.len()).any(|w| w == &payload[..]));
    }
}
