//! Groups through a real relay: membership changes reach everyone, and a removed member
//! receives nothing the group sends afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use sealwire::client::{Conversation, Event};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_stops_receiving() {
    let LocalRelay {
        pki,
        root,
        relay,
        port,
    } = LocalRelay::start().await;
    let users = users(root.path(), &["alice", "bob", "carol", "dave"]);
    let mut clients: Vec<_> = users.iter().map(|u| u.start(&pki, port)).collect();
    for client in &mut clients {
        connected(client).await;
    }
    let [alice, bob, carol, dave] = &mut clients[..] else {
        unreachable!()
    };

    let group = alice.create_group("team", &["bob", "carol"]).await.unwrap();
    alice.send_group(group, b"welcome".to_vec()).await.unwrap();
    for member in [&mut *bob, &mut *carol] {
        let message = next_message(member).await;
        assert_eq!(
            (text(&message).as_str(), message.conversation),
            ("welcome", Conversation::Group(group))
        );
    }
    carol
        .send_group(group, b"carol was here".to_vec())
        .await
        .unwrap();
    for member in [&mut *alice, &mut *bob] {
        assert_eq!(text(&next_message(member).await), "carol was here");
    }

    // Alice adds Dave and removes Carol in one commit.
    alice.add_members(group, &["dave"]).await.unwrap();
    alice.remove_members(group, &["carol"]).await.unwrap();
    wait_for(carol, |event| match event {
        Event::RemovedFromGroup { group: g, .. } => (g == group).then_some(()),
        Event::Message(m) => panic!("carol got {:?} after her removal", text(&m)),
        _ => None,
    })
    .await;
    assert!(!carol.groups().await.unwrap()[0].is_member);

    alice
        .send_group(group, b"after carol left".to_vec())
        .await
        .unwrap();
    // Bob answers once he has read it, so in the new epoch: had he sent before handling the
    // removal, his message would rightly have gone to Carol too (who would drop it).
    assert_eq!(text(&next_message(bob).await), "after carol left");
    bob.send_group(group, b"bob too".to_vec()).await.unwrap();
    let mut dave_read = vec![
        text(&next_message(dave).await),
        text(&next_message(dave).await),
    ];
    dave_read.sort();
    assert_eq!(dave_read, ["after carol left", "bob too"]);
    assert_eq!(text(&next_message(alice).await), "bob too");
    alice.flush().await.unwrap();
    bob.flush().await.unwrap();

    // Carol gets nothing more: the relay never even delivers to her mailbox.
    let quiet = tokio::time::timeout(Duration::from_millis(800), async {
        loop {
            match carol.next_event().await {
                Some(Event::Message(m)) => return text(&m),
                Some(Event::Dropped { error, .. }) => return format!("dropped: {error}"),
                Some(_) => continue,
                None => return "stopped".to_owned(),
            }
        }
    })
    .await;
    assert!(quiet.is_err(), "carol received {quiet:?} after her removal");
    // And she can no longer send to the group.
    assert!(
        carol
            .send_group(group, b"still here?".to_vec())
            .await
            .is_err()
    );

    for client in clients {
        client.close().await;
    }
    relay.shutdown().await;
}

/// A member removed and then added back joins again and reads what follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_added_back_rejoins() {
    let LocalRelay {
        pki,
        root,
        relay,
        port,
    } = LocalRelay::start().await;
    let users = users(root.path(), &["alice", "bob", "carol"]);
    let mut clients: Vec<_> = users.iter().map(|u| u.start(&pki, port)).collect();
    for client in &mut clients {
        connected(client).await;
    }
    let [alice, bob, carol] = &mut clients[..] else {
        unreachable!()
    };
    let group = alice.create_group("team", &["bob", "carol"]).await.unwrap();
    alice.send_group(group, b"first".to_vec()).await.unwrap();
    assert_eq!(text(&next_message(carol).await), "first");
    assert_eq!(text(&next_message(bob).await), "first");

    alice.remove_members(group, &["carol"]).await.unwrap();
    wait_for(carol, |event| {
        matches!(event, Event::RemovedFromGroup { .. }).then_some(())
    })
    .await;
    alice
        .send_group(group, b"without carol".to_vec())
        .await
        .unwrap();
    assert_eq!(text(&next_message(bob).await), "without carol");

    alice.add_members(group, &["carol"]).await.unwrap();
    wait_for(carol, |event| match event {
        Event::GroupJoined { group: g, .. } => (g == group).then_some(()),
        Event::Message(m) => panic!("carol got {:?} before rejoining", text(&m)),
        _ => None,
    })
    .await;
    assert!(carol.groups().await.unwrap()[0].is_member);
    alice
        .send_group(group, b"welcome back".to_vec())
        .await
        .unwrap();
    let message = next_message(carol).await;
    assert_eq!(
        (text(&message).as_str(), message.conversation),
        ("welcome back", Conversation::Group(group))
    );
    carol
        .send_group(group, b"glad to be back".to_vec())
        .await
        .unwrap();
    assert_eq!(text(&next_message(bob).await), "welcome back");
    assert_eq!(text(&next_message(bob).await), "glad to be back");
    assert_eq!(text(&next_message(alice).await), "glad to be back");
    for client in clients {
        client.close().await;
    }
    relay.shutdown().await;
}
