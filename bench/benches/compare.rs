//! Placeholder: filled in by the comparison benchmarks.
#![allow(missing_docs)]
fn main() {}
