//! Writes the seed corpora to `fuzz/corpus/<target>/`, replacing what is there.
//!
//! `cargo run -p sealwire-fuzz-harness --example seeds`. The seeds come from fixtures built
//! with seeded generators, so rerunning writes the same files; every seed is also run through
//! its target before it is written.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

fn main() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    for (target, seeds) in sealwire_fuzz_harness::seeds::all() {
        let dir = corpus.join(target);
        if dir.exists() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                std::fs::remove_file(entry.unwrap().path()).unwrap();
            }
        } else {
            std::fs::create_dir_all(&dir).unwrap();
        }
        for (name, bytes) in &seeds {
            sealwire_fuzz_harness::run(target, bytes);
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        println!("{target}: {} seeds", seeds.len());
    }
}
