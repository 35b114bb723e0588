//! The relay as a child process (`sealwire relay`), to kill it for real and to read its logs.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{Pki, SERVER_NAME, WAIT};

/// A relay process serving the test CA's certificate from files, with its data directory
/// and its log (stderr, at `trace`) under `dir`.
pub struct RelayProcess {
    child: Child,
    pub port: u16,
}

/// Paths the relay process uses.
pub struct RelayFiles {
    pub data: PathBuf,
    pub log: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl RelayFiles {
    pub fn new(pki: &Pki, dir: &Path) -> RelayFiles {
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, pki.server.cert_pem()).unwrap();
        std::fs::write(&key, pki.server.key_pem().as_bytes()).unwrap();
        RelayFiles {
            data: dir.join("data"),
            log: dir.join("relay.log"),
            cert,
            key,
        }
    }
}

impl RelayProcess {
    /// Starts `sealwire relay` on `port` and waits for its `listening:` line.
    pub fn start(files: &RelayFiles, port: u16) -> RelayProcess {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&files.log)
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_sealwire"))
            .arg("relay")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--admin-listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(&files.data)
            .args(["--server-name", SERVER_NAME])
            .arg("--tls-cert")
            .arg(&files.cert)
            .arg("--tls-key")
            .arg(&files.key)
            .args(["--log-format", "json"])
            .env("RUST_LOG", "trace")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (found, wait) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Some(address) = line.strip_prefix("listening: wss://") {
                    let port = address.trim_end_matches('/').rsplit(':').next().unwrap();
                    let _ = found.send(port.parse::<u16>().unwrap());
                }
            }
        });
        let port = wait.recv_timeout(WAIT).expect("the relay did not start");
        RelayProcess { child, port }
    }

    /// SIGKILL: no shutdown of any kind.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, and waits for a clean exit.
    pub fn terminate(mut self) {
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

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
