//! Messages carrying random canary strings go through a relay process logging at `trace`:
//! no canary appears anywhere in the relay's data directory or its logs — nor in the
//! clients' encrypted stores.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::time::Duration;

use support::process::{RelayFiles, RelayProcess, free_port};
use support::*;

fn canary() -> String {
    let bytes: [u8; 12] = rand::random();
    format!("CANARY-{}", hex::encode(bytes))
}

/// Every file under `dir`, read whole.
fn files_under(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canaries_never_reach_the_relays_disk_or_logs() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let relay_dir = dir.path().join("relay");
    std::fs::create_dir_all(&relay_dir).unwrap();
    let files = RelayFiles::new(&pki, &relay_dir);
    let relay = RelayProcess::start(&files, free_port());
    let port = relay.port;
    let users_dir = dir.path().join("users");
    let [alice, bob, carol] = &users(&users_dir, &["alice", "bob", "carol"])[..] else {
        unreachable!()
    };

    let mut canaries = Vec::new();
    let mut alice_client = alice.start(&pki, port);
    let mut bob_client = bob.start(&pki, port);
    let mut carol_client = carol.start(&pki, port);
    for client in [&mut alice_client, &mut bob_client, &mut carol_client] {
        connected(client).await;
    }
    // Live 1:1 and group traffic, read and confirmed.
    let group = alice_client
        .create_group("canaries", &["bob", "carol"])
        .await
        .unwrap();
    for _ in 0..3 {
        let direct = canary();
        alice_client
            .send("bob", direct.clone().into_bytes())
            .await
            .unwrap();
        assert_eq!(text(&next_message(&mut bob_client).await), direct);
        let in_group = canary();
        bob_client
            .send_group(group, in_group.clone().into_bytes())
            .await
            .unwrap();
        assert_eq!(text(&next_message(&mut alice_client).await), in_group);
        assert_eq!(text(&next_message(&mut carol_client).await), in_group);
        canaries.extend([direct, in_group]);
    }
    // Stored traffic: Carol is offline, so these sit in the relay's store, and one of them
    // stays there (she reads only after the scan).
    carol_client.close().await;
    for _ in 0..3 {
        let direct = canary();
        alice_client
            .send("carol", direct.clone().into_bytes())
            .await
            .unwrap();
        let in_group = canary();
        alice_client
            .send_group(group, in_group.clone().into_bytes())
            .await
            .unwrap();
        canaries.extend([direct, in_group]);
    }
    tokio::time::timeout(WAIT, alice_client.flush())
        .await
        .unwrap()
        .unwrap();
    // Bob reads his copies of the group messages; Carol's stay stored.
    for _ in 0..3 {
        next_message(&mut bob_client).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Graceful stop: everything the relay holds is on disk, every log line written.
    alice_client.close().await;
    bob_client.close().await;
    relay.terminate();

    let log = std::fs::read(&files.log).unwrap();
    assert!(
        log.len() > 10_000,
        "the relay logged at trace ({} bytes)",
        log.len()
    );
    assert!(contains(&log, b"relay started"), "the scan reads the log");
    let relay_files = files_under(&files.data);
    let stored: usize = relay_files.iter().map(|(_, bytes)| bytes.len()).sum();
    assert!(stored > 0, "the relay stored something");
    let client_files = files_under(&users_dir);
    for canary in &canaries {
        for needle in [canary.as_bytes().to_vec(), hex::encode(canary).into_bytes()] {
            assert!(!contains(&log, &needle), "a canary is in the relay's log");
            for (path, bytes) in relay_files.iter().chain(&client_files) {
                assert!(
                    !contains(bytes, &needle),
                    "a canary is in {}",
                    path.display()
                );
            }
        }
    }

    // The stored messages were really there: Carol gets them after a restart of the relay.
    let relay = RelayProcess::start(&files, port);
    let mut carol_client = carol.start(&pki, port);
    let mut read = Vec::new();
    for _ in 0..6 {
        read.push(text(&next_message(&mut carol_client).await));
    }
    read.sort();
    let mut expected: Vec<String> = canaries[6..].to_vec();
    expected.sort();
    assert_eq!(read, expected);
    carol_client.close().await;
    relay.terminate();
}
