//! Replays every committed seed (`fuzz/corpus/<target>/`) and regression
//! (`fuzz/regressions/<target>/`, if present) through its target. A missing or empty corpus
//! directory fails the test: it must not pass by finding nothing.
// Test helpers outside `#[test]` functions: failing loudly is their job.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use sealwire_fuzz_harness::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The files of `dir`, sorted; `None` if it does not exist.
fn files(dir: &Path) -> Option<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    out.sort();
    Some(out)
}

fn replay(target: &str) {
    let started = Instant::now();
    let corpus = fuzz_dir().join("corpus").join(target);
    let seeds = files(&corpus).unwrap_or_else(|| panic!("{} is missing", corpus.display()));
    assert!(!seeds.is_empty(), "{} is empty", corpus.display());
    let regressions = files(&fuzz_dir().join("regressions").join(target)).unwrap_or_default();
    for path in seeds.iter().chain(&regressions) {
        let bytes = std::fs::read(path).unwrap();
        eprintln!("{target}: {}", path.display());
        sealwire_fuzz_harness::run(target, &bytes);
    }
    eprintln!(
        "{target}: {} corpus inputs, {} regressions in {:?}",
        seeds.len(),
        regressions.len(),
        started.elapsed()
    );
}

#[test]
fn every_target_has_a_test_here() {
    let here = [
        "envelope_decode",
        "session_open",
        "initial_message",
        "group_control",
        "relay_frame",
        "relay_connection",
    ];
    assert_eq!(TARGETS, here);
    for target in TARGETS {
        let source = fuzz_dir().join("fuzz_targets").join(format!("{target}.rs"));
        assert!(source.is_file(), "{} is missing", source.display());
    }
}

#[test]
fn envelope_decode() {
    replay("envelope_decode");
}

#[test]
fn session_open() {
    replay("session_open");
}

#[test]
fn initial_message() {
    replay("initial_message");
}

#[test]
fn group_control() {
    replay("group_control");
}

#[test]
fn relay_frame() {
    replay("relay_frame");
}

#[test]
fn relay_connection() {
    replay("relay_connection");
}
