//! Sealing and opening group messages, and handing out sender keys.

use super::chain::{Bounds, Plan, ReceivingChain, SendingChain};
use super::control::{ControlBody, ControlWire, WireSenderKey};
use super::history::EpochState;
use super::message::{self, GroupHeader, SignatureCheck, branch_tag};
use super::roster::Member;
use super::state::Group;
use super::{GroupOpened, GroupSealed, SenderKeyMessage};
use crate::envelope::MAX_PLAINTEXT_LEN;
use crate::error::{Error, Result};
use crate::identity::PublicIdentity;
use crate::kdf;
use crate::time::Timestamp;

/// Where an envelope's header leads in this member's state (spec/groups.md 8.4 steps 5-13).
pub(super) struct Route<'g> {
    /// The epoch the envelope was sealed in.
    pub(super) state: &'g EpochState,
    /// Its sender, in that epoch's roster.
    pub(super) sender: &'g Member,
    /// The sender's receiving chain in that epoch.
    pub(super) chain: &'g ReceivingChain,
}

impl Group {
    /// Seals `plaintext` for every other member of the current epoch.
    ///
    /// On this member's first message of an epoch a fresh sender key is drawn, and
    /// [`GroupSealed::sender_key`] must be delivered to every recipient over the pairwise
    /// sessions before the envelope. The cost of sealing does not depend on the group size.
    ///
    /// # Errors
    /// [`Error::PlaintextTooLarge`]; [`Error::NotAMember`] once this member was removed;
    /// [`Error::SessionExhausted`] if the sending chain is used up (rotate first).
    pub fn seal<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        plaintext: &[u8],
        rng: &mut R,
        now: Timestamp,
    ) -> Result<GroupSealed> {
        if plaintext.len() > MAX_PLAINTEXT_LEN {
            return Err(Error::PlaintextTooLarge {
                len: plaintext.len(),
                max: MAX_PLAINTEXT_LEN,
            });
        }
        let Group {
            id, own, epochs, ..
        } = self;
        let Some(state) = epochs.values_mut().next_back() else {
            unreachable!("a group always holds its current epoch");
        };
        let own_index = state
            .own_index
            .ok_or(Error::NotAMember("this member was removed from the group"))?;
        // A chain drawn now is stored only if the message seals (all or nothing).
        let fresh = match state.sending {
            Some(_) => None,
            None => Some(SendingChain::generate(rng)),
        };
        let chain = match (&fresh, &state.sending) {
            (Some(chain), _) | (None, Some(chain)) => chain,
            (None, None) => unreachable!("a sending chain was drawn above"),
        };
        let sender_key = match &fresh {
            Some(chain) => Some(sender_key_message(id.as_bytes(), state, chain, own)?),
            None => None,
        };
        let (counter, message_key, next) = chain.step()?;
        let keys = kdf::group_message_keys(&message_key);
        let header = GroupHeader::new(id, state.epoch, &state.state_hash, own_index, counter);
        let envelope = message::seal(
            &header,
            &keys,
            &state.state_hash,
            chain.signing_key(),
            plaintext,
        )?;
        if let Some(chain) = fresh {
            state.sending = Some(chain);
        }
        if let Some(chain) = state.sending.as_mut() {
            chain.commit_step(next);
        }
        state.sealed = state.sealed.saturating_add(1);
        self.prune(now);
        Ok(GroupSealed {
            sender_key,
            envelope,
        })
    }

    /// This member's sender key for the current epoch, from its current position, for every
    /// other member: to hand it out before the first message (so that recipients need not wait
    /// for it), or again to a member that lost it (it then reads messages from here on).
    ///
    /// # Errors
    /// [`Error::NotAMember`] once this member was removed.
    pub fn sender_key_message<R: rand_core::CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
    ) -> Result<SenderKeyMessage> {
        let own = self.own.clone();
        let id = self.id;
        let state = self.current_mut();
        if state.own_index.is_none() {
            return Err(Error::NotAMember("this member was removed from the group"));
        }
        let chain = match &state.sending {
            Some(chain) => chain.clone(),
            None => SendingChain::generate(rng),
        };
        let message = sender_key_message(id.as_bytes(), state, &chain, &own)?;
        state.sending = Some(chain);
        Ok(message)
    }

    /// Opens a group envelope. Checks, in order: framing, group, epoch, sender, replay and
    /// out-of-order bounds, the HMAC tag, the sender's signature, then AES-GCM.
    ///
    /// # Errors
    /// Framing: [`Error::TooLarge`], [`Error::Malformed`], [`Error::UnsupportedVersion`],
    /// [`Error::UnsupportedSuite`], [`Error::UnexpectedKind`]. Routing: [`Error::WrongGroup`],
    /// [`Error::EpochAhead`] (keep it, retry after the commit), [`Error::UnknownEpoch`],
    /// [`Error::OtherBranch`] (keep it, retry after the next conflict resolution),
    /// [`Error::NotAMember`] (unknown or removed sender), [`Error::MissingSenderKey`] (keep
    /// it, retry after the sender's pairwise messages). Delivery: [`Error::Replay`],
    /// [`Error::StaleMessage`], [`Error::TooFarAhead`]. Authenticity:
    /// [`Error::DecryptFailed`], [`Error::InvalidSignature`] (a member forging another's
    /// message). On any error the group is unchanged.
    ///
    /// The signature is verified strictly. For envelopes that arrive together,
    /// [`Group::open_batch`] gives the same results at a lower cost, verifying their
    /// signatures with one batch equation.
    pub fn open(&mut self, envelope: &[u8], now: Timestamp) -> Result<GroupOpened> {
        self.open_checked(envelope, now, SignatureCheck::Strict)
    }

    /// [`Group::open`], with the signature step (spec/groups.md 8.4 step 16) done as `check`
    /// says. Only [`Group::open`] (always [`SignatureCheck::Strict`]) and `open_batch` call it.
    pub(super) fn open_checked(
        &mut self,
        envelope: &[u8],
        now: Timestamp,
        check: SignatureCheck<'_>,
    ) -> Result<GroupOpened> {
        let parsed = message::parse(envelope)?;
        let header = &parsed.header;
        let Route {
            state,
            sender,
            chain,
        } = self.route(header, now)?;
        let bounds = Bounds {
            max_forward_jump: self.config.max_forward_jump,
            grace_secs: self.config.past_epoch_secs,
        };
        let (message_key, plan) =
            chain.resolve(header.sender, header.counter, &state.skipped, now, &bounds)?;
        let keys = kdf::group_message_keys(&message_key);
        let plaintext = message::open(
            &parsed,
            &keys,
            &state.state_hash,
            chain.signing_key(),
            check,
        )?;
        let opened = GroupOpened {
            sender: sender.identity().clone(),
            epoch: header.epoch,
            plaintext,
        };

        // Authentic: commit the plan.
        let (epoch, sender_index, counter) = (header.epoch, header.sender, header.counter);
        let per_sender = self.config.max_skipped_per_sender as usize;
        let per_epoch = self.config.max_skipped_per_epoch as usize;
        if let Some(state) = self.epochs.get_mut(&epoch) {
            match plan {
                Plan::Skipped => state.skipped.remove(sender_index, counter),
                Plan::Advance {
                    skipped,
                    chain_key,
                    next,
                } => {
                    if let Some(chain) = state.receiving.get_mut(&sender_index) {
                        chain.advance_to(chain_key, next);
                    }
                    let evicted =
                        state
                            .skipped
                            .insert(sender_index, skipped, now, per_sender, per_epoch);
                    for (evicted_sender, evicted_counter) in evicted {
                        if let Some(chain) = state.receiving.get_mut(&evicted_sender) {
                            chain.note_discarded(evicted_counter);
                        }
                    }
                }
            }
            state.opened = state.opened.saturating_add(1);
        }
        self.prune(now);
        Ok(opened)
    }

    /// Steps 5 to 13 of spec/groups.md 8.4, without changing anything: the epoch `header` names,
    /// its sender and the sender's receiving chain, or the routing error.
    pub(super) fn route(&self, header: &GroupHeader, now: Timestamp) -> Result<Route<'_>> {
        if header.group_id != *self.id.as_bytes() {
            return Err(Error::WrongGroup);
        }
        let current = self.epoch();
        if header.epoch > current {
            return Err(Error::EpochAhead {
                epoch: header.epoch,
                current,
            });
        }
        let current_roster = &self.current().roster;
        let grace = self.config.past_epoch_secs;
        let state = self
            .epochs
            .get(&header.epoch)
            .filter(|state| !state.is_expired(now, grace))
            .ok_or(Error::UnknownEpoch {
                epoch: header.epoch,
            })?;
        if header.branch != branch_tag(&state.state_hash) {
            return Err(Error::OtherBranch {
                epoch: header.epoch,
            });
        }
        if state.own_index.is_none() {
            return Err(Error::NotAMember(
                "this member is not in that epoch (removed before it, or joined after it)",
            ));
        }
        let sender = state
            .roster
            .get(header.sender as usize)
            .ok_or(Error::NotAMember("the sender index names no member"))?;
        if state.own_index == Some(header.sender) {
            return Err(Error::UnexpectedKind("this member's own group message"));
        }
        if current_roster
            .index_of(sender.identity().signing_key())
            .is_none()
            || state.is_revoked(header.sender)
        {
            return Err(Error::NotAMember("the sender was removed from the group"));
        }
        let chain = state
            .receiving
            .get(&header.sender)
            .ok_or(Error::MissingSenderKey {
                epoch: header.epoch,
                sender: header.sender,
            })?;
        Ok(Route {
            state,
            sender,
            chain,
        })
    }

    fn current_mut(&mut self) -> &mut EpochState {
        match self.epochs.values_mut().next_back() {
            Some(state) => state,
            None => unreachable!("a group always holds its current epoch"),
        }
    }
}

/// The sender-key control message for `chain`'s current position in `state`.
fn sender_key_message(
    group_id: &[u8; 16],
    state: &EpochState,
    chain: &SendingChain,
    own: &PublicIdentity,
) -> Result<SenderKeyMessage> {
    let (chain_key, counter) = chain.position();
    let wire = ControlWire::new(ControlBody::SenderKey(WireSenderKey {
        group_id: *group_id,
        epoch: state.epoch,
        state_hash: state.state_hash,
        counter,
        chain_key: chain_key.clone(),
        signing_key: chain.verifying_key(),
    }));
    let recipients = state
        .roster
        .members()
        .iter()
        .map(|member| member.identity().clone())
        .filter(|identity| identity != own)
        .collect();
    Ok(SenderKeyMessage {
        recipients,
        message: wire.encode()?,
    })
}
