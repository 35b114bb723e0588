//! The cryptographic floor: what any protocol with sealwire's envelope (AES-256-GCM plus
//! HMAC-SHA256 over the padded plaintext) cannot avoid, with fixed keys. The same definition as
//! `floor_seal/N` and `floor_open/N` in `crates/core/benches/core.rs`.

use std::hint::black_box;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use criterion::BatchSize;
use hmac::{Hmac, Mac};
use sealwire_core::padded_len;
use sha2::Sha256;

use crate::{Cmp, SIZE, plaintext};

type HmacSha256 = Hmac<Sha256>;

/// Fixed keys and nonce.
const AES_KEY: [u8; 32] = [0x11; 32];
const MAC_KEY: [u8; 32] = [0x22; 32];
const NONCE: [u8; 12] = [0x33; 12];
/// GCM tag length.
const TAG_LEN: usize = 16;

/// AES-256-GCM of the padded plaintext in place (no associated data), then HMAC-SHA256 over
/// ciphertext and GCM tag. Returns the HMAC tag.
fn seal_into(cipher: &Aes256Gcm, buf: &mut [u8]) -> [u8; 32] {
    let (body, tag_out) = buf.split_at_mut(buf.len() - TAG_LEN);
    let tag = cipher
        .encrypt_inout_detached(&Nonce::from(NONCE), b"", body.into())
        .unwrap();
    tag_out.copy_from_slice(&tag);
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&MAC_KEY).unwrap();
    mac.update(buf);
    mac.finalize().into_bytes().into()
}

/// Verifies the HMAC tag over `sealed` (constant time), then verifies and decrypts in place.
fn open_in_place(cipher: &Aes256Gcm, sealed: &mut [u8], mac_tag: &[u8; 32]) {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&MAC_KEY).unwrap();
    mac.update(sealed);
    mac.verify_slice(mac_tag).unwrap();
    let (body, tag) = sealed.split_at_mut(sealed.len() - TAG_LEN);
    let tag = Tag::try_from(&*tag).unwrap();
    cipher
        .decrypt_inout_detached(&Nonce::from(NONCE), b"", body.into(), &tag)
        .unwrap();
}

/// A buffer of the padded length of a `SIZE`-byte plaintext plus the GCM tag.
fn padded_buffer() -> Vec<u8> {
    let mut buf = plaintext();
    buf.resize(padded_len(SIZE) + TAG_LEN, 0);
    buf
}

/// `cmp/floor_seal`. Encrypting the previous iteration's ciphertext in place costs the same as
/// encrypting the plaintext: AES-GCM's cost does not depend on the data.
pub(crate) fn floor_seal(group: &mut Cmp<'_>) {
    let cipher = Aes256Gcm::new(&AES_KEY.into());
    let mut buf = padded_buffer();
    group.bench_function("floor_seal", |b| {
        b.iter(|| seal_into(&cipher, black_box(&mut buf)));
    });
}

/// `cmp/floor_open`. Decryption is in place, so each iteration gets its own copy of the sealed
/// buffer, made in the untimed setup.
pub(crate) fn floor_open(group: &mut Cmp<'_>) {
    let cipher = Aes256Gcm::new(&AES_KEY.into());
    let mut sealed = padded_buffer();
    let mac_tag = seal_into(&cipher, &mut sealed);
    group.bench_function("floor_open", |b| {
        b.iter_batched(
            || sealed.clone(),
            |mut buf| {
                open_in_place(&cipher, black_box(&mut buf), &mac_tag);
                buf
            },
            BatchSize::SmallInput,
        );
    });
}
