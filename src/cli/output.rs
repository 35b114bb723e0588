//! What the command prints: text from others made safe for a terminal, names for senders and
//! groups, and the warnings that must not be missed.

use std::collections::HashMap;
use std::io::Write as _;

use sealwire::client::{Contact, GroupInfo, Incoming};
use sealwire::core::{GroupId, PublicIdentity};
use sealwire::transport::frame::MailboxId;
use sealwire::{Error, Result};

/// Makes text from someone else safe to print on a terminal, on one line.
///
/// A terminal obeys control characters and escape sequences in what it prints: a message
/// could move the cursor, rewrite earlier lines (a forged `[bob] …` line), change the window
/// title or, on some terminals, paste into the input. So every C0 and C1 control character
/// (ESC, CR, LF, TAB, BEL, DEL, CSI …), Unicode bidirectional overrides and isolates (which
/// reorder what is shown), line and paragraph separators are written as visible escapes
/// (`\x1b`, `\r`, `\n`, `\u{202e}`), and a backslash as `\\`, so that the printed line is
/// unambiguous.
pub(crate) fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if is_dangerous(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// C1 controls, bidirectional formatting characters and line separators.
fn is_dangerous(c: char) -> bool {
    matches!(c as u32,
        0x80..=0x9f              // C1 controls (CSI 0x9b, OSC 0x9d …)
        | 0x061c                 // Arabic letter mark
        | 0x200e | 0x200f        // LRM, RLM
        | 0x2028 | 0x2029        // line and paragraph separators
        | 0x202a..=0x202e        // embeddings and overrides
        | 0x2066..=0x2069        // isolates
    )
}

/// A message body as printable text (invalid UTF-8 shown as U+FFFD).
pub(crate) fn body_text(body: &[u8]) -> String {
    clean(&String::from_utf8_lossy(body))
}

/// The first 16 hex digits of someone's mailbox: enough to tell strangers apart.
pub(crate) fn mailbox_prefix(identity: &PublicIdentity) -> String {
    let mut hex = MailboxId::of(identity).to_hex();
    hex.truncate(16);
    hex
}

/// Writes one line to stdout and flushes it (so that a message is out before it is
/// confirmed). A closed stdout is an error, not a panic.
pub(crate) fn line(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")
        .and_then(|()| stdout.flush())
        .map_err(Error::Io)
}

/// Writes one line to stderr (errors writing to stderr are ignored: there is nowhere else).
pub(crate) fn warn(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{text}");
}

/// The loud warning for a contact whose identity key changed.
pub(crate) fn identity_changed_warning(name: &str, stored: &str, new: &str) -> String {
    let name = clean(name);
    format!(
        "\n\
         WARNING: THE IDENTITY KEY OF CONTACT {name:?} HAS CHANGED!\n\
         ----------------------------------------------------------------\n\
         The identity you gave is not the one stored for {name:?}.\n\
         This is what an impersonation (a man in the middle) looks like. It is also what\n\
         a reinstall or a new device looks like.\n\
         \n\
         \x20 stored safety number: {stored}\n\
         \x20 new safety number:    {new}\n\
         \n\
         Nothing was changed. Compare the NEW safety number with {name} in person or on a\n\
         call you trust. Only if it matches, run again with --replace (the contact will be\n\
         marked unverified until you verify it again).\n\
         ----------------------------------------------------------------"
    )
}

/// Who is who: contact names by identity and group labels by id, for printing events.
#[derive(Default)]
pub(crate) struct Names {
    contacts: HashMap<Vec<u8>, (String, bool)>,
    groups: HashMap<GroupId, String>,
}

impl Names {
    /// From a contact list and a group list.
    pub(crate) fn new(contacts: &[Contact], groups: &[GroupInfo]) -> Names {
        let mut names = Names::default();
        names.set_contacts(contacts);
        names.set_groups(groups);
        names
    }

    pub(crate) fn set_contacts(&mut self, contacts: &[Contact]) {
        self.contacts = contacts
            .iter()
            .map(|c| (c.identity.to_bytes().to_vec(), (c.name.clone(), c.verified)))
            .collect();
    }

    pub(crate) fn set_groups(&mut self, groups: &[GroupInfo]) {
        self.groups = groups.iter().map(|g| (g.id, g.label.clone())).collect();
    }

    /// Whether the group is known (else refresh the list).
    pub(crate) fn has_group(&self, id: &GroupId) -> bool {
        self.groups.contains_key(id)
    }

    /// A group's label, cleaned; its id if unknown.
    pub(crate) fn group(&self, id: &GroupId) -> String {
        clean(self.groups.get(id).map_or(&id.to_string(), |label| label))
    }

    /// A person's contact name, or `unknown:MAILBOXPREFIX`.
    pub(crate) fn person(&self, identity: &PublicIdentity) -> String {
        match self.contacts.get(identity.to_bytes().as_slice()) {
            Some((name, _)) => clean(name),
            None => format!("unknown:{}", mailbox_prefix(identity)),
        }
    }
}

/// The sender of a message as `recv` prints it: the contact name or `unknown:PREFIX`, with
/// `@GROUP` for a group message.
pub(crate) fn recv_sender(message: &Incoming, names: &Names) -> String {
    let who = match &message.contact {
        Some(name) => clean(name),
        None => format!("unknown:{}", mailbox_prefix(&message.sender)),
    };
    match message.conversation {
        sealwire::client::Conversation::Direct => who,
        sealwire::client::Conversation::Group(id) => format!("{who}@{}", names.group(&id)),
    }
}

/// The warning for a message from someone who is not a contact.
pub(crate) fn unknown_sender_warning(message: &Incoming, own: &PublicIdentity) -> String {
    format!(
        "warning: message from an UNKNOWN SENDER (mailbox {}, safety number {}).\n\
         Their identity: {}\n\
         If you know them, compare the safety number in person, then add them with \
         `sealwire contact add NAME <identity>`.",
        mailbox_prefix(&message.sender),
        own.safety_number(&message.sender),
        sealwire::client::identity_to_hex(&message.sender),
    )
}

/// The warning for a message from a contact not marked verified.
pub(crate) fn unverified_warning(name: &str) -> String {
    let name = clean(name);
    format!(
        "warning: {name} is not verified: compare safety numbers in person \
         (`sealwire contact safety {name}`), then `sealwire contact verify {name}`"
    )
}

/// A membership change, for people.
pub(crate) fn changes_text(changes: &[sealwire::core::Change], names: &Names) -> String {
    let parts: Vec<String> = changes
        .iter()
        .map(|change| match change {
            sealwire::core::Change::Add(who, _) => format!("added {}", names.person(who)),
            sealwire::core::Change::Remove(who) => format!("removed {}", names.person(who)),
            sealwire::core::Change::SetRole(who, role) => {
                format!("made {} {role:?}", names.person(who))
            }
            _ => "changed something".to_owned(),
        })
        .collect();
    if parts.is_empty() {
        "rotated the group keys".to_owned()
    } else {
        parts.join(", ")
    }
}

/// Instructions for comparing a safety number.
pub(crate) fn safety_text(contact: &Contact) -> String {
    let name = clean(&contact.name);
    let status = if contact.verified {
        "verified".to_owned()
    } else {
        format!("NOT verified (after comparing: `sealwire contact verify {name}`)")
    };
    format!(
        "safety number with {name}:\n\n    {}\n\n\
         Compare it with {name} in person or on a call you trust: you must both see the same \
         60 digits. If they differ, someone is in the middle; do not mark them verified.\n\
         status: {status}",
        contact.safety_number()
    )
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn escapes_controls() {
        assert_eq!(clean("hi"), "hi");
        assert_eq!(clean("a\x1b[2Jb"), "a\\x1b[2Jb");
        assert_eq!(clean("x\ry\nz\t"), "x\\ry\\nz\\t");
        assert_eq!(clean("\u{9b}31m\u{7f}\u{0}"), "\\u{9b}31m\\x7f\\x00");
        assert_eq!(clean("abc\u{202e}def"), "abc\\u{202e}def");
        assert_eq!(clean("back\\slash"), "back\\\\slash");
        assert_eq!(clean("héllo ✓"), "héllo ✓");
    }
}
