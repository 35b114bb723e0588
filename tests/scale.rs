//! 100 clients through one relay over WSS on 127.0.0.1, 1:1 and in a group, with exact
//! accounting: every message arrives, none twice.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::needless_range_loop)] // indices name users around the ring

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sealwire::client::{Conversation, Event};
use support::*;

const CLIENTS: usize = 100;
/// Each client writes to these offsets around the ring.
const PEERS: [usize; 3] = [1, 7, 31];
const PER_PEER: usize = 4;
const GROUP_SIZE: usize = 20;
const PER_MEMBER: usize = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_clients_exact_accounting() {
    let pki = Arc::new(Pki::new());
    let root = tempfile::tempdir().unwrap();
    let mut config = relay_config(&root.path().join("relay"));
    config.admission.max_connections_per_ip = 1_000;
    config.admission.connection_rate_per_ip = 1_000;
    config.admission.connection_burst_per_ip = 1_000;
    let relay = start_relay(&pki, config).await;
    let port = relay.local_addr().port();

    let users: Vec<User> = (0..CLIENTS)
        .map(|i| User::create(root.path(), &format!("u{i:03}")))
        .collect();
    for (i, user) in users.iter().enumerate() {
        let mut wanted: Vec<&User> = PEERS.iter().map(|d| &users[(i + d) % CLIENTS]).collect();
        if i == 0 {
            wanted.extend(
                users[1..GROUP_SIZE]
                    .iter()
                    .filter(|u| !PEERS.iter().any(|d| u.name == users[*d].name)),
            );
        }
        user.add_contacts(&wanted);
    }
    // What each client must read: (sender name, body) → count.
    let mut expected: Vec<BTreeMap<(String, String), usize>> = vec![BTreeMap::new(); CLIENTS];
    for i in 0..CLIENTS {
        for d in PEERS {
            for k in 0..PER_PEER {
                *expected[(i + d) % CLIENTS]
                    .entry((
                        users[i].name.clone(),
                        format!(
                            "{} to {} #{k}",
                            users[i].name,
                            users[(i + d) % CLIENTS].name
                        ),
                    ))
                    .or_default() += 1;
            }
        }
    }
    for sender in 0..GROUP_SIZE {
        for k in 0..PER_MEMBER {
            for reader in (0..GROUP_SIZE).filter(|r| *r != sender) {
                *expected[reader]
                    .entry((
                        users[sender].name.clone(),
                        format!("group from {} #{k}", users[sender].name),
                    ))
                    .or_default() += 1;
            }
        }
    }

    let mut clients: Vec<_> = users
        .iter()
        .map(|u| u.start_with(&pki, port, |options| options.one_time_prekeys = 10))
        .collect();
    for client in &mut clients {
        connected(client).await;
    }
    let identities: BTreeMap<[u8; 128], String> = users
        .iter()
        .map(|u| (u.identity.to_bytes(), u.name.clone()))
        .collect();
    let identities = Arc::new(identities);
    let expected_all = Arc::new(expected.clone());

    // The group forms first (its members must be in it before they write to it).
    let members: Vec<String> = users[1..GROUP_SIZE]
        .iter()
        .map(|u| u.name.clone())
        .collect();
    let member_refs: Vec<&str> = members.iter().map(String::as_str).collect();
    let group = clients[0].create_group("big", &member_refs).await.unwrap();

    // Every client reads in its own task, counting what it reads, and writes its share.
    let mut tasks = Vec::new();
    for (i, mut client) in clients.into_iter().enumerate() {
        let names: Vec<String> = PEERS
            .iter()
            .map(|d| users[(i + d) % CLIENTS].name.clone())
            .collect();
        let own = users[i].name.clone();
        let want: usize = expected[i].values().sum();
        let identities = identities.clone();
        let expected_all = expected_all.clone();
        tasks.push(tokio::spawn(async move {
            let in_group = i < GROUP_SIZE;
            let mut read: BTreeMap<(String, String), usize> = BTreeMap::new();
            let record = |message: &sealwire::client::Incoming, read: &mut BTreeMap<_, _>| {
                let sender = identities[&message.sender.to_bytes()].clone();
                if let Conversation::Group(g) = message.conversation {
                    assert_eq!(g, group);
                }
                *read.entry((sender, text(message))).or_default() += 1;
            };
            if i != 0 && in_group {
                // Messages may come before the welcome: count them too.
                loop {
                    match tokio::time::timeout(WAIT, client.next_event())
                        .await
                        .unwrap()
                        .unwrap()
                    {
                        Event::GroupJoined { .. } => break,
                        Event::Message(message) => {
                            record(&message, &mut read);
                            client.confirm(message.seq).await.unwrap();
                        }
                        _ => {}
                    }
                }
            }
            for name in &names {
                for k in 0..PER_PEER {
                    client
                        .send(name, format!("{own} to {name} #{k}").into_bytes())
                        .await
                        .unwrap();
                }
            }
            if in_group {
                for k in 0..PER_MEMBER {
                    client
                        .send_group(group, format!("group from {own} #{k}").into_bytes())
                        .await
                        .unwrap();
                }
            }
            let mut failures = Vec::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
            while read.values().sum::<usize>() < want {
                let event = tokio::time::timeout_at(deadline, client.next_event())
                    .await
                    .unwrap_or_else(|_| {
                        let missing: Vec<_> = expected_all[i]
                            .keys()
                            .filter(|k| !read.contains_key(*k))
                            .collect();
                        panic!(
                            "{own}: read {} of {want}; missing {missing:?}; failures {failures:?}",
                            read.values().sum::<usize>()
                        )
                    })
                    .expect("client stopped");
                match event {
                    Event::Message(message) => {
                        record(&message, &mut read);
                        client.confirm(message.seq).await.unwrap();
                    }
                    Event::Dropped { error, .. } | Event::SendFailed { error, .. } => {
                        failures.push(error.to_string());
                    }
                    _ => {}
                }
            }
            client.flush().await.unwrap();
            // Anything more would be a duplicate.
            if let Ok(Some(Event::Message(message))) =
                tokio::time::timeout(Duration::from_millis(300), async {
                    loop {
                        match client.next_event().await {
                            Some(Event::Message(m)) => return Some(Event::Message(m)),
                            Some(_) => continue,
                            None => return None,
                        }
                    }
                })
                .await
            {
                panic!("{own}: an extra message {:?}", text(&message));
            }
            client.close().await;
            (read, failures)
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        let (read, failures) = task.await.unwrap();
        assert!(failures.is_empty(), "{}: {failures:?}", users[i].name);
        assert_eq!(
            read, expected[i],
            "{} read the wrong messages",
            users[i].name
        );
    }
    relay.shutdown().await;
}
