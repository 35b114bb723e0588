//! Encoding helpers shared by the wire format and the state format, and by crates that frame
//! sealwire data with postcard (the transport's relay frames).
//!
//! Fixed-size byte arrays are encoded by postcard as their raw bytes, with no length prefix
//! (postcard encodes a fixed-size array as a tuple, and a `u8` as itself). serde only implements
//! this for arrays up to 32 bytes, so [`fixed`] provides it for any length.

use serde::de::{Error as _, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserializer, Serializer};

/// serde `with` module: a `[u8; N]` as a tuple of `N` bytes (raw bytes in postcard).
///
/// Use it as `#[serde(with = "sealwire_core::encoding::fixed")]` on a byte-array field.
pub mod fixed {
    use super::*;

    /// Serializes `bytes` as a tuple of `N` bytes.
    ///
    /// # Errors
    /// Whatever the serializer reports.
    pub fn serialize<S: Serializer, const N: usize>(
        bytes: &[u8; N],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(N)?;
        for byte in bytes {
            tuple.serialize_element(byte)?;
        }
        tuple.end()
    }

    /// Deserializes a tuple of exactly `N` bytes.
    ///
    /// # Errors
    /// If fewer than `N` bytes are available, or the deserializer fails.
    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        deserializer: D,
    ) -> Result<[u8; N], D::Error> {
        struct ArrayVisitor<const N: usize>;
        impl<'de, const N: usize> Visitor<'de> for ArrayVisitor<N> {
            type Value = [u8; N];
            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, "{N} bytes")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<[u8; N], A::Error> {
                let mut out = [0u8; N];
                for (i, slot) in out.iter_mut().enumerate() {
                    *slot = seq
                        .next_element()?
                        .ok_or_else(|| A::Error::invalid_length(i, &self))?;
                }
                Ok(out)
            }
        }
        deserializer.deserialize_tuple(N, ArrayVisitor::<N>)
    }
}

/// Serialize `value` with postcard into a buffer of exactly the right size.
///
/// Sizing first means the buffer is never reallocated, so no stray copy of secret state is left
/// behind in freed memory; callers holding secrets wrap the result in `Zeroizing`.
pub(crate) fn to_exact_vec<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, postcard::Error> {
    let len = postcard::experimental::serialized_size(value)?;
    let mut buf = vec![0u8; len];
    let used = postcard::to_slice(value, &mut buf)?.len();
    buf.truncate(used);
    Ok(buf)
}
