//! The benchmark issue's targets: which figures each compares, how, and the text of its
//! outcome.

use sealwire_bench::criterion_read::Results;

use super::{BATCH_ID, figure};

/// How a target compares two figures.
#[derive(Debug, Clone, Copy)]
pub(super) enum Rule {
    /// `ours / theirs` at most this.
    AtMost(f64),
    /// `ours / theirs` strictly below this.
    Below(f64),
    /// `theirs / ours` (our speed-up) at least this.
    SpeedupAtLeast(f64),
    /// Shown for information: `ours / theirs`, no pass or fail.
    Info,
}

/// One row of the targets table.
pub(super) struct Target {
    pub(super) name: String,
    pub(super) ours: &'static str,
    pub(super) theirs: &'static str,
    pub(super) rule: Rule,
}

/// The outcome of one target.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Outcome {
    /// One or both figures are missing: the ids that are.
    NotMeasured(Vec<String>),
    /// The measured value (a ratio or a speed-up), its range from the confidence intervals, and
    /// whether the target is met (`None` for information rows).
    Measured {
        value: f64,
        low: f64,
        high: f64,
        pass: Option<bool>,
    },
}

/// Compares the two figures of `target`.
pub(super) fn evaluate(results: &Results, target: &Target) -> Outcome {
    let ours = figure(results, target.ours);
    let theirs = figure(results, target.theirs);
    let (Some(a), Some(b)) = (ours, theirs) else {
        let missing = [(target.ours, ours), (target.theirs, theirs)]
            .into_iter()
            .filter(|(_, e)| e.is_none())
            .map(|(id, _)| id.to_owned())
            .collect();
        return Outcome::NotMeasured(missing);
    };
    let ratio = |num: f64, den: f64| if den > 0.0 { num / den } else { f64::INFINITY };
    let (value, low, high) = match target.rule {
        Rule::SpeedupAtLeast(_) => (
            ratio(b.point_ns, a.point_ns),
            ratio(b.lower_ns, a.upper_ns),
            ratio(b.upper_ns, a.lower_ns),
        ),
        Rule::AtMost(_) | Rule::Below(_) | Rule::Info => (
            ratio(a.point_ns, b.point_ns),
            ratio(a.lower_ns, b.upper_ns),
            ratio(a.upper_ns, b.lower_ns),
        ),
    };
    let pass = match target.rule {
        Rule::AtMost(limit) => Some(value <= limit),
        Rule::Below(limit) => Some(value < limit),
        Rule::SpeedupAtLeast(limit) => Some(value >= limit),
        Rule::Info => None,
    };
    Outcome::Measured {
        value,
        low,
        high,
        pass,
    }
}

/// The requirement of a rule, as shown in the table.
pub(super) fn limit_text(rule: Rule) -> String {
    match rule {
        Rule::AtMost(limit) => format!("≤ {limit}×"),
        Rule::Below(limit) => format!("< {limit}×"),
        Rule::SpeedupAtLeast(limit) => format!("≥ {limit}× faster"),
        Rule::Info => "(information)".to_owned(),
    }
}

/// Pass or FAIL with the margin, and whether the limit lies within the confidence intervals.
pub(super) fn result_text(rule: Rule, outcome: &Outcome) -> String {
    let Outcome::Measured {
        value,
        low,
        high,
        pass,
    } = outcome
    else {
        return "not measured".to_owned();
    };
    let (limit, upper_bound) = match rule {
        Rule::AtMost(limit) | Rule::Below(limit) => (limit, true),
        Rule::SpeedupAtLeast(limit) => (limit, false),
        Rule::Info => return "–".to_owned(),
    };
    let mut text = match (pass, upper_bound) {
        (Some(true), true) => format!("pass ({:.0}% headroom)", (1.0 - value / limit) * 100.0),
        (Some(true), false) => format!("pass ({:.0}% above)", (value / limit - 1.0) * 100.0),
        (_, true) => format!("**FAIL** (over by {:.0}%)", (value / limit - 1.0) * 100.0),
        (_, false) => format!("**FAIL** (short by {:.0}%)", (1.0 - value / limit) * 100.0),
    };
    if *low <= limit && limit <= *high {
        text.push_str(", within the confidence intervals");
    }
    text
}

/// The targets, in the order of the table, followed by the information rows. Group open uses
/// the batch benchmark when it was measured, the single-message one otherwise (labelled).
pub(super) fn targets(results: &Results) -> Vec<Target> {
    let (group_open, group_open_label) = match results.get(BATCH_ID) {
        Some(e) => match e.elements {
            Some(n) if n > 1 => (BATCH_ID, format!("batch of {n}, per message")),
            _ => (BATCH_ID, "batch, no element count: per batch".to_owned()),
        },
        None => (
            "cmp/sealwire_group_open",
            "single message; batch not measured".to_owned(),
        ),
    };
    let mut list = vec![
        Target {
            name: "pairwise seal within 3× of the floor".to_owned(),
            ours: "cmp/sealwire_seal",
            theirs: "cmp/floor_seal",
            rule: Rule::AtMost(3.0),
        },
        Target {
            name: "pairwise open within 3× of the floor".to_owned(),
            ours: "cmp/sealwire_open",
            theirs: "cmp/floor_open",
            rule: Rule::AtMost(3.0),
        },
        Target {
            name: "pairwise open faster than Olm decrypt".to_owned(),
            ours: "cmp/sealwire_open",
            theirs: "cmp/olm_decrypt",
            rule: Rule::Below(1.0),
        },
        Target {
            name: "group seal no slower than Megolm encrypt".to_owned(),
            ours: "cmp/sealwire_group_seal",
            theirs: "cmp/megolm_encrypt",
            rule: Rule::AtMost(1.0),
        },
        Target {
            name: format!("group open 1.5× faster than Megolm decrypt ({group_open_label})"),
            ours: group_open,
            theirs: "cmp/megolm_decrypt",
            rule: Rule::SpeedupAtLeast(1.5),
        },
        Target {
            name: "session setup no slower than Olm's".to_owned(),
            ours: "cmp/sealwire_setup",
            theirs: "cmp/olm_setup",
            rule: Rule::AtMost(1.0),
        },
        Target {
            name: "pairwise seal / Olm encrypt".to_owned(),
            ours: "cmp/sealwire_seal",
            theirs: "cmp/olm_encrypt",
            rule: Rule::Info,
        },
        Target {
            name: "setup / Olm setup with the one-time key's signature checked".to_owned(),
            ours: "cmp/sealwire_setup",
            theirs: "cmp/olm_setup_verified",
            rule: Rule::Info,
        },
    ];
    if group_open == BATCH_ID {
        list.push(Target {
            name: "group open, one message at a time / Megolm decrypt".to_owned(),
            ours: "cmp/sealwire_group_open",
            theirs: "cmp/megolm_decrypt",
            rule: Rule::Info,
        });
    }
    list
}
