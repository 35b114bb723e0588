//! The commands for scripts: `send`, `recv` and the group changes. Each connects, does one
//! thing, waits until the relay has it, and exits; a relay that cannot be reached at the first
//! attempt is an error, not a reason to retry forever.

use std::collections::HashSet;
use std::io::Read as _;
use std::time::Duration;

use sealwire::client::{Event, MAX_BODY_LEN};
use sealwire::core::GroupId;
use sealwire::{Error, Result};
use tokio::time::{Instant, timeout_at};

use super::args::{Global, GroupCommand, RecvArgs, RelayOpts, SendArgs};
use super::connect::{self, Connection, find_group};
use super::output::{self, Names, clean};

/// Where `send` writes.
enum Recipient {
    Contact(String),
    Group(GroupId, String),
}

fn deadline(opts: &RelayOpts) -> Instant {
    Instant::now() + Duration::from_secs(opts.timeout)
}

/// `sealwire send`.
pub(crate) async fn send(global: &Global, args: SendArgs) -> Result<()> {
    let (to, message) = if args.group.is_some() {
        match (args.to, args.message) {
            (Some(_), Some(_)) => {
                return Err(Error::InvalidInput {
                    what: "arguments",
                    reason: "with --group, give only the message (no contact)".into(),
                });
            }
            (message, None) | (None, message) => (None, message),
        }
    } else {
        match args.to {
            Some(to) => (Some(to), args.message),
            None => {
                return Err(Error::InvalidInput {
                    what: "arguments",
                    reason: "say who to send to: `sealwire send NAME MESSAGE` or \
                             `sealwire send --group LABEL MESSAGE`"
                        .into(),
                });
            }
        }
    };
    let profile = super::profile::open(global)?;
    // Check the recipient before connecting or reading stdin.
    let recipient = match (&args.group, to) {
        (Some(query), _) => {
            let groups = profile.groups();
            let group = find_group(&groups, query)?;
            Recipient::Group(group.id, group.label.clone())
        }
        (None, Some(name)) => Recipient::Contact(profile.contact(&name)?.name),
        (None, None) => unreachable!("checked above"),
    };
    let body = match message {
        Some(message) => message.into_bytes(),
        None => read_stdin()?,
    };
    if body.is_empty() {
        return Err(Error::InvalidInput {
            what: "message",
            reason: "it is empty".into(),
        });
    }
    let deadline = deadline(&args.relay);
    let mut conn = connect::connect(profile, &args.relay, deadline).await?;
    let (id, to) = match &recipient {
        Recipient::Contact(name) => (conn.client.send(name, body).await?, clean(name)),
        Recipient::Group(group, label) => (
            conn.client.send_group(*group, body).await?,
            format!("group {}", clean(label)),
        ),
    };
    let flushed = conn.flush(deadline).await;
    let mut failure = None;
    for event in std::mem::take(&mut conn.backlog) {
        if let Event::SendFailed { id: failed, error } = event {
            if failed == id || matches!(recipient, Recipient::Group(..)) {
                failure = Some(error.to_string());
            } else {
                output::warn(&format!(
                    "warning: an earlier message was not delivered: {error}"
                ));
            }
        }
    }
    conn.close().await;
    flushed?;
    match failure {
        Some(reason) => Err(Error::NotDelivered { to, reason }),
        None => Ok(()),
    }
}

/// The message from standard input, without its final newline.
fn read_stdin() -> Result<Vec<u8>> {
    let mut body = Vec::new();
    std::io::stdin()
        .take(MAX_BODY_LEN as u64 + 2)
        .read_to_end(&mut body)?;
    if body.ends_with(b"\n") {
        body.pop();
        if body.ends_with(b"\r") {
            body.pop();
        }
    }
    Ok(body)
}

/// `sealwire recv`.
pub(crate) async fn recv(global: &Global, args: RecvArgs) -> Result<()> {
    let profile = super::profile::open(global)?;
    let mut names = Names::new(&profile.contacts()?, &profile.groups());
    let own = profile.identity().clone();
    let mut conn = connect::connect(profile, &args.relay, deadline(&args.relay)).await?;
    let idle = Duration::from_secs(args.wait);
    let mut warned = HashSet::new();
    let mut until = Instant::now() + idle;
    let result = loop {
        let event = match conn.backlog.pop_front() {
            Some(event) => event,
            None => match timeout_at(until, conn.client.next_event()).await {
                Ok(Some(event)) => event,
                Ok(None) => break Err(Error::Stopped),
                Err(_) => break Ok(()),
            },
        };
        if matches!(
            event,
            Event::Message(_)
                | Event::GroupJoined { .. }
                | Event::GroupChanged { .. }
                | Event::RemovedFromGroup { .. }
                | Event::Dropped { .. }
        ) {
            until = Instant::now() + idle;
        }
        if let Err(error) = recv_event(&mut conn, event, &mut names, &own, &mut warned).await {
            break Err(error);
        }
    };
    conn.close().await;
    result
}

/// Prints one event: a message on stdout (then confirms it), anything else on stderr.
async fn recv_event(
    conn: &mut Connection,
    event: Event,
    names: &mut Names,
    own: &sealwire::core::PublicIdentity,
    warned: &mut HashSet<String>,
) -> Result<()> {
    match event {
        Event::Message(message) => {
            if let sealwire::client::Conversation::Group(id) = message.conversation
                && !names.has_group(&id)
            {
                names.set_groups(&conn.client.groups().await?);
            }
            match &message.contact {
                None => output::warn(&output::unknown_sender_warning(&message, own)),
                Some(name) if !message.verified && warned.insert(name.clone()) => {
                    output::warn(&output::unverified_warning(name));
                }
                Some(_) => {}
            }
            let line = format!(
                "{}\t{}",
                output::recv_sender(&message, names),
                output::body_text(&message.body)
            );
            output::line(&line)?;
            conn.client.confirm(message.seq).await?;
        }
        Event::GroupJoined { group, by } => {
            names.set_groups(&conn.client.groups().await?);
            output::warn(&format!(
                "{} added you to group {}",
                names.person(&by),
                names.group(&group)
            ));
        }
        Event::GroupChanged { group, by, changes } => output::warn(&format!(
            "group {}: {} {}",
            names.group(&group),
            names.person(&by),
            output::changes_text(&changes, names)
        )),
        Event::RemovedFromGroup { group, by } => output::warn(&format!(
            "{} removed you from group {}",
            names.person(&by),
            names.group(&group)
        )),
        Event::Dropped { from, error } => output::warn(&format!(
            "warning: dropped an unreadable message from mailbox {}: {error}",
            &from.to_hex()[..16]
        )),
        Event::SendFailed { error, .. } => {
            output::warn(&format!(
                "warning: an earlier message was not delivered: {error}"
            ));
        }
        Event::Disconnected { error, retry_in } => output::warn(&format!(
            "warning: disconnected from {} ({error}); retrying in {} s",
            conn.url,
            retry_in.as_secs_f32().ceil()
        )),
        Event::Stopped(error) => return Err(connect::stopped_error(&conn.url, error)),
        _ => {}
    }
    Ok(())
}

/// `sealwire group create|add|remove` (`list` is offline, in `profile`).
pub(crate) async fn group(global: &Global, command: GroupCommand) -> Result<()> {
    if let GroupCommand::List = command {
        return super::profile::group_list(global);
    }
    let profile = super::profile::open(global)?;
    let groups = profile.groups();
    let (opts, members) = match &command {
        GroupCommand::List => return Ok(()),
        GroupCommand::Create { relay, members, .. }
        | GroupCommand::Add { relay, members, .. }
        | GroupCommand::Remove { relay, members, .. } => (relay.clone(), members.clone()),
    };
    // Check every name before connecting.
    for member in &members {
        profile.contact(member)?;
    }
    let target = match &command {
        GroupCommand::Create { label, .. } => {
            if groups.iter().any(|g| &g.label == label) {
                return Err(Error::InvalidInput {
                    what: "group label",
                    reason: format!("you already have a group labelled {:?}", clean(label)),
                });
            }
            None
        }
        GroupCommand::Add { group, .. } | GroupCommand::Remove { group, .. } => {
            Some(find_group(&groups, group)?.id)
        }
        GroupCommand::List => None,
    };
    let deadline = deadline(&opts);
    let mut conn = connect::connect(profile, &opts, deadline).await?;
    let names: Vec<&str> = members.iter().map(String::as_str).collect();
    let done = match (&command, target) {
        (GroupCommand::Create { label, .. }, _) => {
            conn.client.create_group(label, &names).await.map(|id| {
                format!(
                    "created group {} ({id}) with {}",
                    clean(label),
                    clean(&names.join(", "))
                )
            })
        }
        (GroupCommand::Add { .. }, Some(id)) => conn
            .client
            .add_members(id, &names)
            .await
            .map(|()| format!("added {}", clean(&names.join(", ")))),
        (GroupCommand::Remove { .. }, Some(id)) => conn
            .client
            .remove_members(id, &names)
            .await
            .map(|()| format!("removed {}", clean(&names.join(", ")))),
        _ => Ok(String::new()),
    };
    let result = match done {
        Ok(text) => conn.flush(deadline).await.map(|()| text),
        Err(error) => Err(error),
    };
    let failures: Vec<String> = std::mem::take(&mut conn.backlog)
        .into_iter()
        .filter_map(|event| match event {
            Event::SendFailed { error, .. } => Some(error.to_string()),
            _ => None,
        })
        .collect();
    conn.close().await;
    let text = result?;
    if let Some(reason) = failures.first() {
        return Err(Error::NotDelivered {
            to: "group members".into(),
            reason: reason.clone(),
        });
    }
    output::line(&text)
}
