//! The `sealwire` binary end to end: a dev relay as a child process, homes in temporary
//! directories, every command run as a real process with a bounded wait.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Every command must finish within this.
const LIMIT: Duration = Duration::from_secs(40);

const BIN: &str = env!("CARGO_BIN_EXE_sealwire");

/// Environment variables of the command that must not leak in from the test's environment.
const CLEARED: &[&str] = &[
    "SEALWIRE_HOME",
    "SEALWIRE_KEY_FILE",
    "SEALWIRE_STORE_KEY",
    "SEALWIRE_PASSPHRASE",
    "SEALWIRE_RELAY",
    "SEALWIRE_PIN",
    "SEALWIRE_CA",
    "RUST_LOG",
];

fn base_command(home: &Path) -> Command {
    let mut command = Command::new(BIN);
    for var in CLEARED {
        command.env_remove(var);
    }
    command.env("HOME", home.parent().unwrap());
    command.arg("--home").arg(home);
    command
}

/// What a finished command printed.
struct Output {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {} after {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.took, self.stdout, self.stderr
        )
    }
}

/// Runs `command` with `stdin`, killing it (and failing) after [`LIMIT`].
fn run(mut command: Command, stdin: &str) -> Output {
    let start = Instant::now();
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_owned();
    std::thread::spawn(move || {
        let _ = input.write_all(stdin.as_bytes());
    });
    let stdout = reader(child.stdout.take().unwrap());
    let stderr = reader(child.stderr.take().unwrap());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > LIMIT {
            child.kill().unwrap();
            let _ = child.wait();
            panic!(
                "{command:?} did not finish within {LIMIT:?}; stderr: {}",
                stderr.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        code: status.code().unwrap_or(-1),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
        took: start.elapsed(),
    }
}

fn reader(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// A user: a home directory and a store key in the environment.
struct User {
    home: PathBuf,
    key: String,
    relay: Option<(String, String)>,
}

impl User {
    /// Runs `keygen` in `root/name` with a key from `SEALWIRE_STORE_KEY`.
    fn create(root: &Path, name: &str) -> User {
        let user = User {
            home: root.join(name),
            key: hex::encode(rand::random::<[u8; 32]>()),
            relay: None,
        };
        let out = user.run(&["keygen"], "");
        assert_eq!(out.code, 0, "{out:?}");
        user
    }

    fn with_relay(mut self, relay: &Relay) -> User {
        self.relay = Some((relay.url.clone(), relay.pin.clone()));
        self
    }

    fn command(&self) -> Command {
        let mut command = base_command(&self.home);
        command.env("SEALWIRE_STORE_KEY", &self.key);
        if let Some((url, pin)) = &self.relay {
            command.env("SEALWIRE_RELAY", url).env("SEALWIRE_PIN", pin);
        }
        command
    }

    fn run(&self, args: &[&str], stdin: &str) -> Output {
        let mut command = self.command();
        command.args(args);
        run(command, stdin)
    }

    /// Runs and expects success.
    fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args, "");
        assert_eq!(out.code, 0, "{args:?}: {out:?}");
        out
    }

    fn identity(&self) -> String {
        let out = self.ok(&["id"]);
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with("identity: "))
            .unwrap();
        line["identity: ".len()..].to_owned()
    }

    fn mailbox(&self) -> String {
        let out = self.ok(&["id"]);
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with("mailbox: "))
            .unwrap();
        line["mailbox: ".len()..].to_owned()
    }

    fn recv(&self) -> Output {
        self.ok(&["recv", "--wait", "1"])
    }
}

/// `sealwire relay --dev` as a child process, killed on drop.
struct Relay {
    child: Child,
    url: String,
    pin: String,
    _data: tempfile::TempDir,
}

impl Relay {
    fn start() -> Relay {
        let data = tempfile::tempdir().unwrap();
        let mut child = Command::new(BIN)
            .args(["relay", "--dev", "--listen", "127.0.0.1:0"])
            .args(["--admin-listen", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let (mut url, mut pin) = (None, None);
        while url.is_none() || pin.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .expect("the relay printed its address");
            if let Some(rest) = line.strip_prefix("listening: ") {
                url = Some(rest.trim().to_owned());
            }
            if let Some(rest) = line.strip_prefix("certificate-sha256: ") {
                pin = Some(rest.trim().to_owned());
            }
        }
        Relay {
            child,
            url: url.unwrap(),
            pin: pin.unwrap(),
            _data: data,
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two users who added each other; Bob has connected once (published his prekeys).
fn pair(root: &Path, relay: &Relay) -> (User, User) {
    let alice = User::create(root, "alice").with_relay(relay);
    let bob = User::create(root, "bob").with_relay(relay);
    alice.ok(&["contact", "add", "bob", &bob.identity()]);
    bob.ok(&["contact", "add", "alice", &alice.identity()]);
    let out = bob.recv();
    assert_eq!(out.stdout, "");
    (alice, bob)
}

#[test]
fn keygen_id_and_contacts() {
    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("alice");
    let key_file = root.path().join("alice.key");

    // keygen with a new key file, then id with it.
    let mut keygen = base_command(&home);
    keygen.arg("keygen").arg("--new-key-file").arg(&key_file);
    let out = run(keygen, "");
    assert_eq!(out.code, 0, "{out:?}");
    let identity = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("identity: "))
        .unwrap();
    assert_eq!(identity.len(), 256);
    assert!(out.stdout.contains("mailbox: "), "{out:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let alice = |args: &[&str]| {
        let mut command = base_command(&home);
        command.arg("--key-file").arg(&key_file).args(args);
        run(command, "")
    };
    let out = alice(&["id"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout.lines().next(),
        Some(format!("identity: {identity}").as_str())
    );

    // A second keygen is refused.
    let out = alice(&["keygen"]);
    assert_eq!(out.code, 12, "{out:?}");
    assert!(out.stderr.contains("already exists"), "{out:?}");

    // Contacts: add, list, verify, undo.
    let bob = User::create(root.path(), "bob");
    let bob_identity = bob.identity();
    let out = alice(&["contact", "add", "bob", &bob_identity]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("safety number"), "{out:?}");
    let out = alice(&["contact", "list"]);
    assert!(out.stdout.starts_with("bob  unverified  "), "{out:?}");
    let safety = out.stdout["bob  unverified  ".len()..].trim().to_owned();
    assert_eq!(safety.len(), 60 + 11);
    // Both sides see the same safety number.
    bob.ok(&["contact", "add", "alice", identity]);
    assert!(
        bob.ok(&["contact", "safety", "alice"])
            .stdout
            .contains(&safety)
    );
    assert_eq!(alice(&["contact", "verify", "bob"]).code, 0);
    assert!(
        alice(&["contact", "list"])
            .stdout
            .starts_with("bob  verified    ")
    );
    assert_eq!(alice(&["contact", "verify", "bob", "--undo"]).code, 0);
    assert!(
        alice(&["contact", "list"])
            .stdout
            .starts_with("bob  unverified  ")
    );
    assert_eq!(alice(&["contact", "verify", "bob"]).code, 0);

    // Unknown contact.
    let out = alice(&["contact", "verify", "carol"]);
    assert_eq!(out.code, 5, "{out:?}");
    assert!(out.stderr.contains("no contact named \"carol\""), "{out:?}");

    // A changed identity: a loud warning with both safety numbers, and a refusal.
    let mallory = User::create(root.path(), "mallory");
    let out = alice(&["contact", "add", "bob", &mallory.identity()]);
    assert_eq!(out.code, 7, "{out:?}");
    assert!(out.stderr.contains("WARNING"), "{out:?}");
    assert!(out.stderr.contains(&safety), "{out:?}");
    assert!(out.stderr.contains("new safety number:"), "{out:?}");
    assert!(out.stderr.contains("--replace"), "{out:?}");
    let list = alice(&["contact", "list"]);
    assert!(
        list.stdout.contains(&safety) && list.stdout.contains("verified"),
        "{list:?}"
    );
    // With --replace it is accepted, and no longer verified.
    let out = alice(&["contact", "add", "bob", &mallory.identity(), "--replace"]);
    assert_eq!(out.code, 0, "{out:?}");
    let list = alice(&["contact", "list"]);
    assert!(list.stdout.starts_with("bob  unverified  "), "{list:?}");
    assert!(!list.stdout.contains(&safety), "{list:?}");
    assert_eq!(alice(&["contact", "remove", "bob"]).code, 0);
    assert_eq!(alice(&["contact", "list"]).stdout, "");

    // A wrong key, and no store.
    let mut wrong = base_command(&home);
    wrong.env("SEALWIRE_STORE_KEY", "00".repeat(32)).arg("id");
    let out = run(wrong, "");
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("wrong passphrase or key"), "{out:?}");
    let mut missing = base_command(&root.path().join("nobody"));
    missing.env("SEALWIRE_STORE_KEY", "00".repeat(32)).arg("id");
    let out = run(missing, "");
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("sealwire keygen"), "{out:?}");
}

#[test]
fn messages_groups_and_chat() {
    let root = tempfile::tempdir().unwrap();
    let relay = Relay::start();
    let (alice, bob) = pair(root.path(), &relay);

    // 1:1, and each message printed once across two runs.
    alice.ok(&["send", "bob", "hi bob"]);
    let out = alice.run(&["send", "bob"], "from stdin\n");
    assert_eq!(out.code, 0, "{out:?}");
    let out = bob.recv();
    assert_eq!(out.stdout, "alice\thi bob\nalice\tfrom stdin\n", "{out:?}");
    assert!(out.stderr.contains("alice is not verified"), "{out:?}");
    assert_eq!(bob.recv().stdout, "");

    // Control characters from the other side are escaped.
    let evil = "evil\x1b]0;pwned\x07\x1b[2J\rfake\n[alice]\u{9b}x\u{202e}";
    alice.ok(&["send", "bob", evil]);
    let out = bob.recv();
    assert_eq!(
        out.stdout,
        "alice\tevil\\x1b]0;pwned\\x07\\x1b[2J\\rfake\\n[alice]\\u{9b}x\\u{202e}\n"
    );
    assert!(!out.stdout.contains(['\x1b', '\r', '\x07', '\u{9b}']));

    // A group.
    let out = alice.ok(&["group", "create", "team", "bob"]);
    assert!(out.stdout.contains("created group team"), "{out:?}");
    let list = alice.ok(&["group", "list"]);
    let id = list.stdout.split('\t').nth(1).unwrap().to_owned();
    assert_eq!(id.len(), 32, "{list:?}");
    alice.ok(&["send", "--group", "team", "hello team"]);
    let out = bob.recv();
    assert_eq!(
        out.stdout,
        format!("alice@{}\thello team\n", &id[..8]),
        "{out:?}"
    );
    assert!(out.stderr.contains("added you to group"), "{out:?}");
    bob.ok(&["send", "--group", &id[..8], "bob here"]);
    assert_eq!(alice.recv().stdout, "bob@team\tbob here\n");
    let out = alice.run(&["send", "--group", "nope", "x"], "");
    assert_eq!(out.code, 6, "{out:?}");

    // Chat with piped input: two lines, then /quit.
    let out = alice.run(&["chat", "bob"], "line one\nline two\n/quit\n");
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("talking to bob, safety number"),
        "{out:?}"
    );
    assert!(out.stderr.contains("NOT VERIFIED"), "{out:?}");
    assert_eq!(bob.recv().stdout, "alice\tline one\nalice\tline two\n");

    // Chat shows what arrives, marked unverified; end of input quits too.
    bob.ok(&["send", "alice", "to your chat"]);
    let out = alice.run(&["chat", "bob"], "");
    assert_eq!(out.code, 0, "{out:?}");
    if !out.stdout.contains("[bob (unverified)] to your chat") {
        // It may arrive after end of input was read: then the next run prints it.
        assert!(alice.recv().stdout.contains("bob\tto your chat"), "{out:?}");
    }

    // An unknown sender.
    let carol = User::create(root.path(), "carol").with_relay(&relay);
    carol.ok(&["contact", "add", "bob", &bob.identity()]);
    carol.ok(&["send", "bob", "who am i"]);
    let out = bob.recv();
    let prefix = &carol.mailbox()[..16];
    assert_eq!(out.stdout, format!("unknown:{prefix}\twho am i\n"));
    assert!(out.stderr.contains("UNKNOWN SENDER"), "{out:?}");
}

#[test]
fn connection_errors() {
    let root = tempfile::tempdir().unwrap();
    let relay = Relay::start();
    let (alice, _bob) = pair(root.path(), &relay);

    // A closed port: a fast, clear failure.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!("wss://127.0.0.1:{port}/");
    let out = alice.run(&["send", "--relay", &url, "bob", "hi"], "");
    assert_eq!(out.code, 8, "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("cannot reach the relay at {url}")),
        "{out:?}"
    );
    assert!(out.took < Duration::from_secs(10), "{out:?}");
    let out = alice.run(&["recv", "--relay", &url], "");
    assert_eq!(out.code, 8, "{out:?}");

    // No pin: the dev certificate is not trusted, and the message says what to do.
    let mut command = base_command(&alice.home);
    command
        .env("SEALWIRE_STORE_KEY", &alice.key)
        .args(["send", "--relay", &relay.url, "bob", "hi"]);
    let out = run(command, "");
    assert_eq!(out.code, 9, "{out:?}");
    assert!(out.stderr.contains("not trusted"), "{out:?}");
    assert!(out.stderr.contains("--pin"), "{out:?}");
    // A wrong pin.
    let out = alice.run(&["recv", "--pin", &"ab".repeat(32)], "");
    assert_eq!(out.code, 9, "{out:?}");

    // No relay given.
    let mut command = base_command(&alice.home);
    command
        .env("SEALWIRE_STORE_KEY", &alice.key)
        .args(["send", "bob", "hi"]);
    let out = run(command, "");
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("--relay"), "{out:?}");

    // An unknown contact is refused before connecting.
    let out = alice.run(&["send", "carol", "hi"], "");
    assert_eq!(out.code, 5, "{out:?}");

    // A recipient that never connected to this relay.
    let dave = User::create(root.path(), "dave");
    alice.ok(&["contact", "add", "dave", &dave.identity()]);
    let out = alice.run(&["send", "dave", "hi"], "");
    assert_eq!(out.code, 10, "{out:?}");
    assert!(out.stderr.contains("not delivered to dave"), "{out:?}");
}
