//! [`MemoryStore`]: everything in memory, nothing durable.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

use sealwire_core::{OneTimePrekey, PrekeyBundle, PublicIdentity, SignedPrekey};
use sealwire_transport::frame::{MailboxId, MessageId};

use super::{Appended, Expired, NewMessage, Quotas, Store, StoreStats, StoredMessage, TakenBundle};
use crate::error::{Error, QuotaKind, Result};

/// A store in memory: fast, and **lost on restart**, so `accepted` does not mean durable.
/// For tests, benchmarks (what durability costs) and deployments that accept the loss.
#[derive(Debug, Default)]
pub struct MemoryStore {
    quotas: Quotas,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    mailboxes: HashMap<MailboxId, Mailbox>,
    /// `(from, id)` → received at.
    dedup: HashMap<(MailboxId, MessageId), u64>,
    /// Payload bytes stored, over all mailboxes.
    bytes: u64,
}

#[derive(Debug, Default)]
struct Mailbox {
    next_delivery: u64,
    bytes: u64,
    messages: BTreeMap<u64, StoredMessage>,
    prekeys: Option<(PublicIdentity, SignedPrekey)>,
    pool: VecDeque<OneTimePrekey>,
    /// Every one-time prekey id ever put in the pool (handed out or not): an upload of a known
    /// id is ignored, so that no key is handed out twice.
    known_ids: HashSet<u32>,
}

impl MemoryStore {
    /// An empty store with these quotas.
    pub fn new(quotas: Quotas) -> MemoryStore {
        MemoryStore {
            quotas,
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| Error::Storage("memory store lock poisoned".into()))
    }
}

impl Store for MemoryStore {
    async fn register(&self, mailbox: MailboxId) -> Result<()> {
        self.lock()?.mailboxes.entry(mailbox).or_default();
        Ok(())
    }

    async fn append(&self, message: NewMessage) -> Result<Appended> {
        let mut state = self.lock()?;
        if state.dedup.contains_key(&(message.from, message.id)) {
            return Ok(Appended::Duplicate);
        }
        let size = message.payload.len() as u64;
        let copies = size.saturating_mul(message.to.len() as u64);
        if state.bytes.saturating_add(copies) > self.quotas.max_total_bytes {
            return Err(Error::StoreFull);
        }
        for to in &message.to {
            let mailbox = state.mailboxes.get(to).ok_or(Error::UnknownMailbox(*to))?;
            let kind = if mailbox.messages.len() as u64 >= self.quotas.max_messages {
                QuotaKind::Messages
            } else if mailbox.bytes.saturating_add(size) > self.quotas.max_bytes {
                QuotaKind::Bytes
            } else {
                continue;
            };
            return Err(Error::QuotaExceeded { mailbox: *to, kind });
        }
        state.bytes += copies;
        state
            .dedup
            .insert((message.from, message.id), message.received_at);
        let mut deliveries = Vec::with_capacity(message.to.len());
        for to in &message.to {
            let Some(mailbox) = state.mailboxes.get_mut(to) else {
                return Err(Error::UnknownMailbox(*to));
            };
            mailbox.next_delivery += 1;
            let delivery = mailbox.next_delivery;
            mailbox.bytes += size;
            mailbox.messages.insert(
                delivery,
                StoredMessage {
                    delivery,
                    from: message.from,
                    id: message.id,
                    payload: message.payload.clone(),
                    received_at: message.received_at,
                },
            );
            deliveries.push(delivery);
        }
        Ok(Appended::Stored(deliveries))
    }

    async fn pending(
        &self,
        mailbox: MailboxId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>> {
        let state = self.lock()?;
        Ok(state.mailboxes.get(&mailbox).map_or_else(Vec::new, |m| {
            m.messages
                .range(after.saturating_add(1)..)
                .take(limit)
                .map(|(_, message)| message.clone())
                .collect()
        }))
    }

    async fn ack(&self, mailbox: MailboxId, deliveries: Vec<u64>) -> Result<u64> {
        let mut state = self.lock()?;
        let Some(mailbox) = state.mailboxes.get_mut(&mailbox) else {
            return Ok(0);
        };
        let (mut removed, mut bytes) = (0, 0);
        for delivery in deliveries {
            if let Some(message) = mailbox.messages.remove(&delivery) {
                mailbox.bytes -= message.payload.len() as u64;
                bytes += message.payload.len() as u64;
                removed += 1;
            }
        }
        state.bytes -= bytes;
        Ok(removed)
    }

    async fn expire(&self, cutoff: u64) -> Result<Expired> {
        let mut state = self.lock()?;
        let mut expired = Expired::default();
        for mailbox in state.mailboxes.values_mut() {
            let before = (mailbox.messages.len(), mailbox.bytes);
            mailbox.messages.retain(|_, m| m.received_at >= cutoff);
            mailbox.bytes = mailbox
                .messages
                .values()
                .map(|m| m.payload.len() as u64)
                .sum();
            expired.messages += (before.0 - mailbox.messages.len()) as u64;
            expired.bytes += before.1 - mailbox.bytes;
        }
        state.bytes -= expired.bytes;
        let before = state.dedup.len();
        state.dedup.retain(|_, at| *at >= cutoff);
        expired.dedup = (before - state.dedup.len()) as u64;
        Ok(expired)
    }

    async fn put_prekeys(
        &self,
        mailbox: MailboxId,
        identity: PublicIdentity,
        signed_prekey: SignedPrekey,
        one_time: Vec<OneTimePrekey>,
    ) -> Result<u32> {
        let mut state = self.lock()?;
        let existing = state.mailboxes.get(&mailbox);
        let pool_len = existing.map_or(0, |m| m.pool.len());
        let mut in_upload = HashSet::new();
        let fresh: Vec<OneTimePrekey> = one_time
            .into_iter()
            .filter(|key| {
                existing.is_none_or(|m| !m.known_ids.contains(&key.id)) && in_upload.insert(key.id)
            })
            .collect();
        // Refused before anything changes (the mailbox is not even registered).
        let size = pool_len + fresh.len();
        if size > self.quotas.max_one_time_prekeys as usize {
            return Err(Error::QuotaExceeded {
                mailbox,
                kind: QuotaKind::OneTimePrekeys,
            });
        }
        let entry = state.mailboxes.entry(mailbox).or_default();
        entry.prekeys = Some((identity, signed_prekey));
        entry.known_ids.extend(in_upload);
        entry.pool.extend(fresh);
        Ok(u32::try_from(size).unwrap_or(u32::MAX))
    }

    async fn take_bundle(&self, mailbox: MailboxId) -> Result<Option<TakenBundle>> {
        let mut state = self.lock()?;
        let Some(entry) = state.mailboxes.get_mut(&mailbox) else {
            return Ok(None);
        };
        let Some((identity, signed_prekey)) = entry.prekeys.clone() else {
            return Ok(None);
        };
        let one_time_prekey = entry.pool.pop_front();
        Ok(Some(TakenBundle {
            bundle: PrekeyBundle {
                identity,
                signed_prekey,
                one_time_prekey,
            },
            one_time_left: u32::try_from(entry.pool.len()).unwrap_or(u32::MAX),
        }))
    }

    async fn prekey_count(&self, mailbox: MailboxId) -> Result<u32> {
        let state = self.lock()?;
        let count = state.mailboxes.get(&mailbox).map_or(0, |m| m.pool.len());
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    async fn stats(&self) -> Result<StoreStats> {
        let state = self.lock()?;
        let mut stats = StoreStats {
            mailboxes: state.mailboxes.len() as u64,
            ..StoreStats::default()
        };
        for mailbox in state.mailboxes.values() {
            stats.messages += mailbox.messages.len() as u64;
            stats.bytes += mailbox.bytes;
        }
        Ok(stats)
    }

    async fn flush(&self) -> Result<()> {
        Ok(())
    }
}
