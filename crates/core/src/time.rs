//! Time as the caller gives it. `sealwire-core` reads no clock: every operation that depends on
//! time (rotation policy, grace periods, prekey age) takes a [`Timestamp`] argument.

use serde::{Deserialize, Serialize};

/// A point in time: whole seconds since the Unix epoch, as told by the caller.
///
/// The core never reads a clock. A caller whose clock goes backwards only delays rotation and
/// expiry; it cannot make the core accept anything it would otherwise reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The Unix epoch itself.
    pub const UNIX_EPOCH: Timestamp = Timestamp(0);

    /// A timestamp `secs` seconds after the Unix epoch.
    pub const fn from_unix_secs(secs: u64) -> Self {
        Timestamp(secs)
    }

    /// Seconds since the Unix epoch.
    pub const fn as_unix_secs(self) -> u64 {
        self.0
    }

    /// Seconds elapsed from `earlier` to `self`; zero if `earlier` is later.
    pub const fn secs_since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// This timestamp plus `secs` seconds, saturating.
    pub const fn plus_secs(self, secs: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(secs))
    }
}
