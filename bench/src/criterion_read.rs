//! Reading criterion's saved results.
//!
//! `cargo bench` with criterion saves, for every benchmark, a directory under
//! `target/criterion/` named after the benchmark id (characters criterion cannot use in a file
//! name replaced by `_`), holding `new/benchmark.json` (the id, including its `full_id`, and
//! the throughput if one was set) and `new/estimates.json` (the statistics of the latest run,
//! in nanoseconds per iteration: `mean`, `median`, `std_dev`, `median_abs_dev` and `slope`, each
//! with a `point_estimate` and a `confidence_interval` with `lower_bound` and `upper_bound`).
//! Previous runs live in `base/` and named baselines in directories of their own, and the HTML
//! report in `report/`; only `new/` directories are read here.
//!
//! Nothing here panics on missing or malformed files: every failure is a [`ReadError`], and
//! [`read_all`] collects the failures it meets while walking instead of stopping at the first.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// How deep [`read_all`] descends below the criterion directory: ids have a few `/`-separated
/// parts (`group/function/parameter`), each a directory, plus `new/`.
const MAX_DEPTH: usize = 8;

/// Which of criterion's statistics is read as the figure of a benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statistic {
    /// The mean time per iteration.
    Mean,
    /// The median time per iteration (more robust to outliers on a noisy machine).
    Median,
}

impl Statistic {
    /// The key of this statistic in `estimates.json`.
    pub fn key(self) -> &'static str {
        match self {
            Statistic::Mean => "mean",
            Statistic::Median => "median",
        }
    }
}

/// One benchmark's figure: a point estimate with its confidence interval, in nanoseconds per
/// iteration, and the number of elements one iteration processes if the benchmark declared an
/// element throughput.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// The point estimate (ns per iteration).
    pub point_ns: f64,
    /// The lower bound of the confidence interval (ns per iteration).
    pub lower_ns: f64,
    /// The upper bound of the confidence interval (ns per iteration).
    pub upper_ns: f64,
    /// The confidence level of the interval (criterion's default is 0.95).
    pub confidence_level: f64,
    /// `Throughput::Elements(n)` of the benchmark, if it set one.
    pub elements: Option<u64>,
}

impl Estimate {
    /// The figure per element: divided by [`Estimate::elements`] when the benchmark declared
    /// an element throughput of at least one, unchanged otherwise.
    pub fn per_element(&self) -> Estimate {
        match self.elements {
            Some(n) if n > 1 => {
                let n = n as f64;
                Estimate {
                    point_ns: self.point_ns / n,
                    lower_ns: self.lower_ns / n,
                    upper_ns: self.upper_ns / n,
                    confidence_level: self.confidence_level,
                    elements: Some(1),
                }
            }
            _ => *self,
        }
    }
}

/// Why a result could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// A file or directory could not be read.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file is not valid JSON.
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: serde_json::Error,
    },
    /// A JSON file lacks a field, or the field has the wrong type or an impossible value.
    Field {
        /// The file.
        path: PathBuf,
        /// The field, as a dotted path.
        field: String,
    },
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            ReadError::Json { path, source } => {
                write!(f, "{}: not valid JSON: {source}", path.display())
            }
            ReadError::Field { path, field } => {
                write!(f, "{}: missing or invalid field `{field}`", path.display())
            }
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadError::Io { source, .. } => Some(source),
            ReadError::Json { source, .. } => Some(source),
            ReadError::Field { .. } => None,
        }
    }
}

/// Everything [`read_all`] found: the figures by full benchmark id (such as `cmp/floor_seal`
/// or `seal/256`), and the result directories it could not read.
#[derive(Debug, Default)]
pub struct Results {
    /// The figures, by full id.
    pub estimates: BTreeMap<String, Estimate>,
    /// The directories (or files) that could not be read, with why.
    pub problems: Vec<ReadError>,
}

impl Results {
    /// The figure of benchmark `id`, if it was read.
    pub fn get(&self, id: &str) -> Option<&Estimate> {
        self.estimates.get(id)
    }
}

fn read_json(path: &Path) -> Result<Value, ReadError> {
    let text = fs::read_to_string(path).map_err(|source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| ReadError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// A finite, non-negative number at `pointer` (a JSON pointer such as `/median/point_estimate`).
fn number(value: &Value, pointer: &str, path: &Path) -> Result<f64, ReadError> {
    value
        .pointer(pointer)
        .and_then(Value::as_f64)
        .filter(|x| x.is_finite() && *x >= 0.0)
        .ok_or_else(|| ReadError::Field {
            path: path.to_path_buf(),
            field: pointer.trim_start_matches('/').replace('/', "."),
        })
}

/// Parses the text of an `estimates.json` (`path` is only used in errors). The element count
/// is left `None`: it comes from `benchmark.json`.
///
/// # Errors
/// [`ReadError::Json`] if the text is not JSON; [`ReadError::Field`] if the statistic, its
/// point estimate or its interval is missing or not a finite non-negative number, or if the
/// interval does not contain the point estimate.
pub fn parse_estimates(
    text: &str,
    statistic: Statistic,
    path: &Path,
) -> Result<Estimate, ReadError> {
    let value: Value = serde_json::from_str(text).map_err(|source| ReadError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    estimates_from_value(&value, statistic, path)
}

fn estimates_from_value(
    value: &Value,
    statistic: Statistic,
    path: &Path,
) -> Result<Estimate, ReadError> {
    let key = statistic.key();
    let point_ns = number(value, &format!("/{key}/point_estimate"), path)?;
    let lower_ns = number(
        value,
        &format!("/{key}/confidence_interval/lower_bound"),
        path,
    )?;
    let upper_ns = number(
        value,
        &format!("/{key}/confidence_interval/upper_bound"),
        path,
    )?;
    // Criterion writes the level; tolerate its absence (the interval is still usable).
    let confidence_level = value
        .pointer(&format!("/{key}/confidence_interval/confidence_level"))
        .and_then(Value::as_f64)
        .filter(|x| x.is_finite() && *x > 0.0 && *x < 1.0)
        .unwrap_or(0.95);
    if !(lower_ns <= point_ns && point_ns <= upper_ns) {
        return Err(ReadError::Field {
            path: path.to_path_buf(),
            field: format!("{key}.confidence_interval (does not contain the point estimate)"),
        });
    }
    Ok(Estimate {
        point_ns,
        lower_ns,
        upper_ns,
        confidence_level,
        elements: None,
    })
}

/// The benchmark's full id and element throughput, from the text of a `benchmark.json`.
///
/// # Errors
/// [`ReadError::Json`] if the text is not JSON; [`ReadError::Field`] if `full_id` is missing or
/// not a string, or an `Elements` throughput is not an integer.
pub fn parse_benchmark(text: &str, path: &Path) -> Result<(String, Option<u64>), ReadError> {
    let value: Value = serde_json::from_str(text).map_err(|source| ReadError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    benchmark_from_value(&value, path)
}

fn benchmark_from_value(value: &Value, path: &Path) -> Result<(String, Option<u64>), ReadError> {
    let full_id = value
        .get("full_id")
        .and_then(Value::as_str)
        .ok_or_else(|| ReadError::Field {
            path: path.to_path_buf(),
            field: "full_id".to_owned(),
        })?;
    let elements = match value.pointer("/throughput/Elements") {
        None => None,
        Some(n) => Some(n.as_u64().ok_or_else(|| ReadError::Field {
            path: path.to_path_buf(),
            field: "throughput.Elements".to_owned(),
        })?),
    };
    Ok((full_id.to_owned(), elements))
}

/// Reads one benchmark's results from its `new/` directory: its full id and its figure.
///
/// If `benchmark.json` is missing, the id is `fallback_id` (the directory path below the
/// criterion directory, which equals the id unless criterion had to replace characters).
///
/// # Errors
/// Any [`ReadError`] from the two files.
pub fn read_benchmark(
    new_dir: &Path,
    fallback_id: &str,
    statistic: Statistic,
) -> Result<(String, Estimate), ReadError> {
    let estimates_path = new_dir.join("estimates.json");
    let mut estimate =
        estimates_from_value(&read_json(&estimates_path)?, statistic, &estimates_path)?;
    let benchmark_path = new_dir.join("benchmark.json");
    let id = if benchmark_path.is_file() {
        let (id, elements) = benchmark_from_value(&read_json(&benchmark_path)?, &benchmark_path)?;
        estimate.elements = elements;
        id
    } else {
        fallback_id.to_owned()
    };
    Ok((id, estimate))
}

/// Walks `criterion_dir` (normally `target/criterion`) and reads every benchmark's latest
/// results (its `new/` directory with an `estimates.json`). A missing directory yields empty
/// results with one problem recorded; unreadable entries are recorded and skipped.
pub fn read_all(criterion_dir: &Path, statistic: Statistic) -> Results {
    let mut results = Results::default();
    walk(criterion_dir, criterion_dir, 0, statistic, &mut results);
    results
}

fn walk(root: &Path, dir: &Path, depth: usize, statistic: Statistic, results: &mut Results) {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(source) => {
            results.problems.push(ReadError::Io {
                path: dir.to_path_buf(),
                source,
            });
            return;
        }
    };
    let mut subdirs = Vec::new();
    for entry in entries {
        match entry {
            // `file_type` does not follow symbolic links: a link is never descended into.
            Ok(entry) if entry.file_type().is_ok_and(|t| t.is_dir()) => {
                subdirs.push(entry.path());
            }
            Ok(_) => {}
            Err(source) => results.problems.push(ReadError::Io {
                path: dir.to_path_buf(),
                source,
            }),
        }
    }
    subdirs.sort();
    for sub in subdirs {
        let name = sub.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name == "new" {
            if !sub.join("estimates.json").is_file() {
                continue;
            }
            let fallback = dir
                .strip_prefix(root)
                .map(|rel| {
                    rel.components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/")
                })
                .unwrap_or_default();
            match read_benchmark(&sub, &fallback, statistic) {
                Ok((id, estimate)) => {
                    results.estimates.insert(id, estimate);
                }
                Err(error) => results.problems.push(error),
            }
        } else if depth + 1 < MAX_DEPTH {
            // Baselines (`base/`, named ones) and `report/` hold no `new/`: nothing is read there.
            walk(root, &sub, depth + 1, statistic, results);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ESTIMATES: &str = r#"{
        "mean": {"confidence_interval": {"confidence_level": 0.95, "lower_bound": 1100.0,
                 "upper_bound": 1300.0}, "point_estimate": 1200.0, "standard_error": 50.0},
        "median": {"confidence_interval": {"confidence_level": 0.95, "lower_bound": 990.5,
                   "upper_bound": 1010.0}, "point_estimate": 1000.25, "standard_error": 5.0},
        "median_abs_dev": {"confidence_interval": {"confidence_level": 0.95,
                           "lower_bound": 1.0, "upper_bound": 3.0}, "point_estimate": 2.0,
                           "standard_error": 0.5},
        "slope": null,
        "std_dev": {"confidence_interval": {"confidence_level": 0.95, "lower_bound": 10.0,
                    "upper_bound": 30.0}, "point_estimate": 20.0, "standard_error": 5.0}
    }"#;

    fn benchmark_json(full_id: &str, throughput: &str) -> String {
        format!(
            r#"{{"group_id":"g","function_id":null,"value_str":null,"throughput":{throughput},
               "full_id":"{full_id}","directory_name":"x","title":"{full_id}"}}"#
        )
    }

    /// A fresh, empty directory under the system temporary directory.
    fn temp_dir(name: &str) -> PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir = std::env::temp_dir().join(format!(
            "sealwire-bench-{name}-{}-{nanos}",
            std::process::id()
        ));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn write_result(root: &Path, dir: &str, estimates: &str, benchmark: Option<&str>) {
        let new = root.join(dir).join("new");
        fs::create_dir_all(&new).unwrap();
        fs::write(new.join("estimates.json"), estimates).unwrap();
        if let Some(benchmark) = benchmark {
            fs::write(new.join("benchmark.json"), benchmark).unwrap();
        }
    }

    #[test]
    fn parses_both_statistics() {
        let path = Path::new("estimates.json");
        let median = parse_estimates(ESTIMATES, Statistic::Median, path).unwrap();
        assert_eq!(median.point_ns, 1000.25);
        assert_eq!(median.lower_ns, 990.5);
        assert_eq!(median.upper_ns, 1010.0);
        assert_eq!(median.confidence_level, 0.95);
        assert_eq!(median.elements, None);
        let mean = parse_estimates(ESTIMATES, Statistic::Mean, path).unwrap();
        assert_eq!(mean.point_ns, 1200.0);
    }

    #[test]
    fn rejects_odd_estimates() {
        let path = Path::new("e.json");
        assert!(matches!(
            parse_estimates("{not json", Statistic::Median, path),
            Err(ReadError::Json { .. })
        ));
        let missing = parse_estimates(r#"{"mean": {}}"#, Statistic::Median, path);
        match missing {
            Err(ReadError::Field { field, .. }) => assert_eq!(field, "median.point_estimate"),
            other => panic!("unexpected {other:?}"),
        }
        let negative = r#"{"median": {"point_estimate": -1.0, "confidence_interval":
            {"lower_bound": -2.0, "upper_bound": 0.0}}}"#;
        assert!(parse_estimates(negative, Statistic::Median, path).is_err());
        let outside = r#"{"median": {"point_estimate": 5.0, "confidence_interval":
            {"lower_bound": 1.0, "upper_bound": 2.0}}}"#;
        assert!(parse_estimates(outside, Statistic::Median, path).is_err());
        let text = r#"{"median": {"point_estimate": "fast", "confidence_interval":
            {"lower_bound": 1.0, "upper_bound": 2.0}}}"#;
        assert!(parse_estimates(text, Statistic::Median, path).is_err());
    }

    #[test]
    fn parses_benchmark_ids_and_elements() {
        let path = Path::new("benchmark.json");
        let (id, elements) = parse_benchmark(&benchmark_json("cmp/x", "null"), path).unwrap();
        assert_eq!((id.as_str(), elements), ("cmp/x", None));
        let text = benchmark_json("cmp/batch", r#"{"Elements":32}"#);
        assert_eq!(parse_benchmark(&text, path).unwrap().1, Some(32));
        let text = benchmark_json("seal/256", r#"{"Bytes":256}"#);
        assert_eq!(parse_benchmark(&text, path).unwrap().1, None);
        assert!(parse_benchmark(r#"{"title": "x"}"#, path).is_err());
        let text = benchmark_json("cmp/batch", r#"{"Elements":"many"}"#);
        assert!(parse_benchmark(&text, path).is_err());
    }

    #[test]
    fn per_element_divides_by_the_element_count() {
        let estimate = Estimate {
            point_ns: 3200.0,
            lower_ns: 3100.0,
            upper_ns: 3300.0,
            confidence_level: 0.95,
            elements: Some(32),
        };
        let per = estimate.per_element();
        assert_eq!(per.point_ns, 100.0);
        assert_eq!(per.lower_ns, 3100.0 / 32.0);
        let single = Estimate {
            elements: None,
            ..estimate
        };
        assert_eq!(single.per_element(), single);
    }

    #[test]
    fn walks_a_criterion_directory() {
        let root = temp_dir("walk");
        write_result(
            &root,
            "cmp/floor_seal",
            ESTIMATES,
            Some(&benchmark_json("cmp/floor_seal", "null")),
        );
        // Criterion replaced a character of this id in its directory name.
        write_result(
            &root,
            "cmp/odd_name",
            ESTIMATES,
            Some(&benchmark_json("cmp/odd:name", r#"{"Elements":4}"#)),
        );
        // No benchmark.json: the id is the directory path.
        write_result(&root, "seal/256", ESTIMATES, None);
        // Broken files are reported, not fatal.
        write_result(&root, "open/256", "{", None);
        // A previous run's results (`base/`, no `new/` inside) are not read.
        let base = root.join("cmp/floor_open/base");
        fs::create_dir_all(&base).unwrap();
        fs::write(base.join("estimates.json"), ESTIMATES).unwrap();
        // A `new/` without estimates is not a result.
        fs::create_dir_all(root.join("cmp/unfinished/new")).unwrap();

        let results = read_all(&root, Statistic::Median);
        let ids: Vec<&str> = results.estimates.keys().map(String::as_str).collect();
        assert_eq!(ids, ["cmp/floor_seal", "cmp/odd:name", "seal/256"]);
        assert_eq!(results.get("cmp/odd:name").unwrap().elements, Some(4));
        assert_eq!(results.get("seal/256").unwrap().point_ns, 1000.25);
        assert_eq!(results.problems.len(), 1);
        assert!(matches!(results.problems[0], ReadError::Json { .. }));

        let missing = read_all(&root.join("absent"), Statistic::Median);
        assert!(missing.estimates.is_empty());
        assert_eq!(missing.problems.len(), 1);
        fs::remove_dir_all(&root).unwrap();
    }
}
