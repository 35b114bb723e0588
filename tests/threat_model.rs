//! Keeps `spec/THREATS.md` (and the test map of `spec/client.md` section 11.7) honest.
//!
//! Every test those documents name as `` `path::function` `` must exist: the file must be there
//! and define `fn function`. Every threat row of `spec/THREATS.md` section 4 must name at least
//! one test. A renamed or deleted test, or a new threat added without a test, fails here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::Path;

/// A `path.rs::…::function` reference found in a document.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct TestRef {
    path: String,
    function: String,
}

/// Every backticked `path.rs::…::function` span of `text`.
fn references(text: &str) -> Vec<TestRef> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|span| {
            let (path, rest) = span.split_once(".rs::")?;
            let function = rest.rsplit("::").next()?;
            let plain = |s: &str| {
                !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '/' || c == '.')
            };
            (plain(path) && plain(function) && !function.contains('/')).then(|| TestRef {
                path: format!("{path}.rs"),
                function: function.to_owned(),
            })
        })
        .collect()
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

/// The names of the tests a document points at that do not exist.
fn missing(document: &str) -> (usize, Vec<String>) {
    let refs: BTreeSet<TestRef> = references(&read(document)).into_iter().collect();
    let missing = refs
        .iter()
        .filter(|r| {
            let Ok(source) = std::fs::read_to_string(root().join(&r.path)) else {
                return true;
            };
            let defines = |suffix: &str| source.contains(&format!("fn {}{suffix}", r.function));
            !(defines("(") || defines("<"))
        })
        .map(|r| format!("{}::{}", r.path, r.function))
        .collect();
    (refs.len(), missing)
}

#[test]
fn the_parser_finds_references_and_ignores_other_code_spans() {
    let found = references(
        "a `tests/x.rs::one` b `crates/c/tests/y.rs::m::two` c `not code` d `f(x)` \
         e `src/z.rs::tests::three`, and `spec/vectors/` too",
    );
    let names: Vec<_> = found
        .iter()
        .map(|r| (r.path.as_str(), r.function.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("tests/x.rs", "one"),
            ("crates/c/tests/y.rs", "two"),
            ("src/z.rs", "three"),
        ]
    );
}

#[test]
fn every_test_the_threat_model_names_exists() {
    let (count, missing) = missing("spec/THREATS.md");
    // A parser that silently stopped finding references would make this test vacuous.
    assert!(
        count >= 80,
        "only {count} test references found in spec/THREATS.md"
    );
    assert!(
        missing.is_empty(),
        "spec/THREATS.md names tests that do not exist: {missing:#?}"
    );
}

#[test]
fn every_test_the_client_spec_names_exists() {
    let (count, missing) = missing("spec/client.md");
    assert!(
        count >= 30,
        "only {count} test references found in spec/client.md"
    );
    assert!(
        missing.is_empty(),
        "spec/client.md names tests that do not exist: {missing:#?}"
    );
}

#[test]
fn every_threat_has_a_test() {
    let text = read("spec/THREATS.md");
    let start = text.find("\n## 4.").expect("section 4");
    let end = text[start..]
        .find("\n## 5.")
        .map_or(text.len(), |e| start + e);
    let mut rows = 0;
    let mut untested = Vec::new();
    for line in text[start..end].lines() {
        let is_row = line.starts_with("| ") && !line.starts_with("| threat |");
        if !is_row {
            continue;
        }
        rows += 1;
        if references(line).is_empty() && !line.contains("fuzz target") {
            untested.push(line.split('|').nth(1).unwrap_or(line).trim().to_owned());
        }
    }
    assert!(rows >= 40, "only {rows} threat rows found");
    assert!(
        untested.is_empty(),
        "threats without a named test: {untested:#?}"
    );
}
