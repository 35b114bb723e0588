//! `sealwire chat`: an interactive, line-based conversation. Lines typed are sent to the
//! current conversation; messages are printed as they arrive; `/…` lines are commands.
//!
//! Works with standard input piped from a file or another program: end of input quits after
//! the relay has accepted everything sent.

use std::time::Duration;

use sealwire::client::{Contact, Conversation, Event, Incoming};
use sealwire::core::{GroupId, PublicIdentity};
use sealwire::{Error, Result};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::args::{ChatArgs, Global};
use super::connect::{self, Connection, find_group};
use super::output::{self, Names, body_text, clean, mailbox_prefix};

const HELP: &str = "\
commands:
  /to NAME                  talk to a contact
  /group LABEL              talk in a group (label or id)
  /contacts                 list contacts
  /safety NAME              show the safety number to compare with NAME
  /verify NAME              mark NAME verified (after comparing safety numbers in person)
  /groups                   list groups
  /newgroup LABEL NAME...   create a group with these contacts
  /add LABEL NAME...        add contacts to a group
  /remove LABEL NAME...     remove members from a group
  /help                     this help
  /quit                     leave (end of input too)
a line starting with // sends the line without its first /";

/// Who lines are sent to.
enum Target {
    Nobody,
    Contact(String),
    Group(GroupId, String),
}

struct Chat {
    conn: Connection,
    own: PublicIdentity,
    names: Names,
    target: Target,
    timeout: Duration,
    /// Whether the relay connection is up (`None` before the first attempt ended).
    online: Option<bool>,
}

/// `sealwire chat`.
pub(crate) async fn run(global: &Global, args: ChatArgs) -> Result<()> {
    let profile = super::profile::open(global)?;
    let groups = profile.groups();
    let target = match (&args.name, &args.group) {
        (Some(name), _) => Target::Contact(profile.contact(name)?.name),
        (None, Some(query)) => {
            let group = find_group(&groups, query)?;
            Target::Group(group.id, group.label.clone())
        }
        (None, None) => Target::Nobody,
    };
    let names = Names::new(&profile.contacts()?, &groups);
    let own = profile.identity().clone();
    let conn = connect::start(profile, &args.relay)?;
    let mut chat = Chat {
        conn,
        own,
        names,
        target,
        timeout: Duration::from_secs(args.relay.timeout),
        online: None,
    };
    notice(&format!(
        "sealwire chat via {} (/help for the commands)",
        chat.conn.url
    ))?;
    if let Err(error) = chat.describe_target().await {
        output::warn(&format!("! {error}"));
    }
    let mut lines = stdin_lines();
    let mut interrupt = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        tokio::select! {
            line = lines.recv() => match line {
                Some(Ok(line)) => {
                    if !chat.line(&line).await? {
                        break;
                    }
                }
                Some(Err(error)) => return Err(Error::Io(error)),
                None => break,
            },
            event = chat.conn.next_event() => match event {
                Some(event) => chat.event(event).await?,
                None => return Err(Error::Stopped),
            },
            _ = &mut interrupt => break,
        }
    }
    chat.finish().await
}

/// Standard input, line by line, read on a thread of its own (a blocking read cannot be
/// cancelled, and must not keep the process from exiting).
fn stdin_lines() -> mpsc::Receiver<std::io::Result<String>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let stop = line.is_err();
            if tx.blocking_send(line).is_err() || stop {
                return;
            }
        }
    });
    rx
}

/// A status line.
fn notice(text: &str) -> Result<()> {
    output::line(&format!("* {text}"))
}

impl Chat {
    /// One line of input; `false` to quit.
    async fn line(&mut self, line: &str) -> Result<bool> {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.trim().is_empty() {
            return Ok(true);
        }
        let result = if let Some(text) = line.strip_prefix("//") {
            self.send(&format!("/{text}")).await.map(|()| true)
        } else if let Some(command) = line.strip_prefix('/') {
            self.command(command).await
        } else {
            self.send(line).await.map(|()| true)
        };
        match result {
            Ok(go_on) => Ok(go_on),
            Err(Error::Io(error)) => Err(Error::Io(error)),
            Err(error) => {
                output::warn(&format!("! {error}"));
                Ok(true)
            }
        }
    }

    async fn send(&mut self, text: &str) -> Result<()> {
        let body = text.as_bytes().to_vec();
        match &self.target {
            Target::Nobody => {
                output::warn("! nobody to talk to yet: /to NAME or /group LABEL");
                Ok(())
            }
            Target::Contact(name) => self.conn.client.send(name, body).await.map(|_| ()),
            Target::Group(id, _) => self.conn.client.send_group(*id, body).await.map(|_| ()),
        }
    }

    async fn command(&mut self, command: &str) -> Result<bool> {
        let mut words = command.split_whitespace();
        let verb = words.next().unwrap_or_default();
        let rest: Vec<&str> = words.collect();
        match (verb, rest.as_slice()) {
            ("quit" | "exit" | "q", []) => return Ok(false),
            ("help" | "h" | "?", []) => output::line(HELP)?,
            ("to", [name]) => {
                let contact = self.contact(name).await?;
                self.target = Target::Contact(contact.name);
                self.describe_target().await?;
            }
            ("group", [query]) => {
                let groups = self.conn.client.groups().await?;
                let group = find_group(&groups, query)?;
                self.target = Target::Group(group.id, group.label.clone());
                self.names.set_groups(&groups);
                self.describe_target().await?;
            }
            ("contacts", []) => {
                let contacts = self.conn.client.contacts().await?;
                if contacts.is_empty() {
                    notice("no contacts (add them with `sealwire contact add`)")?;
                }
                for contact in contacts {
                    let status = if contact.verified {
                        "verified"
                    } else {
                        "UNVERIFIED"
                    };
                    notice(&format!("{} ({status})", clean(&contact.name)))?;
                }
            }
            ("safety", [name]) => {
                let contact = self.contact(name).await?;
                output::line(&output::safety_text(&contact))?;
            }
            ("verify", [name]) => {
                let contact = self.conn.client.set_verified(name, true).await?;
                self.names.set_contacts(&self.conn.client.contacts().await?);
                notice(&format!("{} is now marked verified", clean(&contact.name)))?;
            }
            ("groups", []) => {
                let groups = self.conn.client.groups().await?;
                self.names.set_groups(&groups);
                if groups.is_empty() {
                    notice("no groups (/newgroup LABEL NAME... creates one)")?;
                }
                for group in &groups {
                    let members: Vec<String> = group
                        .members
                        .iter()
                        .map(|(who, _)| self.person(who))
                        .collect();
                    notice(&format!(
                        "{} ({}): {}{}",
                        clean(&group.label),
                        group.id,
                        members.join(", "),
                        if group.is_member { "" } else { " [removed]" }
                    ))?;
                }
            }
            ("newgroup", [label, members @ ..]) => {
                let groups = self.conn.client.groups().await?;
                if groups.iter().any(|g| &g.label == label) {
                    return Err(Error::InvalidInput {
                        what: "group label",
                        reason: format!("you already have a group labelled {:?}", clean(label)),
                    });
                }
                let id = self.conn.client.create_group(label, members).await?;
                self.names.set_groups(&self.conn.client.groups().await?);
                self.target = Target::Group(id, (*label).to_owned());
                notice(&format!(
                    "created group {} with {}; now talking there",
                    clean(label),
                    clean(&members.join(", "))
                ))?;
            }
            ("add" | "remove", [query, members @ ..]) if !members.is_empty() => {
                let groups = self.conn.client.groups().await?;
                let group = find_group(&groups, query)?;
                if verb == "add" {
                    self.conn.client.add_members(group.id, members).await?;
                } else {
                    self.conn.client.remove_members(group.id, members).await?;
                }
                notice(&format!(
                    "group {}: {} {}",
                    clean(&group.label),
                    if verb == "add" { "added" } else { "removed" },
                    clean(&members.join(", "))
                ))?;
            }
            _ => output::warn(&format!(
                "! unknown command or wrong arguments: /{}; /help lists the commands",
                clean(command)
            )),
        }
        Ok(true)
    }

    /// A contact by name, from the running client.
    async fn contact(&self, name: &str) -> Result<Contact> {
        self.conn
            .client
            .contacts()
            .await?
            .into_iter()
            .find(|c| c.name == name)
            .ok_or_else(|| Error::UnknownContact(name.to_owned()))
    }

    fn person(&self, identity: &PublicIdentity) -> String {
        if identity == &self.own {
            "you".to_owned()
        } else {
            self.names.person(identity)
        }
    }

    /// Says who lines go to, with safety numbers and verification status.
    async fn describe_target(&mut self) -> Result<()> {
        match &self.target {
            Target::Nobody => notice("talking to nobody yet: /to NAME or /group LABEL"),
            Target::Contact(name) => {
                let contact = self.contact(name).await?;
                let name = clean(&contact.name);
                notice(&format!(
                    "talking to {name}, safety number {}",
                    contact.safety_number()
                ))?;
                if contact.verified {
                    notice(&format!("{name} is verified"))
                } else {
                    output::warn(&format!(
                        "! {name} is NOT VERIFIED: compare the safety number with them in \
                         person, then /verify {name}"
                    ));
                    Ok(())
                }
            }
            Target::Group(id, label) => {
                let (id, label) = (*id, label.clone());
                let contacts = self.conn.client.contacts().await?;
                self.names.set_contacts(&contacts);
                let groups = self.conn.client.groups().await?;
                let Some(group) = groups.iter().find(|g| g.id == id) else {
                    return Err(Error::UnknownGroup(id.to_string()));
                };
                let members: Vec<String> = group
                    .members
                    .iter()
                    .map(|(who, _)| {
                        let verified = contacts.iter().any(|c| &c.identity == who && c.verified);
                        match self.person(who) {
                            name if verified || who == &self.own => name,
                            name => format!("{name} (unverified)"),
                        }
                    })
                    .collect();
                notice(&format!(
                    "talking in group {} ({id}): {}",
                    clean(&label),
                    members.join(", ")
                ))
            }
        }
    }

    async fn event(&mut self, event: Event) -> Result<()> {
        match event {
            Event::Connected => {
                if self.online != Some(true) {
                    notice("connected")?;
                }
                self.online = Some(true);
            }
            Event::Disconnected { error, retry_in } => {
                if self.online != Some(false) {
                    output::warn(&format!(
                        "! {}; retrying (next attempt in {} s)",
                        connect::transport_error(&self.conn.url, error),
                        retry_in.as_secs_f32().ceil()
                    ));
                }
                self.online = Some(false);
            }
            Event::Stopped(error) => return Err(connect::stopped_error(&self.conn.url, error)),
            Event::Message(message) => {
                if let Conversation::Group(id) = message.conversation
                    && !self.names.has_group(&id)
                {
                    self.names.set_groups(&self.conn.client.groups().await?);
                }
                output::line(&self.format(&message))?;
                self.conn.client.confirm(message.seq).await?;
            }
            Event::SendFailed { error, .. } => {
                output::warn(&format!("! not delivered: {error}"));
            }
            Event::GroupJoined { group, by } => {
                self.names.set_groups(&self.conn.client.groups().await?);
                let label = self.names.group(&group);
                notice(&format!(
                    "{} added you to group {label} (/group {label} to talk there)",
                    self.person(&by)
                ))?;
            }
            Event::GroupChanged { group, by, changes } => notice(&format!(
                "group {}: {} {}",
                self.names.group(&group),
                self.person(&by),
                output::changes_text(&changes, &self.names)
            ))?,
            Event::RemovedFromGroup { group, by } => notice(&format!(
                "{} removed you from group {}",
                self.person(&by),
                self.names.group(&group)
            ))?,
            Event::Dropped { from, error } => output::warn(&format!(
                "! dropped an unreadable message from mailbox {}: {error}",
                &from.to_hex()[..16]
            )),
            _ => {}
        }
        Ok(())
    }

    /// `[bob] hi`, `[team] bob: hi`, with the sender marked if unverified or unknown.
    fn format(&self, message: &Incoming) -> String {
        let who = match &message.contact {
            Some(name) if message.verified => clean(name),
            Some(name) => format!("{} (unverified)", clean(name)),
            None => format!(
                "UNKNOWN SENDER {} (safety number {})",
                mailbox_prefix(&message.sender),
                self.own.safety_number(&message.sender)
            ),
        };
        let body = body_text(&message.body);
        match message.conversation {
            Conversation::Direct => format!("[{who}] {body}"),
            Conversation::Group(id) => format!("[{}] {who}: {body}", self.names.group(&id)),
        }
    }

    /// Waits (bounded) until the relay has everything sent, shows what arrived meanwhile, and
    /// closes.
    async fn finish(mut self) -> Result<()> {
        let flushed = self.conn.flush(Instant::now() + self.timeout).await;
        let mut result = flushed;
        for event in std::mem::take(&mut self.conn.backlog) {
            if let Err(error) = self.event(event).await {
                result = result.and(Err(error));
            }
        }
        self.conn.close().await;
        result
    }
}
