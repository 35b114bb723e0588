//! The key hierarchy: store keys (a passphrase or a raw 256-bit key, and where they come from),
//! the key wrap (how a store key becomes the key-encryption key, KEK, that seals the store's
//! data key), and the record keys derived from the data key, which seal and index records.
//!
//! The construction is described in the [module documentation](super).

use std::fmt;
use std::io::{Read, Write};
use std::path::Path;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use argon2::{Algorithm, Argon2, Params, Version};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use super::Record;
use crate::error::{Error, Result};

/// HKDF info of the record key, derived from the data key.
const RECORD_INFO: &[u8] = b"sealwire store v1 record encryption";
/// HKDF info of the index key, derived from the data key.
const INDEX_INFO: &[u8] = b"sealwire store v1 record index";
/// The length of an AES-GCM nonce.
const NONCE_LEN: usize = 12;
/// The length of an AES-GCM tag.
pub(super) const TAG_LEN: usize = 16;
/// HKDF info of the KEK derived from a raw store key.
const KEK_INFO: &[u8] = b"sealwire store v1 kek";
/// Prefix of the associated data of the wrapped data key (followed by `postcard(kdf)`).
const DEK_AAD: &[u8] = b"sealwire store v1 dek";
/// Most Argon2 memory accepted (4 GiB), so that a damaged or hostile file cannot make `open`
/// allocate without bound.
const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
/// Most Argon2 iterations accepted, so that a damaged file cannot make `open` run for hours.
const MAX_ITERATIONS: u32 = 1024;

/// What opens a store: a passphrase (stretched with Argon2id) or a raw 256-bit key (from a key
/// file, an environment variable or the caller).
///
/// The secret is zeroized on drop, and `Debug` shows only which kind of key this is.
pub struct StoreKey(Secret);

enum Secret {
    Passphrase(Zeroizing<String>),
    Raw(Box<Zeroizing<[u8; 32]>>),
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Secret::Passphrase(_) => "StoreKey::Passphrase(<redacted>)",
            Secret::Raw(_) => "StoreKey::Raw(<redacted>)",
        })
    }
}

impl StoreKey {
    /// A passphrase, stretched with Argon2id (its UTF-8 bytes as given, without Unicode
    /// normalization). [`LocalStore::create`](super::LocalStore::create) and
    /// [`LocalStore::change_key`](super::LocalStore::change_key) refuse an empty one.
    pub fn passphrase(passphrase: impl Into<String>) -> StoreKey {
        StoreKey(Secret::Passphrase(Zeroizing::new(passphrase.into())))
    }

    /// A raw 256-bit key. The argument (a copy on the caller's side) is wiped here.
    pub fn from_bytes(mut key: [u8; 32]) -> StoreKey {
        let secret = StoreKey(Secret::Raw(Box::new(Zeroizing::new(key))));
        key.zeroize();
        secret
    }

    /// Reads a raw key from a file holding exactly 32 bytes, or 64 hex digits (surrounding
    /// whitespace such as a final newline is ignored).
    ///
    /// # Errors
    /// [`Error::KeyFilePermissions`] on unix if group or others have any access to the file
    /// (`mode & 0o077 != 0`); [`Error::StoreKey`] if it cannot be read or holds anything else.
    /// Messages never include the file's contents.
    pub fn from_file(path: &Path) -> Result<StoreKey> {
        let shown = path.display();
        let file = std::fs::File::open(path)
            .map_err(|e| Error::StoreKey(format!("cannot open the key file {shown}: {e}")))?;
        let metadata = file
            .metadata()
            .map_err(|e| Error::StoreKey(format!("cannot read the key file {shown}: {e}")))?;
        if !metadata.is_file() {
            return Err(Error::StoreKey(format!("{shown} is not a regular file")));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if metadata.permissions().mode() & 0o077 != 0 {
                return Err(Error::KeyFilePermissions(shown.to_string()));
            }
        }
        // A key file is 32 or about 65 bytes: refuse to read a large file into memory.
        let mut contents = Zeroizing::new(Vec::with_capacity(129));
        file.take(128)
            .read_to_end(&mut contents)
            .map_err(|e| Error::StoreKey(format!("cannot read the key file {shown}: {e}")))?;
        let mut key = Box::new(Zeroizing::new([0u8; 32]));
        if contents.len() == 32 {
            key.copy_from_slice(&contents);
        } else if !decode_hex(&contents, &mut key) {
            return Err(Error::StoreKey(format!(
                "the key file {shown} must hold 32 raw bytes or 64 hex digits; it holds {} \
                 bytes{}",
                contents.len(),
                if contents.len() >= 128 {
                    " or more"
                } else {
                    ""
                }
            )));
        }
        Ok(StoreKey(Secret::Raw(key)))
    }

    /// Reads a raw key from the environment variable `var`: 64 hex digits (surrounding
    /// whitespace ignored).
    ///
    /// # Errors
    /// [`Error::StoreKey`], naming the variable (never its value), if it is unset or does not
    /// hold 64 hex digits.
    pub fn from_env(var: &str) -> Result<StoreKey> {
        let value = std::env::var_os(var)
            .ok_or_else(|| Error::StoreKey(format!("the environment variable {var} is not set")))?;
        let value = Zeroizing::new(value.into_encoded_bytes());
        let mut key = Box::new(Zeroizing::new([0u8; 32]));
        if !decode_hex(&value, &mut key) {
            return Err(Error::StoreKey(format!(
                "the environment variable {var} must hold 64 hex digits (a 256-bit key)"
            )));
        }
        Ok(StoreKey(Secret::Raw(key)))
    }

    /// Writes a fresh random key to a new file at `path` as 64 lowercase hex digits and a
    /// newline (mode 0600 on unix), and returns it. Never overwrites a file.
    ///
    /// # Errors
    /// [`Error::StoreKey`] if the file exists or cannot be created and written (a partly
    /// written file is removed).
    pub fn generate_file(path: &Path) -> Result<StoreKey> {
        let shown = path.display();
        let mut key = Box::new(Zeroizing::new([0u8; 32]));
        rand::rng().fill_bytes(key.as_mut_slice());
        let mut text = Zeroizing::new([b'\n'; 65]);
        if hex::encode_to_slice(key.as_slice(), &mut text[..64]).is_err() {
            unreachable!("32 bytes are 64 hex digits");
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(|e| {
            Error::StoreKey(if e.kind() == std::io::ErrorKind::AlreadyExists {
                format!("the key file {shown} already exists; not overwriting it")
            } else {
                format!("cannot create the key file {shown}: {e}")
            })
        })?;
        if let Err(e) = file
            .write_all(text.as_slice())
            .and_then(|()| file.sync_all())
        {
            drop(file);
            let _ = std::fs::remove_file(path);
            return Err(Error::StoreKey(format!(
                "cannot write the key file {shown}: {e}"
            )));
        }
        Ok(StoreKey(Secret::Raw(key)))
    }
}

/// Decodes 64 hex digits (surrounding ASCII whitespace ignored) into `out`. Reports no detail,
/// so that no caller can echo a character of the secret.
fn decode_hex(text: &[u8], out: &mut [u8; 32]) -> bool {
    let text = text.trim_ascii();
    text.len() == 64 && hex::decode_to_slice(text, out).is_ok()
}

/// Argon2id parameters for a passphrase store key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KdfParams {
    /// Memory in KiB (at least 8 per lane, at most 4 GiB).
    pub memory_kib: u32,
    /// Passes over the memory (1 to 1024).
    pub iterations: u32,
    /// Lanes (1 to 2^24 - 1). The implementation computes them one after the other.
    pub parallelism: u32,
}

impl Default for KdfParams {
    /// The second recommended option of RFC 9106 (section 4): 64 MiB, 3 iterations, 4 lanes.
    fn default() -> Self {
        KdfParams {
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 4,
        }
    }
}

impl KdfParams {
    /// Argon2's minimum (8 KiB, 1 iteration, 1 lane): fast, and useless against guessing.
    /// For tests only, never for a real store.
    pub fn insecure_fast_for_tests() -> KdfParams {
        KdfParams {
            memory_kib: Params::MIN_M_COST,
            iterations: Params::MIN_T_COST,
            parallelism: Params::MIN_P_COST,
        }
    }

    /// Checks that Argon2id accepts these parameters (at least 8 KiB of memory per lane, at
    /// least one iteration, 1 to 2^24 - 1 lanes) and that they are within this store's bounds
    /// (at most 4 GiB of memory and 1024 iterations).
    ///
    /// # Errors
    /// [`Error::StoreKey`] saying which bound is violated.
    pub fn validate(&self) -> Result<()> {
        self.argon2().map(|_| ())
    }

    fn argon2(&self) -> Result<Argon2<'static>> {
        if self.memory_kib > MAX_MEMORY_KIB {
            return Err(Error::StoreKey(format!(
                "Argon2id memory of {} KiB is above the {MAX_MEMORY_KIB} KiB (4 GiB) allowed",
                self.memory_kib
            )));
        }
        if self.iterations > MAX_ITERATIONS {
            return Err(Error::StoreKey(format!(
                "{} Argon2id iterations are above the {MAX_ITERATIONS} allowed",
                self.iterations
            )));
        }
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
            .map_err(|e| {
                Error::StoreKey(format!(
                    "invalid Argon2id parameters ({e}): memory must be at least 8 KiB per lane, \
                 iterations at least 1, lanes 1 to 16777215"
                ))
            })?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// How the KEK is derived: stored (in clear, authenticated) in `meta["key"]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Kdf {
    /// Argon2id v0x13 over the passphrase, with this salt and these parameters.
    Passphrase {
        salt: [u8; 16],
        memory_kib: u32,
        iterations: u32,
        parallelism: u32,
    },
    /// HKDF-SHA256 of a raw 32-byte key.
    Raw,
}

/// `meta["key"]`: the data key sealed under the KEK.
#[derive(Serialize, Deserialize)]
struct KeyWrap {
    kdf: Kdf,
    nonce: [u8; 12],
    wrapped: Vec<u8>,
}

/// Seals `dek` under a KEK derived from `key` (with a fresh salt, for a passphrase, and a
/// fresh nonce): the bytes of `meta["key"]`.
pub(super) fn wrap(key: &StoreKey, kdf: KdfParams, dek: &[u8; 32]) -> Result<Vec<u8>> {
    let kdf = match &key.0 {
        Secret::Passphrase(passphrase) => {
            if passphrase.is_empty() {
                return Err(Error::StoreKey("the passphrase is empty".into()));
            }
            kdf.validate()?;
            let mut salt = [0u8; 16];
            rand::rng().fill_bytes(&mut salt);
            Kdf::Passphrase {
                salt,
                memory_kib: kdf.memory_kib,
                iterations: kdf.iterations,
                parallelism: kdf.parallelism,
            }
        }
        Secret::Raw(_) => Kdf::Raw,
    };
    let kek = kek(key, &kdf)?;
    let mut nonce = [0u8; 12];
    rand::rng().fill_bytes(&mut nonce);
    let mut wrapped = Vec::with_capacity(48);
    wrapped.extend_from_slice(dek);
    let sealed = Aes256Gcm::new(&(*kek).into()).encrypt_in_place(
        &Nonce::from(nonce),
        &aad(&kdf)?,
        &mut wrapped,
    );
    if sealed.is_err() {
        wrapped.zeroize();
        return Err(Error::Storage("cannot seal the data key".into()));
    }
    postcard::to_allocvec(&KeyWrap {
        kdf,
        nonce,
        wrapped,
    })
    .map_err(|e| Error::Storage(format!("cannot encode the key record: {e}")))
}

/// Opens `meta["key"]` with `key`: the data key.
///
/// # Errors
/// [`Error::WrongStoreKey`] if the key is of the other kind or the tag does not verify;
/// [`Error::StoreCorrupt`] if the record does not decode or its parameters are out of range.
pub(super) fn unwrap(key: &StoreKey, stored: &[u8]) -> Result<Box<Zeroizing<[u8; 32]>>> {
    let wrap: KeyWrap = match postcard::take_from_bytes(stored) {
        Ok((wrap, [])) => wrap,
        _ => return Err(Error::StoreCorrupt("the key record does not decode")),
    };
    if let Kdf::Passphrase {
        memory_kib,
        iterations,
        parallelism,
        ..
    } = wrap.kdf
    {
        let params = KdfParams {
            memory_kib,
            iterations,
            parallelism,
        };
        if params.validate().is_err() {
            return Err(Error::StoreCorrupt(
                "the key record has out-of-range Argon2id parameters",
            ));
        }
    }
    let kek = kek(key, &wrap.kdf)?;
    let mut dek = Zeroizing::new(wrap.wrapped);
    Aes256Gcm::new(&(*kek).into())
        .decrypt_in_place(&Nonce::from(wrap.nonce), &aad(&wrap.kdf)?, &mut *dek)
        .map_err(|_| Error::WrongStoreKey)?;
    if dek.len() != 32 {
        return Err(Error::StoreCorrupt("the data key has the wrong length"));
    }
    let mut out = Box::new(Zeroizing::new([0u8; 32]));
    out.copy_from_slice(&dek);
    Ok(out)
}

/// The associated data of the wrapped data key: the label, then the KDF description, so that
/// an altered description fails the tag.
fn aad(kdf: &Kdf) -> Result<Vec<u8>> {
    postcard::to_extend(kdf, DEK_AAD.to_vec())
        .map_err(|e| Error::Storage(format!("cannot encode the key record: {e}")))
}

/// The KEK for `kdf`, or [`Error::WrongStoreKey`] if `key` is of the other kind.
fn kek(key: &StoreKey, kdf: &Kdf) -> Result<Zeroizing<[u8; 32]>> {
    let mut kek = Zeroizing::new([0u8; 32]);
    match (&key.0, kdf) {
        (Secret::Raw(raw), Kdf::Raw) => {
            if Hkdf::<Sha256>::new(None, raw.as_slice())
                .expand(KEK_INFO, kek.as_mut_slice())
                .is_err()
            {
                unreachable!("32 bytes is a valid HKDF-SHA256 output length");
            }
        }
        (
            Secret::Passphrase(passphrase),
            Kdf::Passphrase {
                salt,
                memory_kib,
                iterations,
                parallelism,
            },
        ) => {
            let params = KdfParams {
                memory_kib: *memory_kib,
                iterations: *iterations,
                parallelism: *parallelism,
            };
            params
                .argon2()?
                .hash_password_into(passphrase.as_bytes(), salt, kek.as_mut_slice())
                .map_err(|e| Error::StoreKey(format!("Argon2id failed: {e}")))?;
        }
        _ => return Err(Error::WrongStoreKey),
    }
    Ok(kek)
}

/// The keys derived from the data key, each boxed so that moving the store copies no key.
pub(super) struct Keys {
    pub(super) dek: Box<Zeroizing<[u8; 32]>>,
    record: Box<Aes256Gcm>,
    index: Box<Zeroizing<[u8; 32]>>,
}

impl Keys {
    pub(super) fn new(dek: Box<Zeroizing<[u8; 32]>>) -> Keys {
        let record_key = derive(&dek, RECORD_INFO);
        Keys {
            record: Box::new(Aes256Gcm::new(&(**record_key).into())),
            index: derive(&dek, INDEX_INFO),
            dek,
        }
    }

    /// HMAC-SHA256(index key, kind ‖ key).
    pub(super) fn slot(&self, kind: u8, key: &[u8]) -> [u8; 32] {
        let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(self.index.as_slice()) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        };
        mac.update(&[kind]);
        mac.update(key);
        mac.finalize().into_bytes().into()
    }

    /// nonce ‖ AES-256-GCM(record key, nonce, postcard((kind, key, value)), aad = slot).
    pub(super) fn seal(
        &self,
        slot: &[u8; 32],
        kind: u8,
        key: &[u8],
        value: &[u8],
    ) -> Result<Vec<u8>> {
        // The plaintext goes into a zeroizing buffer large enough for the encoding (a u8 and
        // two length varints of at most 10 bytes) and the tag, so that no reallocation leaves
        // a copy behind.
        let bound = 21usize
            .saturating_add(key.len())
            .saturating_add(value.len())
            .saturating_add(TAG_LEN);
        let mut plaintext = Zeroizing::new(vec![0u8; bound]);
        let len = postcard::to_slice(&(kind, key, value), plaintext.as_mut_slice())
            .map_err(|e| Error::Storage(format!("cannot encode a record: {e}")))?
            .len();
        plaintext.truncate(len);
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        self.record
            .encrypt_in_place(&Nonce::from(nonce), slot, &mut *plaintext)
            .map_err(|_| Error::Storage("cannot encrypt a record (too large)".into()))?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + plaintext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&plaintext);
        Ok(sealed)
    }

    /// Decrypts and checks one `records` row.
    pub(super) fn open(&self, slot: &[u8], sealed: &[u8]) -> Result<Record> {
        let slot: &[u8; 32] = slot
            .try_into()
            .map_err(|_| Error::StoreCorrupt("a record slot has the wrong length"))?;
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(Error::StoreCorrupt("a record is truncated"));
        }
        let (nonce_bytes, ciphertext) = sealed.split_at(NONCE_LEN);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(nonce_bytes);
        let mut plaintext = Zeroizing::new(ciphertext.to_vec());
        self.record
            .decrypt_in_place(&Nonce::from(nonce), slot, &mut *plaintext)
            .map_err(|_| Error::StoreCorrupt("a record does not decrypt: altered or moved"))?;
        let (kind, key, value): (u8, &[u8], &[u8]) = match postcard::take_from_bytes(&plaintext) {
            Ok((record, [])) => record,
            _ => return Err(Error::StoreCorrupt("a record does not decode")),
        };
        if self.slot(kind, key) != *slot {
            return Err(Error::StoreCorrupt("a record is not in its slot"));
        }
        Ok(Record {
            kind,
            key: key.to_vec(),
            value: Zeroizing::new(value.to_vec()),
        })
    }
}

/// HKDF-SHA256(salt = none, ikm = DEK, info), 32 bytes.
fn derive(dek: &[u8; 32], info: &[u8]) -> Box<Zeroizing<[u8; 32]>> {
    let mut out = Box::new(Zeroizing::new([0u8; 32]));
    if Hkdf::<Sha256>::new(None, dek)
        .expand(info, out.as_mut_slice())
        .is_err()
    {
        unreachable!("32 bytes is a valid HKDF-SHA256 output length");
    }
    out
}
