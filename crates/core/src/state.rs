//! The versioned state format shared by every serializable secret-holding type.
//!
//! State is postcard; its first field is a `u16` format version (a postcard varint). Decoding
//! checks the version before anything else and requires every byte to be consumed.

use serde::{Serialize, de::DeserializeOwned};

use crate::error::{Error, Result};

/// Serializes `value` into an exactly sized buffer (see [`crate::encoding::to_exact_vec`]).
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing the state types cannot fail: they hold integers, byte arrays, options,
    // vectors and maps, all of which postcard encodes into any large-enough buffer.
    crate::encoding::to_exact_vec(value).unwrap_or_default()
}

/// Deserializes state written by [`encode`], checking its format version first.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], expected_version: u16) -> Result<T> {
    let (version, _) = postcard::take_from_bytes::<u16>(bytes)
        .map_err(|_| Error::InvalidState("missing format version"))?;
    if version != expected_version {
        return Err(Error::UnsupportedStateVersion(version));
    }
    let (value, rest) =
        postcard::take_from_bytes::<T>(bytes).map_err(|_| Error::InvalidState("does not parse"))?;
    if !rest.is_empty() {
        return Err(Error::InvalidState("trailing bytes"));
    }
    Ok(value)
}
