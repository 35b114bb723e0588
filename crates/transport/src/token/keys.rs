//! Token keys: the HS256 secrets shared with the application's backend, with key ids for
//! rotation, loaded from a file or the environment.

use std::fmt;
use std::io::Read;
use std::path::Path;

use base64::Engine;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use hmac::{KeyInit, Mac};
use zeroize::Zeroizing;

use super::{HmacSha256, MAX_KEY_FILE_LEN, MAX_KID_LEN, MIN_SECRET_LEN, TokenError};

/// One HMAC-SHA256 key with its key id. The secret is zeroized on drop and never printed.
#[derive(Clone)]
pub struct TokenKey {
    kid: String,
    secret: Zeroizing<Vec<u8>>,
}

impl TokenKey {
    /// A key named `kid` (1 to [`MAX_KID_LEN`] printable ASCII characters, no whitespace) with
    /// `secret`, which must be at least [`MIN_SECRET_LEN`] bytes of random data.
    ///
    /// # Errors
    ///
    /// [`TokenError::InvalidKey`] if the kid or the secret is unacceptable; the secret is
    /// zeroized either way.
    pub fn new(kid: impl Into<String>, secret: Vec<u8>) -> Result<Self, TokenError> {
        let secret = Zeroizing::new(secret);
        let kid = kid.into();
        if kid.is_empty() || kid.len() > MAX_KID_LEN || !kid.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::InvalidKey(
                "the kid must be 1 to 64 printable ASCII characters without whitespace",
            ));
        }
        if secret.len() < MIN_SECRET_LEN {
            return Err(TokenError::InvalidKey(
                "the secret is shorter than 32 bytes; generate at least 32 random bytes",
            ));
        }
        Ok(Self { kid, secret })
    }

    /// The key id, as carried in the `kid` header of the tokens it signs.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub(super) fn mac(&self, signing_input: &[u8]) -> Result<HmacSha256, TokenError> {
        // HMAC accepts keys of any length; this cannot fail.
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.secret)
            .map_err(|_| TokenError::InvalidKey("HMAC rejected the secret"))?;
        mac.update(signing_input);
        Ok(mac)
    }
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKey")
            .field("kid", &self.kid)
            .field("secret", &format_args!("<redacted>"))
            .finish()
    }
}

/// A key ring: the keys a relay accepts, looked up by `kid`. Several keys allow rotation:
/// add the new key, move the backend to it, and remove the old key once its tokens expired.
#[derive(Clone)]
pub struct TokenKeys {
    keys: Vec<TokenKey>,
}

impl TokenKeys {
    /// A ring of `keys`.
    ///
    /// # Errors
    ///
    /// [`TokenError::InvalidKeyRing`] if `keys` is empty or two keys share a kid.
    pub fn new(keys: Vec<TokenKey>) -> Result<Self, TokenError> {
        if keys.is_empty() {
            return Err(TokenError::InvalidKeyRing(
                "the key ring has no keys".into(),
            ));
        }
        for (i, key) in keys.iter().enumerate() {
            if keys[..i].iter().any(|k| k.kid == key.kid) {
                return Err(TokenError::InvalidKeyRing(format!(
                    "duplicate kid `{}`; give every key a distinct kid",
                    key.kid
                )));
            }
        }
        Ok(Self { keys })
    }

    /// Parses a key ring from `text`: one key per line, `<kid> <secret>`, separated by spaces
    /// or tabs, where the secret is base64 in the standard or the URL-safe alphabet, padded or
    /// not. Blank lines and lines starting with `#` are ignored. For example:
    ///
    /// ```text
    /// # current key, then the previous one (remove it once its tokens expired)
    /// 2025-02 <output of `openssl rand -base64 32`>
    /// 2025-01 <output of `openssl rand -base64 32`>
    /// ```
    ///
    /// # Errors
    ///
    /// [`TokenError::KeyFile`] naming the offending line (without its content) if a line is
    /// not `<kid> <secret>`, the secret is not base64 or shorter than 32 bytes, the kid is
    /// invalid or repeated, or there are no keys.
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        Self::parse_lines(text).map_err(TokenError::KeyFile)
    }

    /// Reads a key ring in the format of [`TokenKeys::parse`] from the file at `path`.
    ///
    /// On Unix the file must be a regular file that neither group nor others can access
    /// (`mode & 0o077 == 0`, for example `chmod 600`), like `ssh` requires of private keys;
    /// otherwise the file is refused without being read. At most 64 KiB are read.
    ///
    /// # Errors
    ///
    /// [`TokenError::KeyFile`] naming `path` if the file cannot be opened or read, is too
    /// large, is accessible by group or others, is not UTF-8, or does not parse.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, TokenError> {
        let path = path.as_ref();
        let fail = |why: String| TokenError::KeyFile(format!("{}: {why}", path.display()));
        let file = std::fs::File::open(path).map_err(|e| fail(format!("cannot open: {e}")))?;
        let meta = file
            .metadata()
            .map_err(|e| fail(format!("cannot stat: {e}")))?;
        if !meta.is_file() {
            return Err(fail("not a regular file".into()));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(fail(format!(
                    "permissions {mode:04o} are too open: group or others can access the \
                     file; run `chmod 600` on it"
                )));
            }
        }
        let capacity = usize::try_from(meta.len().min(MAX_KEY_FILE_LEN) + 1).unwrap_or(0);
        let mut bytes = Zeroizing::new(Vec::with_capacity(capacity));
        file.take(MAX_KEY_FILE_LEN + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| fail(format!("cannot read: {e}")))?;
        if bytes.len() as u64 > MAX_KEY_FILE_LEN {
            return Err(fail(format!("larger than {MAX_KEY_FILE_LEN} bytes")));
        }
        let text = std::str::from_utf8(&bytes).map_err(|_| fail("not UTF-8 text".into()))?;
        Self::parse_lines(text).map_err(fail)
    }

    /// Reads a key ring in the format of [`TokenKeys::parse`] from the environment variable
    /// `var_name` (keys separated by newlines). The copy of the value is zeroized.
    ///
    /// # Errors
    ///
    /// [`TokenError::KeyFile`] naming the variable if it is unset, not Unicode, or does not
    /// parse.
    pub fn from_env(var_name: &str) -> Result<Self, TokenError> {
        let fail =
            |why: String| TokenError::KeyFile(format!("environment variable {var_name}: {why}"));
        let value = std::env::var_os(var_name).ok_or_else(|| fail("not set".into()))?;
        let value = match value.into_string() {
            Ok(s) => Zeroizing::new(s),
            Err(os) => {
                drop(Zeroizing::new(os.into_encoded_bytes()));
                return Err(fail("not valid Unicode".into()));
            }
        };
        Self::parse_lines(&value).map_err(fail)
    }

    /// The key named `kid`, if it is in the ring.
    pub fn get(&self, kid: &str) -> Option<&TokenKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// The key ids in the ring, in the order given.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.kid.as_str())
    }

    fn parse_lines(text: &str) -> Result<Self, String> {
        let mut keys: Vec<(usize, TokenKey)> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let n = index + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split_ascii_whitespace();
            let (Some(kid), Some(secret), None) = (fields.next(), fields.next(), fields.next())
            else {
                return Err(format!("line {n}: expected `<kid> <base64 secret>`"));
            };
            let secret = decode_secret(secret)
                .ok_or_else(|| format!("line {n}: the secret is not valid base64"))?;
            let key = TokenKey::new(kid, secret).map_err(|e| format!("line {n}: {e}"))?;
            if let Some((m, _)) = keys.iter().find(|(_, k)| k.kid == key.kid) {
                return Err(format!("line {n}: duplicate kid `{}` (line {m})", key.kid));
            }
            keys.push((n, key));
        }
        if keys.is_empty() {
            return Err("no keys found; expected lines of `<kid> <base64 secret>`".into());
        }
        Ok(Self {
            keys: keys.into_iter().map(|(_, k)| k).collect(),
        })
    }
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKeys")
            .field("kids", &self.kids().collect::<Vec<_>>())
            .finish()
    }
}

/// Decodes a key-file secret: standard or URL-safe alphabet, padded or not, into a buffer
/// that is zeroized on drop (no intermediate copies).
fn decode_secret(text: &str) -> Option<Vec<u8>> {
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let engine = if text.contains(['-', '_']) {
        GeneralPurpose::new(&alphabet::URL_SAFE, config)
    } else {
        GeneralPurpose::new(&alphabet::STANDARD, config)
    };
    let mut buf = Zeroizing::new(vec![0u8; base64::decoded_len_estimate(text.len())]);
    let len = engine.decode_slice(text, &mut buf[..]).ok()?;
    buf.truncate(len);
    Some(std::mem::take(&mut *buf))
}
