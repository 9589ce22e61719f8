//! Checking an inventory before training on it.

use super::table::column_names;
use indexmap::IndexMap;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

/// What to check. Every list may be empty.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationRules {
    /// Columns that must exist.
    #[serde(default)]
    pub required_columns: Vec<String>,
    /// Columns that must exist and have no empty cell.
    #[serde(default)]
    pub critical_columns: Vec<String>,
    /// Columns whose non-empty cells must parse as numbers (checked when present).
    #[serde(default)]
    pub numeric_columns: Vec<String>,
    /// Largest tolerated fraction of non-empty numeric cells that do not parse; above it
    /// the report is invalid, at or below it a warning.
    #[serde(default = "default_max_invalid_numeric")]
    pub max_invalid_numeric: f64,
    /// Fewest rows a usable inventory has.
    #[serde(default)]
    pub min_rows: usize,
    /// Target columns. An empty cell is no label: a warning, with counts (the row is left
    /// out of that target's training and evaluation, and still predicted). Classes with a
    /// single row, and targets with a single class, are warnings too.
    #[serde(default)]
    pub target_columns: Vec<String>,
    /// Fewest rows with a label each target needs (fewer is an error).
    #[serde(default = "default_min_labelled_rows")]
    pub min_labelled_rows: usize,
    /// A report with errors is a failure (the pipeline must not train on it).
    #[serde(default = "yes")]
    pub strict: bool,
    /// The column mapping the table was loaded with: messages name the user's column
    /// beside the standard one (`manufacturer (your column "Mfr")`).
    #[serde(default)]
    pub map: super::mapping::ColumnMap,
}

fn yes() -> bool {
    true
}

fn default_max_invalid_numeric() -> f64 {
    0.05
}

fn default_min_labelled_rows() -> usize {
    2
}

/// The rules an empty `with` table gives.
impl Default for ValidationRules {
    fn default() -> Self {
        ValidationRules {
            required_columns: Vec::new(),
            critical_columns: Vec::new(),
            numeric_columns: Vec::new(),
            max_invalid_numeric: default_max_invalid_numeric(),
            min_rows: 0,
            target_columns: Vec::new(),
            min_labelled_rows: default_min_labelled_rows(),
            strict: yes(),
            map: Default::default(),
        }
    }
}

/// How many lines a message names.
const FIRST_LINES: usize = 5;

/// The CSV line of a data row: the header is line 1 and a record holds one line (a
/// spreadsheet's row number).
fn line_of(row: usize) -> usize {
    row + 2
}

/// "lines 4, 9, 17, …" for the first offending rows.
fn lines_text(lines: &[usize], total: usize) -> String {
    let listed: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    format!(
        "line{} {}{}",
        if total == 1 { "" } else { "s" },
        listed.join(", "),
        if total > lines.len() { ", …" } else { "" }
    )
}

/// Labels of one target column.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct TargetLabels {
    /// Rows with a label.
    pub labelled: usize,
    /// Rows whose cell is empty: left out of this target's training and evaluation.
    pub unlabelled: usize,
    /// Distinct labels.
    pub classes: usize,
    /// CSV lines of the first rows without a label.
    pub first_unlabelled: Vec<usize>,
}

/// One finding.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Issue {
    pub check: String,
    pub message: String,
}

/// Numeric column findings.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct NumericCheck {
    pub empty: usize,
    pub invalid: usize,
    /// (CSV line, value) of the first invalid cells.
    pub first_invalid: Vec<(usize, String)>,
}

/// The result of validation; `valid` is false when any error was found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ValidationReport {
    pub valid: bool,
    pub rows: usize,
    pub columns: Vec<String>,
    pub errors: Vec<Issue>,
    pub warnings: Vec<Issue>,
    pub missing_columns: Vec<String>,
    /// Empty cells per critical column.
    pub empty_cells: IndexMap<String, usize>,
    /// Per target column: labelled and unlabelled rows, classes.
    #[serde(default)]
    pub targets: IndexMap<String, TargetLabels>,
    pub numeric: IndexMap<String, NumericCheck>,
    pub duplicate_rows: usize,
    /// Per target, classes with a single row.
    pub singleton_classes: IndexMap<String, Vec<String>>,
}

impl ValidationRules {
    /// The rules' own sense: `max_invalid_numeric` is a fraction in [0, 1] (`nan` would
    /// compare false with every fraction and never fail validation; `inf` likewise).
    pub fn check(&self) -> Result<(), String> {
        let f = self.max_invalid_numeric;
        if !(0.0..=1.0).contains(&f) {
            return Err(format!(
                "`max_invalid_numeric` = {f} is not a fraction: give a number from 0 to 1 \
                 (0.05 tolerates 5% of filled numeric cells that are not usable numbers)"
            ));
        }
        Ok(())
    }
}

/// Strings of a column, or `None` when the column is absent or not text.
fn strings<'a>(frame: &'a DataFrame, name: &str) -> Option<&'a StringChunked> {
    frame.column(name).ok()?.str().ok()
}

/// Validate `frame` against `rules`. Never fails: problems are in the report.
pub fn validate(frame: &DataFrame, rules: &ValidationRules) -> ValidationReport {
    let columns = column_names(frame);
    let rows = frame.height();
    let map = &rules.map;
    let name = |c: &str| {
        format!(
            "`{c}`{}",
            map.input_of(c)
                .filter(|i| *i != c)
                .map(|i| format!(" (your column \"{i}\")"))
                .unwrap_or_default()
        )
    };
    let mut errors = Vec::new();
    let mut warnings = Vec::new();

    let mut wanted: Vec<&String> = rules.required_columns.iter().collect();
    // Numeric columns are checked where present: a feature step may fall back to another.
    for c in rules.critical_columns.iter().chain(&rules.target_columns) {
        if !wanted.contains(&c) {
            wanted.push(c);
        }
    }
    let missing_columns: Vec<String> = wanted
        .into_iter()
        .filter(|c| !columns.contains(c))
        .cloned()
        .collect();
    if !missing_columns.is_empty() {
        errors.push(Issue {
            check: "required_columns".into(),
            message: format!(
                "missing column{} {} (the file has: {}); a column of yours that holds it is mapped with {}",
                if missing_columns.len() == 1 { "" } else { "s" },
                missing_columns
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                map.labels(&columns).join(", "),
                super::mapping::how_to_map(&missing_columns[0])
            ),
        });
    }

    if rows < rules.min_rows {
        errors.push(Issue {
            check: "min_rows".into(),
            message: format!("{rows} rows; at least {} are needed", rules.min_rows),
        });
    }

    let mut empty_cells = IndexMap::new();
    for c in &rules.critical_columns {
        let Some(values) = strings(frame, c) else { continue };
        let empty_rows: Vec<usize> = values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_none_or(|s| s.trim().is_empty()))
            .map(|(row, _)| row)
            .collect();
        let empty = empty_rows.len();
        empty_cells.insert(c.clone(), empty);
        if empty > 0 {
            let lines: Vec<usize> = empty_rows.iter().take(FIRST_LINES).map(|&r| line_of(r)).collect();
            errors.push(Issue {
                check: "critical_columns".into(),
                message: format!(
                    "critical column {} has {empty} empty cell{} ({})",
                    name(c),
                    plural(empty),
                    lines_text(&lines, empty)
                ),
            });
        }
    }

    let mut numeric = IndexMap::new();
    for c in &rules.numeric_columns {
        let Some(values) = strings(frame, c) else { continue };
        let mut check = NumericCheck::default();
        let mut filled = 0usize;
        for (row, v) in values.iter().enumerate() {
            let v = v.unwrap_or("").trim();
            if v.is_empty() {
                check.empty += 1;
                continue;
            }
            filled += 1;
            // `inf`, `NaN` and values past the scaler's bound parse but are not usable:
            // feature engineering fills them as it fills text.
            if !v.parse::<f64>().is_ok_and(super::scale::usable) {
                check.invalid += 1;
                if check.first_invalid.len() < 5 {
                    check.first_invalid.push((line_of(row), v.to_string()));
                }
            }
        }
        if check.invalid > 0 {
            let examples: Vec<String> = check
                .first_invalid
                .iter()
                .map(|(line, v)| format!("line {line}: \"{v}\""))
                .collect();
            let fraction = check.invalid as f64 / filled.max(1) as f64;
            let issue = Issue {
                check: "numeric_columns".into(),
                message: format!(
                    "numeric column {}: {} of {filled} filled cells are not usable numbers (not a number, \
                     infinite, or beyond ±{:e}) ({:.1}%; first: {})",
                    name(c),
                    check.invalid,
                    super::scale::MAX_ABS,
                    100.0 * fraction,
                    examples.join(", ")
                ),
            };
            if fraction > rules.max_invalid_numeric {
                errors.push(issue);
            } else {
                warnings.push(issue);
            }
        }
        numeric.insert(c.clone(), check);
    }

    let (duplicate_rows, first_duplicates) = count_duplicates(frame);
    if duplicate_rows > 0 {
        warnings.push(Issue {
            check: "duplicates".into(),
            message: format!(
                "{duplicate_rows} row{} duplicate an earlier row ({})",
                plural(duplicate_rows),
                lines_text(&first_duplicates, duplicate_rows)
            ),
        });
    }

    let mut singleton_classes = IndexMap::new();
    let mut targets = IndexMap::new();
    for t in &rules.target_columns {
        let Some(values) = strings(frame, t) else { continue };
        let mut counts: IndexMap<&str, usize> = IndexMap::new();
        let mut labels = TargetLabels::default();
        for (row, v) in values.iter().enumerate() {
            match v.filter(|v| !super::model::is_unlabelled(v)).map(str::trim) {
                Some(v) => *counts.entry(v).or_default() += 1,
                None => {
                    labels.unlabelled += 1;
                    if labels.first_unlabelled.len() < FIRST_LINES {
                        labels.first_unlabelled.push(line_of(row));
                    }
                }
            }
        }
        labels.labelled = rows - labels.unlabelled;
        labels.classes = counts.len();
        if labels.unlabelled > 0 {
            warnings.push(Issue {
                check: "target_labels".into(),
                message: format!(
                    "target {}: {} of {rows} rows ({:.1}%) have no label ({}); they are left out of \
                     this target's training and evaluation, and still predicted",
                    name(t),
                    labels.unlabelled,
                    100.0 * labels.unlabelled as f64 / rows.max(1) as f64,
                    lines_text(&labels.first_unlabelled, labels.unlabelled)
                ),
            });
        }
        if labels.labelled < rules.min_labelled_rows {
            errors.push(Issue {
                check: "min_labelled_rows".into(),
                message: format!(
                    "target {}: {} labelled row{}; at least {} are needed (min_labelled_rows)",
                    name(t),
                    labels.labelled,
                    plural(labels.labelled),
                    rules.min_labelled_rows
                ),
            });
        } else if labels.classes == 1 {
            warnings.push(Issue {
                check: "target_classes".into(),
                message: format!(
                    "target {} has a single class (\"{}\"): a model trained on it predicts that class \
                     for every row",
                    name(t),
                    counts.keys().next().copied().unwrap_or_default()
                ),
            });
        }
        let mut single: Vec<String> = counts
            .into_iter()
            .filter(|(_, n)| *n < 2)
            .map(|(c, _)| c.to_string())
            .collect();
        single.sort();
        if !single.is_empty() && labels.classes > 1 {
            warnings.push(Issue {
                check: "target_classes".into(),
                message: format!(
                    "target {}: {} class{} with a single row cannot be on both sides of a split: {}",
                    name(t),
                    single.len(),
                    if single.len() == 1 { "" } else { "es" },
                    single
                        .iter()
                        .take(10)
                        .map(|c| format!("\"{c}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
            singleton_classes.insert(t.clone(), single);
        }
        targets.insert(t.clone(), labels);
    }

    ValidationReport {
        valid: errors.is_empty(),
        rows,
        columns,
        errors,
        warnings,
        missing_columns,
        empty_cells,
        targets,
        numeric,
        duplicate_rows,
        singleton_classes,
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Rows identical in every column to an earlier row: how many, and the CSV lines of
/// the first few.
fn count_duplicates(frame: &DataFrame) -> (usize, Vec<usize>) {
    let columns: Vec<&StringChunked> = frame.columns().iter().filter_map(|c| c.str().ok()).collect();
    if columns.is_empty() {
        return (0, Vec::new());
    }
    let iters: Vec<Vec<Option<&str>>> = columns.iter().map(|c| c.iter().collect()).collect();
    let mut seen = std::collections::HashSet::with_capacity(frame.height());
    let mut dups = 0;
    let mut first = Vec::new();
    let mut key = String::new();
    for row in 0..frame.height() {
        key.clear();
        for col in &iters {
            key.push_str(col[row].unwrap_or(""));
            key.push('\u{1F}');
        }
        if !seen.insert(key.clone()) {
            dups += 1;
            if first.len() < FIRST_LINES {
                first.push(line_of(row));
            }
        }
    }
    (dups, first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::table::parse_csv;
    use std::path::Path;

    fn frame(csv: &str) -> DataFrame {
        parse_csv(csv.as_bytes(), Path::new("t.csv"), &IndexMap::new())
            .unwrap()
            .frame
    }

    #[test]
    fn reports_every_missing_column_once_with_what_exists() {
        let f = frame("a,b\n1,2\n");
        let rules = ValidationRules {
            required_columns: vec!["a".into(), "x".into()],
            critical_columns: vec!["y".into()],
            numeric_columns: vec![],
            max_invalid_numeric: 0.0,
            min_rows: 0,
            target_columns: vec!["x".into()],
            min_labelled_rows: 2,
            strict: true,
            ..Default::default()
        };
        let r = validate(&f, &rules);
        assert!(!r.valid);
        assert_eq!(r.missing_columns, ["x", "y"]);
        assert_eq!(r.errors.len(), 1);
        assert_eq!(
            r.errors[0].message,
            "missing columns `x`, `y` (the file has: a, b); a column of yours that holds it is mapped with --map x=COLUMN (`--set map.x=COLUMN` under `dag run`)"
        );
    }

    #[test]
    fn empty_critical_cells_numeric_duplicates_and_singletons() {
        let f = frame("cat,life\nAHU,20\nAHU,20\n,abc\nPump,15\nFan,\n");
        let rules = ValidationRules {
            required_columns: vec![],
            critical_columns: vec!["cat".into()],
            numeric_columns: vec!["life".into()],
            max_invalid_numeric: 0.5,
            min_rows: 10,
            target_columns: vec!["cat".into()],
            min_labelled_rows: 2,
            strict: true,
            ..Default::default()
        };
        let r = validate(&f, &rules);
        assert_eq!(r.empty_cells["cat"], 1);
        assert!(
            r.errors[1].message.ends_with("1 empty cell (line 4)"),
            "{:?}",
            r.errors
        );
        assert_eq!(r.numeric["life"].invalid, 1);
        assert_eq!(r.numeric["life"].empty, 1);
        assert_eq!(r.numeric["life"].first_invalid, [(4, "abc".to_string())]);
        assert_eq!(r.duplicate_rows, 1);
        assert_eq!(r.singleton_classes["cat"], ["Fan", "Pump"], "no class \"\"");
        let checks: Vec<&str> = r.errors.iter().map(|i| i.check.as_str()).collect();
        assert_eq!(checks, ["min_rows", "critical_columns"]);
        // 1 of 4 filled cells invalid: 25% ≤ 50% → a warning.
        assert!(r.warnings.iter().any(|w| w.check == "numeric_columns"));
    }

    #[test]
    fn empty_target_cells_are_a_warning_with_counts_and_lines() {
        let f = frame("desc,cat,sys\na,AHU,X\nb,,X\nc,Pump,X\nd, ,X\ne,AHU,X\n");
        let rules = ValidationRules {
            required_columns: vec![],
            critical_columns: vec![],
            numeric_columns: vec![],
            max_invalid_numeric: 0.0,
            min_rows: 0,
            target_columns: vec!["cat".into(), "sys".into()],
            min_labelled_rows: 3,
            strict: true,
            ..Default::default()
        };
        let r = validate(&f, &rules);
        assert!(r.valid, "{:?}", r.errors);
        let cat = &r.targets["cat"];
        assert_eq!((cat.labelled, cat.unlabelled, cat.classes), (3, 2, 2));
        assert_eq!(cat.first_unlabelled, [3, 5]);
        let w: Vec<&str> = r.warnings.iter().map(|w| w.message.as_str()).collect();
        assert!(
            w.contains(
                &"target `cat`: 2 of 5 rows (40.0%) have no label (lines 3, 5); they are left out of \
                  this target's training and evaluation, and still predicted"
            ),
            "{w:?}"
        );
        assert!(
            w.iter()
                .any(|m| m.starts_with("target `sys` has a single class (\"X\")")),
            "{w:?}"
        );
        assert_eq!(r.singleton_classes["cat"], ["Pump"]);

        // Too few labelled rows is what breaks training: an error.
        let r = validate(
            &f,
            &ValidationRules {
                min_labelled_rows: 4,
                ..rules
            },
        );
        assert!(!r.valid);
        assert_eq!(
            r.errors[0].message,
            "target `cat`: 3 labelled rows; at least 4 are needed (min_labelled_rows)"
        );
    }
}
