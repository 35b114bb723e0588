//! Which mailboxes have a connection, and whether it is live or still catching up.
//!
//! A new connection first **catches up**: a task streams the mailbox's stored messages to it in
//! delivery order, with flow control. Only then does it go **live** and get new messages the
//! moment they are stored. A message stored while the connection catches up marks its slot
//! *dirty*, so the catch-up task reads the store once more before going live: no message
//! stored after the catch-up's last read can fall between the two paths.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use sealwire_transport::code::CloseCode;
use sealwire_transport::frame::MailboxId;
use sealwire_transport::server::Connection;

/// The connection of one mailbox.
#[derive(Debug)]
struct Slot {
    connection: Connection,
    state: SlotState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    /// Streaming the backlog; `dirty` if something was stored meanwhile.
    CatchingUp { dirty: bool },
    /// Gets new messages at once.
    Live,
}

/// Where a new message for a mailbox should go.
#[derive(Debug)]
pub(crate) enum Route {
    /// To this live connection, now.
    Live(Connection),
    /// Nowhere now: the mailbox is offline or catching up (and will read it from the store).
    Stored,
}

/// What the catch-up task should do after finding no more stored messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CatchUp {
    /// The connection is live now.
    Live,
    /// Something was stored meanwhile: read the store again.
    ReadAgain,
    /// The connection was replaced or ended: stop.
    Stop,
}

/// The table of connected mailboxes.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    slots: Mutex<HashMap<MailboxId, Slot>>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<MailboxId, Slot>> {
        // The table stays consistent even if a holder panicked: every update is one insert,
        // remove or field write.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers `connection` as its mailbox's connection, catching up, and closes a previous
    /// connection of the mailbox with `replaced`. The newest authentication wins, whatever the
    /// order in which connections get here: if the mailbox already has a connection that
    /// authenticated later (a higher id), `connection` is not registered and `false` is
    /// returned.
    pub(crate) fn attach(&self, connection: &Connection) -> bool {
        let mut slots = self.lock();
        if slots
            .get(&connection.mailbox())
            .is_some_and(|slot| slot.connection.id() > connection.id())
        {
            return false;
        }
        let previous = slots.insert(
            connection.mailbox(),
            Slot {
                connection: connection.clone(),
                state: SlotState::CatchingUp { dirty: false },
            },
        );
        drop(slots);
        if let Some(previous) = previous {
            previous.connection.close(CloseCode::REPLACED);
        }
        true
    }

    /// Removes `connection` if it is still its mailbox's connection.
    pub(crate) fn detach(&self, connection: &Connection) {
        let mut slots = self.lock();
        if slots
            .get(&connection.mailbox())
            .is_some_and(|slot| slot.connection.id() == connection.id())
        {
            slots.remove(&connection.mailbox());
        }
    }

    /// Where a message just stored for `mailbox` goes.
    pub(crate) fn route(&self, mailbox: &MailboxId) -> Route {
        let mut slots = self.lock();
        match slots.get_mut(mailbox) {
            Some(Slot {
                connection,
                state: SlotState::Live,
            }) => Route::Live(connection.clone()),
            Some(Slot {
                state: SlotState::CatchingUp { dirty },
                ..
            }) => {
                *dirty = true;
                Route::Stored
            }
            None => Route::Stored,
        }
    }

    /// The live connection of `mailbox`, if any (for unsolicited notices).
    pub(crate) fn live(&self, mailbox: &MailboxId) -> Option<Connection> {
        match self.lock().get(mailbox) {
            Some(Slot {
                connection,
                state: SlotState::Live,
            }) => Some(connection.clone()),
            _ => None,
        }
    }

    /// Called by the catch-up task of `connection` when the store had nothing more.
    pub(crate) fn caught_up(&self, connection: &Connection) -> CatchUp {
        let mut slots = self.lock();
        let Some(slot) = slots
            .get_mut(&connection.mailbox())
            .filter(|slot| slot.connection.id() == connection.id())
        else {
            return CatchUp::Stop;
        };
        match slot.state {
            SlotState::CatchingUp { dirty: true } => {
                slot.state = SlotState::CatchingUp { dirty: false };
                CatchUp::ReadAgain
            }
            SlotState::CatchingUp { dirty: false } | SlotState::Live => {
                slot.state = SlotState::Live;
                CatchUp::Live
            }
        }
    }

    /// Connected mailboxes.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}
