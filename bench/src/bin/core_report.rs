//! `core_report`: turns criterion's saved results for the core benchmarks into a Markdown
//! fragment: a table of every figure and a table of the benchmark issue's targets (ratios with
//! pass or FAIL).
//!
//! Run it after the benchmarks, from the workspace root:
//!
//! ```text
//! cargo bench -p sealwire-bench --features peers --bench compare
//! cargo bench -p sealwire-bench --bench core --bench group
//! cargo run -p sealwire-bench --bin core_report -- --out target/bench/core.md
//! ```
//!
//! It reads `<criterion dir>/<id>/new/{estimates,benchmark}.json` (criterion dir:
//! `--criterion-dir`, else `$CARGO_TARGET_DIR/criterion`, else `target/criterion`) for the
//! `cmp/*` ids of `bench/benches/compare.rs` and the core's size sweep and other figures. A
//! figure that is absent is written as "not measured", and so is every target that needs it;
//! unreadable result files are listed at the end of the fragment. Figures are criterion's
//! median (or `--statistic mean`) per iteration with its confidence interval.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use sealwire_bench::criterion_read::{Estimate, Results, Statistic, read_all};

// The crate root is this file: its module lives in `core_report/` so that cargo does not take
// it for a binary of its own.
#[path = "core_report/targets.rs"]
mod targets;
use targets::{Outcome, Rule, evaluate, limit_text, result_text, targets};

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(about = "Writes the Markdown summary of the core and comparison benchmarks")]
struct Args {
    /// Criterion's output directory [default: $CARGO_TARGET_DIR/criterion or target/criterion].
    #[arg(long)]
    criterion_dir: Option<PathBuf>,
    /// The Markdown file to write.
    #[arg(long, default_value = "target/bench/core.md")]
    out: PathBuf,
    /// The statistic read from criterion's estimates.
    #[arg(long, value_enum, default_value_t = StatisticArg::Median)]
    statistic: StatisticArg,
}

/// `--statistic`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum StatisticArg {
    Median,
    Mean,
}

impl From<StatisticArg> for Statistic {
    fn from(arg: StatisticArg) -> Self {
        match arg {
            StatisticArg::Median => Statistic::Median,
            StatisticArg::Mean => Statistic::Mean,
        }
    }
}

/// The comparison ids, in the order of the table, with what each measures.
const CMP: &[(&str, &str)] = &[
    (
        "cmp/floor_seal",
        "floor: AES-256-GCM + HMAC-SHA256 over the padded 256 B, fixed keys",
    ),
    ("cmp/floor_open", "floor: HMAC verify + AES-256-GCM decrypt"),
    ("cmp/sealwire_seal", "sealwire pairwise seal, steady state"),
    ("cmp/sealwire_open", "sealwire pairwise open, steady state"),
    (
        "cmp/olm_encrypt",
        "vodozemac Olm `Session::encrypt` (after a reply)",
    ),
    (
        "cmp/olm_decrypt",
        "vodozemac Olm `Session::decrypt` (after a reply)",
    ),
    ("cmp/sealwire_group_seal", "sealwire `Group::seal` (signed)"),
    (
        "cmp/megolm_encrypt",
        "vodozemac Megolm `GroupSession::encrypt`",
    ),
    (
        "cmp/sealwire_group_open",
        "sealwire `Group::open`, one message",
    ),
    (
        BATCH_ID,
        "sealwire `Group::open_batch`, per message of the batch",
    ),
    (
        "cmp/megolm_decrypt",
        "vodozemac Megolm `InboundGroupSession::decrypt`",
    ),
    (
        "cmp/sealwire_setup",
        "sealwire bundle verified to first message opened",
    ),
    (
        "cmp/olm_setup",
        "Olm outbound session, first message, inbound session decrypting it",
    ),
    (
        "cmp/olm_setup_verified",
        "`cmp/olm_setup` + the one-time key's signature check",
    ),
];

/// The batch group-open benchmark (per-iteration time divided by its element throughput).
const BATCH_ID: &str = "cmp/sealwire_group_open_batch";

/// The core's plaintext sizes (`bench/benches/core.rs`).
const SIZES: [usize; 4] = [64, 256, 4096, 65535];
/// The core's group sizes (`bench/benches/group.rs`).
const GROUP_SIZES: [usize; 3] = [3, 100, 450];

/// Groups of the core's benchmarks whose other ids are listed too when present.
const OTHER_PREFIXES: &[&str] = &[
    "cmp/",
    "seal/",
    "open/",
    "floor_seal/",
    "floor_open/",
    "floor_keyed/",
    "setup/",
    "epoch/",
    "state/",
    "primitive/",
    "group_seal/",
    "group_open/",
    "group_floor/",
    "group_commit/",
    "group_receive_commit/",
    "group_first_seal/",
];

/// The core ids expected in every full run, with what each measures.
fn core_ids() -> Vec<(String, String)> {
    let mut ids = Vec::new();
    for size in SIZES {
        ids.push((format!("seal/{size}"), format!("pairwise seal, {size} B")));
    }
    for size in SIZES {
        ids.push((format!("open/{size}"), format!("pairwise open, {size} B")));
    }
    ids.push((
        "setup/full".to_owned(),
        "bundle verified to first message opened".to_owned(),
    ));
    ids.push((
        "epoch/turn_seal".to_owned(),
        "first seal of a new epoch".to_owned(),
    ));
    ids.push((
        "epoch/turn_open".to_owned(),
        "opening the first message of a new epoch".to_owned(),
    ));
    ids.push((
        "state/to_bytes/32".to_owned(),
        "session save, 32 skipped keys".to_owned(),
    ));
    ids.push((
        "state/from_bytes/32".to_owned(),
        "session restore, 32 skipped keys".to_owned(),
    ));
    for members in GROUP_SIZES {
        ids.push((
            format!("group_seal/{members}"),
            format!("group seal, {members} members, 256 B"),
        ));
    }
    for members in GROUP_SIZES {
        ids.push((
            format!("group_open/{members}"),
            format!("group open, {members} members, 256 B"),
        ));
    }
    ids
}

/// What an id outside the expected lists measures, from its group.
fn describe_other(id: &str) -> String {
    let (group, rest) = id.split_once('/').unwrap_or((id, ""));
    match group {
        "floor_seal" => format!("floor seal (`core.rs`), {rest} B"),
        "floor_open" => format!("floor open (`core.rs`), {rest} B"),
        "floor_keyed" => format!("floor keyed per message: {rest}"),
        "setup" => format!("setup piece: {rest}"),
        "epoch" | "state" => format!("{group}: {rest}"),
        "primitive" => format!("primitive: {rest}"),
        "group_floor" => format!("group floor (+ Ed25519): {rest}"),
        "group_commit" => format!("commit removing a member, {rest} members"),
        "group_receive_commit" => format!("applying that commit, {rest} members"),
        "group_first_seal" => format!("first group seal of an epoch, {rest} members"),
        "cmp" => "other comparison".to_owned(),
        _ => "other".to_owned(),
    }
}

/// A figure in microseconds, with a precision suited to its size.
fn micros(ns: f64) -> String {
    let us = ns / 1000.0;
    if us < 10.0 {
        format!("{us:.3}")
    } else if us < 100.0 {
        format!("{us:.2}")
    } else {
        format!("{us:.1}")
    }
}

/// A figure as shown in the table: per element for the batch benchmark.
fn figure(results: &Results, id: &str) -> Option<Estimate> {
    let estimate = results.get(id)?;
    Some(if id == BATCH_ID {
        estimate.per_element()
    } else {
        *estimate
    })
}

fn figure_row(out: &mut String, id: &str, what: &str, estimate: Option<Estimate>) {
    let _ = match estimate {
        Some(e) => writeln!(
            out,
            "| `{id}` | {what} | {} | {} – {} |",
            micros(e.point_ns),
            micros(e.lower_ns),
            micros(e.upper_ns)
        ),
        None => writeln!(out, "| `{id}` | {what} | not measured | |"),
    };
}

/// The Markdown fragment.
fn render(results: &Results, statistic: Statistic, source: &Path) -> String {
    let mut out = String::new();
    let stat = statistic.key();
    let _ = writeln!(out, "### Core figures\n");
    let _ = writeln!(
        out,
        "Criterion {stat} per operation in µs, with its confidence interval, read from \
         `{}`. The `cmp/*` ids come from one run of `bench/benches/compare.rs` (256-byte \
         plaintext); the others from `bench/benches/{{core,group}}.rs`.\n",
        source.display()
    );
    let _ = writeln!(out, "| id | measures | {stat} (µs) | interval (µs) |");
    let _ = writeln!(out, "|---|---|---:|---|");
    let mut listed: Vec<String> = Vec::new();
    for (id, what) in CMP {
        figure_row(&mut out, id, what, figure(results, id));
        listed.push((*id).to_owned());
    }
    for (id, what) in core_ids() {
        figure_row(&mut out, &id, &what, figure(results, &id));
        listed.push(id);
    }
    for id in results.estimates.keys() {
        let known_group = OTHER_PREFIXES.iter().any(|p| id.starts_with(p));
        if known_group && !listed.contains(id) {
            figure_row(&mut out, id, &describe_other(id), figure(results, id));
        }
    }

    let _ = writeln!(out, "\n### Targets (256-byte messages)\n");
    let _ = writeln!(
        out,
        "Ratios of the {stat}s measured in the same run; the range in brackets combines the two \
         confidence intervals. A speed-up is the peer's time over ours.\n"
    );
    let _ = writeln!(
        out,
        "| target | ours | compared with | measured | required | result |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for target in targets(results) {
        let outcome = evaluate(results, &target);
        let measured = match &outcome {
            Outcome::NotMeasured(missing) => {
                let ids: Vec<String> = missing.iter().map(|id| format!("`{id}`")).collect();
                format!("not measured ({})", ids.join(", "))
            }
            Outcome::Measured {
                value, low, high, ..
            } => format!("{value:.2}× ({low:.2}–{high:.2})"),
        };
        let _ = writeln!(
            out,
            "| {} | `{}` | `{}` | {measured} | {} | {} |",
            target.name,
            target.ours,
            target.theirs,
            limit_text(target.rule),
            result_text(target.rule, &outcome)
        );
    }
    if !results.problems.is_empty() {
        let _ = writeln!(out, "\nResults that could not be read:\n");
        for problem in &results.problems {
            let _ = writeln!(out, "- {problem}");
        }
    }
    out
}

fn default_criterion_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("criterion"),
        _ => PathBuf::from("target").join("criterion"),
    }
}

fn run(args: Args) -> Result<(), String> {
    let statistic = Statistic::from(args.statistic);
    let dir = args.criterion_dir.unwrap_or_else(default_criterion_dir);
    let results = read_all(&dir, statistic);
    let markdown = render(&results, statistic, &dir);
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    std::fs::write(&args.out, &markdown)
        .map_err(|e| format!("cannot write {}: {e}", args.out.display()))?;
    let outcomes: Vec<Outcome> = targets(&results)
        .iter()
        .filter(|t| !matches!(t.rule, Rule::Info))
        .map(|t| evaluate(&results, t))
        .collect();
    let count = |want: Option<bool>| {
        outcomes
            .iter()
            .filter(|o| match o {
                Outcome::Measured { pass, .. } => *pass == want,
                Outcome::NotMeasured(_) => want.is_none(),
            })
            .count()
    };
    println!(
        "wrote {}: {} figures read ({} unreadable); targets: {} pass, {} fail, {} not measured",
        args.out.display(),
        results.estimates.len(),
        results.problems.len(),
        count(Some(true)),
        count(Some(false)),
        count(None)
    );
    Ok(())
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("core_report: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estimate(point_ns: f64, elements: Option<u64>) -> Estimate {
        Estimate {
            point_ns,
            lower_ns: point_ns * 0.99,
            upper_ns: point_ns * 1.01,
            confidence_level: 0.95,
            elements,
        }
    }

    fn results(figures: &[(&str, Estimate)]) -> Results {
        let mut results = Results::default();
        for (id, e) in figures {
            results.estimates.insert((*id).to_owned(), *e);
        }
        results
    }

    #[test]
    fn targets_pass_fail_and_missing() {
        let r = results(&[
            ("cmp/floor_seal", estimate(500.0, None)),
            ("cmp/sealwire_seal", estimate(1400.0, None)),
            ("cmp/floor_open", estimate(500.0, None)),
            ("cmp/sealwire_open", estimate(1600.0, None)),
            ("cmp/sealwire_group_open", estimate(30_000.0, None)),
            ("cmp/megolm_decrypt", estimate(34_000.0, None)),
        ]);
        let outcomes: Vec<Outcome> = targets(&r).iter().map(|t| evaluate(&r, t)).collect();
        assert!(matches!(
            outcomes[0],
            Outcome::Measured {
                pass: Some(true),
                ..
            }
        ));
        assert!(matches!(
            outcomes[1],
            Outcome::Measured {
                pass: Some(false),
                ..
            }
        ));
        assert_eq!(
            outcomes[2],
            Outcome::NotMeasured(vec!["cmp/olm_decrypt".to_owned()])
        );
        // Single-message group open: 34 / 30 is short of 1.5.
        assert!(matches!(
            outcomes[4],
            Outcome::Measured {
                pass: Some(false),
                ..
            }
        ));
        let markdown = render(&r, Statistic::Median, Path::new("target/criterion"));
        assert!(markdown.contains("single message; batch not measured"));
        assert!(markdown.contains("| `cmp/olm_setup` | "));
        assert!(markdown.contains("not measured (`cmp/olm_decrypt`)"));
        assert!(markdown.contains("**FAIL** (over by 7%)"));
    }

    #[test]
    fn batch_open_is_per_message() {
        let r = results(&[
            (BATCH_ID, estimate(32.0 * 10_000.0, Some(32))),
            ("cmp/megolm_decrypt", estimate(34_000.0, None)),
        ]);
        let list = targets(&r);
        let target = list.iter().find(|t| t.ours == BATCH_ID).unwrap();
        assert!(target.name.contains("batch of 32"));
        match evaluate(&r, target) {
            Outcome::Measured { value, pass, .. } => {
                assert!((value - 3.4).abs() < 1e-9);
                assert_eq!(pass, Some(true));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn empty_results_render_as_not_measured() {
        let markdown = render(&Results::default(), Statistic::Mean, Path::new("x"));
        assert!(markdown.contains("| `seal/64` | pairwise seal, 64 B | not measured | |"));
        assert!(!markdown.contains("pass ("));
    }
}
