//! The generator of `spec/vectors/relay.json`: the file's layout, the identities, the code
//! tables, and the comparison with (or the writing of) the file. Authentication cases are in
//! `gen_auth`, frames in `gen_frames`.

use std::convert::Infallible;
use std::sync::OnceLock;

use rand_chacha::ChaCha20Rng;
use sealwire_core::IdentityKeyPair;
use sealwire_core::rand_core::{Rng, SeedableRng, TryCryptoRng, TryRng};
use sealwire_transport::auth::{AUTH_LABEL, EXPORTER_LABEL};
use sealwire_transport::code::{CloseCode, ErrorCode};
use sealwire_transport::frame::{MAILBOX_LABEL, MailboxId, SUBPROTOCOL};
use sealwire_transport::token::{DEFAULT_LEEWAY_SECS, TokenKey, TokenKeys, TokenVerifier};
use serde::Serialize;

use crate::primitives::{self, LABEL_APPLICATION};
use crate::{REGENERATE, gen_auth, gen_frames, to_hex, vectors_path, write_mode};

/// Layout version of the file (as in the core's vector files).
const FILE_VERSION: u32 = 1;

/// The `now` of every authentication case (Unix seconds).
pub(crate) const NOW: u64 = 1_780_000_000;

/// The identities: name and ChaCha20 seed (`ChaCha20Rng::seed_from_u64`).
const IDENTITIES: [(&str, u64); 2] = [("alice", 0x7265_6c61_7901), ("bob", 0x7265_6c61_7902)];

/// The bearer-token key of the relay in the token cases. A test-only secret.
pub(crate) const TOKEN_KID: &str = "relay-vectors-2026";

pub(crate) fn token_secret() -> Vec<u8> {
    (0u8..32).map(|i| 0xa0 ^ i).collect()
}

pub(crate) fn token_key() -> TokenKey {
    TokenKey::new(TOKEN_KID, token_secret()).unwrap()
}

/// The verifier of a relay that requires tokens: the key above, default leeway, no audience
/// or issuer.
pub(crate) fn token_verifier() -> TokenVerifier {
    TokenVerifier::new(TokenKeys::new(vec![token_key()]).unwrap())
}

#[derive(Serialize, PartialEq)]
pub(crate) struct RelayFile {
    description: &'static str,
    version: u32,
    subprotocol: &'static str,
    labels: Labels,
    now: u64,
    token_key: TokenKeyRecord,
    identities: Vec<IdentityRecord>,
    authentication: gen_auth::Authentication,
    frames: gen_frames::Frames,
    codes: Codes,
}

#[derive(Serialize, PartialEq)]
struct Labels {
    auth: String,
    application: String,
    mailbox: String,
    exporter: String,
}

#[derive(Serialize, PartialEq)]
struct TokenKeyRecord {
    kid: &'static str,
    secret: String,
    leeway_secs: u64,
    audience: Option<String>,
    issuer: Option<String>,
}

#[derive(Serialize, PartialEq)]
struct IdentityRecord {
    name: &'static str,
    rng_seed: u64,
    signing_seed: String,
    agreement_secret: String,
    signing_public: String,
    agreement_public: String,
    public_identity: String,
    mailbox: String,
}

#[derive(Serialize, PartialEq)]
struct Codes {
    close: Vec<CloseRecord>,
    error: Vec<ErrorRecord>,
}

#[derive(Serialize, PartialEq)]
struct CloseRecord {
    code: u16,
    name: Option<&'static str>,
    fatal: bool,
}

#[derive(Serialize, PartialEq)]
struct ErrorRecord {
    code: u16,
    name: String,
    retryable: bool,
}

/// A seeded ChaCha20 RNG that records what it hands out, so that the secrets
/// `IdentityKeyPair::generate` draws can be listed.
struct Recorder {
    rng: ChaCha20Rng,
    drawn: Vec<u8>,
}

impl TryRng for Recorder {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let value = self.rng.next_u32();
        self.drawn.extend_from_slice(&value.to_le_bytes());
        Ok(value)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let value = self.rng.next_u64();
        self.drawn.extend_from_slice(&value.to_le_bytes());
        Ok(value)
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.rng.fill_bytes(dst);
        self.drawn.extend_from_slice(dst);
        Ok(())
    }
}

impl TryCryptoRng for Recorder {}

/// A vector identity and the secrets it was made from.
pub(crate) struct Party {
    pub(crate) name: &'static str,
    pub(crate) seed: u64,
    pub(crate) keys: IdentityKeyPair,
    /// Ed25519 seed ‖ X25519 secret, as drawn by `IdentityKeyPair::generate`.
    pub(crate) drawn: Vec<u8>,
}

impl Party {
    pub(crate) fn public(&self) -> [u8; 128] {
        self.keys.public().to_bytes()
    }

    pub(crate) fn mailbox(&self) -> MailboxId {
        MailboxId::of(self.keys.public())
    }
}

/// The identity named `name`, generated from its seed.
pub(crate) fn party(name: &str) -> Party {
    let (name, seed) = IDENTITIES
        .into_iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no identity {name}"));
    let mut rng = Recorder {
        rng: ChaCha20Rng::seed_from_u64(seed),
        drawn: Vec::new(),
    };
    let keys = IdentityKeyPair::generate(&mut rng);
    assert_eq!(rng.drawn.len(), 64, "an identity draws two 32-byte secrets");
    let seed_bytes: [u8; 32] = rng.drawn[..32].try_into().unwrap();
    assert_eq!(
        primitives::signing_public(&seed_bytes),
        *keys.public().signing_key(),
        "the first draw is the Ed25519 seed"
    );
    Party {
        name,
        seed,
        keys,
        drawn: rng.drawn,
    }
}

fn identity_record(party: &Party) -> IdentityRecord {
    let public = party.public();
    let mailbox = party.mailbox();
    assert_eq!(mailbox.0, primitives::mailbox(&public));
    IdentityRecord {
        name: party.name,
        rng_seed: party.seed,
        signing_seed: to_hex(&party.drawn[..32]),
        agreement_secret: to_hex(&party.drawn[32..]),
        signing_public: to_hex(&public[..32]),
        agreement_public: to_hex(&public[32..64]),
        public_identity: to_hex(&public),
        mailbox: mailbox.to_hex(),
    }
}

/// Every close code the library names, then one it does not (treated as transient).
fn close_codes() -> Vec<CloseRecord> {
    let mut codes: Vec<CloseRecord> = (0..=u16::MAX)
        .map(CloseCode)
        .filter_map(|code| {
            code.name().map(|name| CloseRecord {
                code: code.0,
                name: Some(name),
                fatal: code.is_fatal(),
            })
        })
        .collect();
    let unknown = CloseCode(4999);
    assert!(unknown.name().is_none());
    codes.push(CloseRecord {
        code: unknown.0,
        name: None,
        fatal: unknown.is_fatal(),
    });
    codes
}

/// The name of an error code, from its `Display` (`"<number> <name>"`).
pub(crate) fn error_name(code: ErrorCode) -> String {
    let text = code.to_string();
    let (number, name) = text.split_once(' ').unwrap();
    assert_eq!(number, code.to_u16().to_string());
    name.to_owned()
}

/// Every error code the library names, then two it does not (`unknown`, not retryable).
fn error_codes() -> Vec<ErrorRecord> {
    let known =
        (0..=u16::MAX).filter(|&n| !matches!(ErrorCode::from_u16(n), ErrorCode::Unknown(_)));
    known
        .chain([0, 10])
        .map(|n| {
            let code = ErrorCode::from_u16(n);
            ErrorRecord {
                code: n,
                name: error_name(code),
                retryable: code.is_retryable(),
            }
        })
        .collect()
}

/// The whole file.
pub(crate) fn generate() -> RelayFile {
    let text = |bytes: &[u8]| String::from_utf8(bytes.to_vec()).unwrap();
    let alice = party("alice");
    let bob = party("bob");
    RelayFile {
        description: "Relay protocol version 1 (spec/relay-protocol.md): identities and their \
                      mailboxes, authentication (transcripts, hello frames, the relay's verdict \
                      and close codes), every client and server frame with its encoding, \
                      encodings that must be rejected, and the close-code and error-code tables. \
                      See section 13 of the spec.",
        version: FILE_VERSION,
        subprotocol: SUBPROTOCOL,
        labels: Labels {
            auth: text(AUTH_LABEL),
            application: text(LABEL_APPLICATION),
            mailbox: text(MAILBOX_LABEL),
            exporter: text(EXPORTER_LABEL),
        },
        now: NOW,
        token_key: TokenKeyRecord {
            kid: TOKEN_KID,
            secret: to_hex(&token_secret()),
            leeway_secs: DEFAULT_LEEWAY_SECS,
            audience: None,
            issuer: None,
        },
        identities: vec![identity_record(&alice), identity_record(&bob)],
        authentication: gen_auth::authentication(&alice, &bob),
        frames: gen_frames::frames(&alice, &bob),
        codes: Codes {
            close: close_codes(),
            error: error_codes(),
        },
    }
}

/// Pretty JSON with a trailing newline.
fn to_json(file: &RelayFile) -> String {
    let mut text = serde_json::to_string_pretty(file).unwrap();
    text.push('\n');
    text
}

static WRITTEN: OnceLock<()> = OnceLock::new();

/// Writes the file, once per run (other tests wait for it).
pub(crate) fn write_once() {
    WRITTEN.get_or_init(|| {
        let path = vectors_path();
        let temporary = path.with_extension("json.tmp");
        std::fs::write(&temporary, to_json(&generate())).unwrap();
        std::fs::rename(&temporary, &path).unwrap();
    });
}

pub(crate) fn match_or_write() {
    if write_mode() {
        write_once();
        return;
    }
    let generated = to_json(&generate());
    let path = vectors_path();
    let existing = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    if existing != generated {
        let line = generated
            .lines()
            .zip(existing.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| generated.lines().count().min(existing.lines().count()));
        panic!(
            "spec/vectors/relay.json does not match the code: first difference at line {} \
             ({} lines generated, {} in the file).\n\
             If the protocol change is intended, regenerate it with\n  {REGENERATE}\n\
             then review the diff (and section 13 of spec/relay-protocol.md if the layout \
             changed).",
            line + 1,
            generated.lines().count(),
            existing.lines().count()
        );
    }
}
