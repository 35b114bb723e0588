//! The cryptographic floor: what any protocol with sealwire's envelope (AES-256-GCM plus
//! HMAC-SHA256 over the padded plaintext) cannot avoid, with fixed keys. The same definition
//! (`sealwire_bench::fixtures`) as `floor_seal/N` and `floor_open/N` in `bench/benches/core.rs`.

use std::hint::black_box;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::KeyInit;
use criterion::BatchSize;
use sealwire_bench::fixtures::{
    FLOOR_AES_KEY, floor_buffer, floor_open_in_place, floor_seal_into, floor_sealed,
};

use crate::{Cmp, SIZE};

/// `cmp/floor_seal`. Encrypting the previous iteration's ciphertext in place costs the same as
/// encrypting the plaintext: AES-GCM's cost does not depend on the data.
pub(crate) fn floor_seal(group: &mut Cmp<'_>) {
    let cipher = Aes256Gcm::new(&FLOOR_AES_KEY.into());
    let mut buf = floor_buffer(SIZE);
    group.bench_function("floor_seal", |b| {
        b.iter(|| floor_seal_into(&cipher, black_box(&mut buf)));
    });
}

/// `cmp/floor_open`. Decryption is in place, so each iteration gets its own copy of the sealed
/// buffer, made in the untimed setup.
pub(crate) fn floor_open(group: &mut Cmp<'_>) {
    let cipher = Aes256Gcm::new(&FLOOR_AES_KEY.into());
    let (sealed, mac_tag) = floor_sealed(&cipher, SIZE);
    group.bench_function("floor_open", |b| {
        b.iter_batched(
            || sealed.clone(),
            |mut buf| {
                floor_open_in_place(&cipher, black_box(&mut buf), &mac_tag);
                buf
            },
            BatchSize::SmallInput,
        );
    });
}
