//! Train/test splits: seeded shuffle, optionally stratified, or explicit test rows (to
//! compare with another tool on the very same rows).

use super::rng::Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    #[error("test_size must be between 0 and 1 (exclusive) as a fraction, or a row count; got {0}")]
    BadFraction(f64),
    #[error("test_size of {rows} rows leaves nothing to train on ({n} rows in all)")]
    TooManyRows { rows: usize, n: usize },
    #[error("test_size of 0 rows: nothing to test on")]
    NoTestRows,
    #[error("cannot split {0} rows: at least 2 are needed")]
    TooFewRows(usize),
    #[error("cannot read test rows {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: \"{text}\" is not a row index")]
    BadIndex {
        path: PathBuf,
        line: usize,
        text: String,
    },
    #[error("{path}:{line}: row {index} is out of range (the table has {n} rows, 0-based)")]
    OutOfRange {
        path: PathBuf,
        line: usize,
        index: usize,
        n: usize,
    },
    #[error("{path}:{line}: row {index} is listed twice")]
    Repeated {
        path: PathBuf,
        line: usize,
        index: usize,
    },
    #[error("{path} lists every row: nothing is left to train on")]
    NoTrainRows { path: PathBuf },
}

/// `0.3` (a fraction of the rows) or `900` (a row count), as scikit-learn.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum TestSize {
    Rows(usize),
    Fraction(f64),
}

impl TestSize {
    /// Test rows for `n` rows: a fraction rounds up, as scikit-learn's `train_test_split`.
    pub fn rows(self, n: usize) -> Result<usize, SplitError> {
        let rows = match self {
            TestSize::Fraction(f) if f > 0.0 && f < 1.0 => (f * n as f64).ceil() as usize,
            TestSize::Fraction(f) => return Err(SplitError::BadFraction(f)),
            TestSize::Rows(0) => return Err(SplitError::NoTestRows),
            TestSize::Rows(r) => r,
        };
        if rows >= n {
            return Err(SplitError::TooManyRows { rows, n });
        }
        Ok(rows)
    }
}

/// Row indices of each side, ascending, and what was done.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SplitIndices {
    pub train: Vec<usize>,
    pub test: Vec<usize>,
    pub method: String,
    pub notes: Vec<String>,
}

/// Seeded random split; stratified when `strata` (one label per row) is given.
pub fn split(
    n: usize,
    test_size: TestSize,
    seed: u64,
    strata: Option<&[String]>,
) -> Result<SplitIndices, SplitError> {
    if n < 2 {
        return Err(SplitError::TooFewRows(n));
    }
    let n_test = test_size.rows(n)?;
    let mut rng = Rng::new(seed);
    let (mut train, mut test, method, notes) = match strata {
        None => {
            let mut perm: Vec<usize> = (0..n).collect();
            rng.shuffle(&mut perm);
            let test = perm[..n_test].to_vec();
            let train = perm[n_test..].to_vec();
            (train, test, format!("shuffle (seed {seed})"), Vec::new())
        }
        Some(labels) => stratified(labels, n_test, &mut rng, seed),
    };
    train.sort_unstable();
    test.sort_unstable();
    Ok(SplitIndices {
        train,
        test,
        method,
        notes,
    })
}

/// Per class, its share of the test rows (largest remainders), at least one row on each
/// side when the class has two or more; single-row classes go to training.
fn stratified(
    labels: &[String],
    n_test: usize,
    rng: &mut Rng,
    seed: u64,
) -> (Vec<usize>, Vec<usize>, String, Vec<String>) {
    let n = labels.len();
    let mut classes: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, l) in labels.iter().enumerate() {
        classes.entry(l.as_str()).or_default().push(i);
    }
    let frac = n_test as f64 / n as f64;
    let mut quotas: Vec<(usize, f64)> = classes
        .values()
        .map(|rows| {
            let exact = rows.len() as f64 * frac;
            (exact.floor() as usize, exact - exact.floor())
        })
        .collect();
    // Hand out the rows lost to rounding, largest remainder first (ties: class order).
    let given: usize = quotas.iter().map(|q| q.0).sum();
    let mut order: Vec<usize> = (0..quotas.len()).collect();
    order.sort_by(|&a, &b| quotas[b].1.total_cmp(&quotas[a].1).then(a.cmp(&b)));
    for &k in order.iter().cycle().take(n_test.saturating_sub(given)) {
        quotas[k].0 += 1;
    }
    let mut train = Vec::with_capacity(n - n_test);
    let mut test = Vec::with_capacity(n_test);
    let mut singles = Vec::new();
    for ((label, rows), (quota, _)) in classes.into_iter().zip(quotas) {
        let mut rows = rows;
        rng.shuffle(&mut rows);
        let take = if rows.len() < 2 {
            singles.push(label.to_string());
            0
        } else {
            quota.clamp(1, rows.len() - 1)
        };
        test.extend_from_slice(&rows[..take]);
        train.extend_from_slice(&rows[take..]);
    }
    let mut notes = Vec::new();
    if !singles.is_empty() {
        notes.push(format!(
            "{} class{} with a single row kept in training only: {}",
            singles.len(),
            if singles.len() == 1 { "" } else { "es" },
            singles
                .iter()
                .take(10)
                .map(|s| format!("\"{s}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if test.len() != n_test {
        notes.push(format!(
            "stratification gives {} test rows instead of {n_test} (every class of 2+ rows has at least one on each side)",
            test.len()
        ));
    }
    (train, test, format!("stratified shuffle (seed {seed})"), notes)
}

/// Explicit test rows, one 0-based index per line (blank lines ignored).
/// The file is a regular file within [`crate::fsx::TEST_ROWS`].
pub fn from_test_rows(path: &Path, n: usize) -> Result<SplitIndices, SplitError> {
    let text = crate::fsx::read_to_string(path, crate::fsx::TEST_ROWS).map_err(|e| SplitError::Read {
        path: path.into(),
        source: e.into_io(),
    })?;
    let mut in_test = vec![false; n];
    for (k, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        let index: usize = t.parse().map_err(|_| SplitError::BadIndex {
            path: path.into(),
            line: k + 1,
            text: t.into(),
        })?;
        if index >= n {
            return Err(SplitError::OutOfRange {
                path: path.into(),
                line: k + 1,
                index,
                n,
            });
        }
        if std::mem::replace(&mut in_test[index], true) {
            return Err(SplitError::Repeated {
                path: path.into(),
                line: k + 1,
                index,
            });
        }
    }
    let test: Vec<usize> = (0..n).filter(|&i| in_test[i]).collect();
    let train: Vec<usize> = (0..n).filter(|&i| !in_test[i]).collect();
    if train.is_empty() {
        return Err(SplitError::NoTrainRows { path: path.into() });
    }
    Ok(SplitIndices {
        train,
        test,
        method: format!("test rows from {}", path.display()),
        notes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fraction_rounds_up_and_is_seeded() {
        let a = split(10, TestSize::Fraction(0.25), 42, None).unwrap();
        assert_eq!(a.test.len(), 3);
        assert_eq!(a.train.len(), 7);
        assert_eq!(a, split(10, TestSize::Fraction(0.25), 42, None).unwrap());
        assert_ne!(a.test, split(10, TestSize::Fraction(0.25), 7, None).unwrap().test);
        let mut all: Vec<usize> = a.train.iter().chain(&a.test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn bad_sizes_are_clear_errors() {
        assert_eq!(
            split(10, TestSize::Fraction(1.0), 1, None)
                .unwrap_err()
                .to_string(),
            "test_size must be between 0 and 1 (exclusive) as a fraction, or a row count; got 1"
        );
        assert!(matches!(
            split(10, TestSize::Fraction(0.0), 1, None),
            Err(SplitError::BadFraction(_))
        ));
        assert!(matches!(
            split(10, TestSize::Rows(10), 1, None),
            Err(SplitError::TooManyRows { .. })
        ));
        assert_eq!(split(10, TestSize::Rows(4), 1, None).unwrap().test.len(), 4);
    }

    #[test]
    fn stratified_keeps_proportions_and_handles_singletons() {
        let mut labels = Vec::new();
        labels.extend(std::iter::repeat_n("a".to_string(), 60));
        labels.extend(std::iter::repeat_n("b".to_string(), 30));
        labels.extend(std::iter::repeat_n("c".to_string(), 9));
        labels.push("lonely".to_string());
        let s = split(100, TestSize::Fraction(0.3), 42, Some(&labels)).unwrap();
        let count = |side: &[usize], l: &str| side.iter().filter(|&&i| labels[i] == l).count();
        assert_eq!(count(&s.test, "a"), 18);
        assert_eq!(count(&s.test, "b"), 9);
        assert!((2..=3).contains(&count(&s.test, "c")));
        assert_eq!(count(&s.test, "lonely"), 0);
        assert!(s.notes[0].contains("\"lonely\""), "{:?}", s.notes);
    }

    #[test]
    fn explicit_test_rows_and_their_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rows.txt");
        std::fs::write(&p, "3\n0\n\n5\n").unwrap();
        let s = from_test_rows(&p, 6).unwrap();
        assert_eq!(s.test, [0, 3, 5]);
        assert_eq!(s.train, [1, 2, 4]);
        std::fs::write(&p, "1\nx\n").unwrap();
        assert!(from_test_rows(&p, 6)
            .unwrap_err()
            .to_string()
            .ends_with("rows.txt:2: \"x\" is not a row index"));
        std::fs::write(&p, "9\n").unwrap();
        assert!(from_test_rows(&p, 6)
            .unwrap_err()
            .to_string()
            .contains("row 9 is out of range"));
        std::fs::write(&p, "1\n1\n").unwrap();
        assert!(from_test_rows(&p, 6)
            .unwrap_err()
            .to_string()
            .contains("row 1 is listed twice"));
    }
}
