//! group.json: one group of three members (alice, bob, carol) across two adds and a removal,
//! scripted step by step (commits, welcomes, sender keys, seals, deliveries), with every commit,
//! state hash (rosters with roles and seniorities), sender key and message key; and the group
//! envelopes and control messages a member must reject, each at a position of the script.
//!
//! - `script`: the parties, the timeline and the runner that plays it against real groups;
//! - `wire`: encodings, hashes and seals built by hand, and decoders of the groups' output;
//! - `records`: the records of the file's positive part;
//! - `scenario`: the positive part, recorded while the script plays;
//! - `negative`: the negative vectors, and the test that checks them against real groups;
//! - `mutation`: how each negative input is built from its base;
//! - `crafted`: the negative inputs built from scratch (forged envelope, commits, sender keys).

mod crafted;
mod mutation;
mod negative;
mod records;
mod scenario;
mod script;
mod wire;

use records::GroupFile;

/// The whole of group.json.
pub(super) fn group_file() -> GroupFile {
    let generated = scenario::generate();
    let negative = negative::negative_vectors(&generated);
    GroupFile {
        negative,
        ..generated.file
    }
}
