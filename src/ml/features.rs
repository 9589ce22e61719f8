//! Feature engineering driven by a feature configuration (`dags/features.toml`): the
//! model's text, its numeric inputs, and the target columns, derived from an inventory.
//!
//! The same configuration is stored in the model file, so prediction engineers new
//! inventories exactly as training did (without the target derivations).

use super::table::{column_names, no_column, TableError};
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Reading or applying a feature configuration failed.
#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    #[error("cannot read feature config {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("feature config: {0}")]
    Invalid(String),
    #[error("text combination `{name}` needs column `{column}`, which the table does not have (columns: {available}); list it under `optional` if it may be absent, or map a column of yours with {}", super::mapping::how_to_map(.column))]
    MissingTextColumn {
        name: String,
        column: String,
        available: String,
    },
    #[error("{what} `{name}` needs column `{column}`, which the table does not have (columns: {available}); a column of yours that holds it is mapped with {}", super::mapping::how_to_map(.column))]
    MissingColumn {
        what: &'static str,
        name: String,
        column: String,
        available: String,
    },
    #[error(transparent)]
    Table(#[from] TableError),
    #[error("polars: {0}")]
    Polars(#[from] PolarsError),
}

/// Columns joined into one text column.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TextCombination {
    pub name: String,
    pub columns: Vec<String>,
    #[serde(default = "space")]
    pub separator: String,
    /// Columns that may be absent from an inventory (treated as empty).
    #[serde(default)]
    pub optional: Vec<String>,
}

fn space() -> String {
    " ".into()
}

/// A numeric input: the first present source column, parsed, invalid or empty cells filled.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NumericColumn {
    pub name: String,
    /// Candidate source columns, in order of preference.
    pub sources: Vec<String>,
    #[serde(default)]
    pub fill: f64,
    /// When no source column exists: fill the whole column (true) or fail (false).
    #[serde(default = "yes")]
    pub fill_missing_column: bool,
}

fn yes() -> bool {
    true
}

/// The name that stands for the compiled-in config instead of a file.
pub const BUILTIN_NAME: &str = "builtin";

/// `dags/features.toml` as compiled into this build (`config = "builtin"`).
pub const BUILTIN: &str = include_str!("../../dags/features.toml");

/// A column made by joining parent columns (`mcaa_system_category-category_name`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Hierarchy {
    pub name: String,
    pub parents: Vec<String>,
    #[serde(default = "dash")]
    pub separator: String,
}

fn dash() -> String {
    "-".into()
}

/// A plain copy of a column under another name.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ColumnMapping {
    pub source: String,
    pub target: String,
}

/// How a classification code is derived.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SystemMapping {
    /// Copy the code, normalised: trimmed, inner spaces collapsed, upper case.
    Direct,
}

/// A classification-system column (Uniformat, MasterFormat, OmniClass...).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClassificationSystem {
    pub name: String,
    pub source: String,
    #[serde(default = "direct")]
    pub mapping: SystemMapping,
}

fn direct() -> SystemMapping {
    SystemMapping::Direct
}

/// The whole feature configuration.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FeatureConfig {
    #[serde(default)]
    pub text_combinations: Vec<TextCombination>,
    #[serde(default)]
    pub numeric_columns: Vec<NumericColumn>,
    #[serde(default)]
    pub hierarchies: Vec<Hierarchy>,
    #[serde(default)]
    pub column_mappings: Vec<ColumnMapping>,
    #[serde(default)]
    pub classification_systems: Vec<ClassificationSystem>,
    /// The text combination the model reads.
    pub model_text: String,
    /// The numeric columns the model reads.
    #[serde(default)]
    pub model_numeric: Vec<String>,
    /// Columns the model predicts.
    pub targets: Vec<String>,
}

/// Training derives the targets; prediction has none to derive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Train,
    Predict,
}

/// Counts from engineering, for the log and the report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EngineeringSummary {
    pub rows: usize,
    /// Numeric column → (source used, cells filled because empty or invalid).
    pub numeric: Vec<(String, Option<String>, usize)>,
    pub optional_text_columns_absent: Vec<String>,
}

impl FeatureConfig {
    /// Read a feature config file (a regular file within [`crate::fsx::FEATURES`]).
    pub fn load(path: &Path) -> Result<Self, FeatureError> {
        let text =
            crate::fsx::read_to_string(path, crate::fsx::FEATURES).map_err(|e| FeatureError::Read {
                path: path.into(),
                source: e.into_io(),
            })?;
        Self::parse(&text, path)
    }

    /// A feature config file, or (`"builtin"`) the one compiled into this build.
    pub fn open(path: &Path) -> Result<Self, FeatureError> {
        if path == Path::new(BUILTIN_NAME) {
            Self::parse(BUILTIN, Path::new("<built-in features.toml>"))
        } else {
            Self::load(path)
        }
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self, FeatureError> {
        let config: FeatureConfig = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map_or((1, 1), |s| crate::textpos::line_column(text, s.start));
            FeatureError::Parse {
                path: path.into(),
                line,
                column,
                message: e.message().trim().to_string(),
            }
        })?;
        config.check()?;
        Ok(config)
    }

    /// Internal consistency: names defined once, model inputs defined, no empty lists.
    pub fn check(&self) -> Result<(), FeatureError> {
        if self.targets.is_empty() {
            return Err(FeatureError::Invalid("`targets` is empty".into()));
        }
        if !self.text_combinations.iter().any(|t| t.name == self.model_text) {
            return Err(FeatureError::Invalid(format!(
                "`model_text = \"{}\"` names no text combination",
                self.model_text
            )));
        }
        for n in &self.model_numeric {
            if !self.numeric_columns.iter().any(|c| &c.name == n) {
                return Err(FeatureError::Invalid(format!(
                    "`model_numeric` names `{n}`, which no numeric column defines"
                )));
            }
        }
        for t in &self.text_combinations {
            if t.columns.is_empty() {
                return Err(FeatureError::Invalid(format!(
                    "text combination `{}` has no columns",
                    t.name
                )));
            }
        }
        for h in &self.hierarchies {
            if h.parents.is_empty() {
                return Err(FeatureError::Invalid(format!(
                    "hierarchy `{}` has no parents",
                    h.name
                )));
            }
        }
        Ok(())
    }

    /// Columns a target is derived from (itself when not derived).
    fn target_sources(&self, target: &str) -> Vec<String> {
        if let Some(h) = self.hierarchies.iter().find(|h| h.name == target) {
            return h.parents.clone();
        }
        if let Some(m) = self.column_mappings.iter().find(|m| m.target == target) {
            return vec![m.source.clone()];
        }
        if let Some(s) = self.classification_systems.iter().find(|s| s.name == target) {
            return vec![s.source.clone()];
        }
        vec![target.to_string()]
    }

    /// Problems that are not errors: label leakage.
    pub fn lint(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if let Some(text) = self.text_combinations.iter().find(|t| t.name == self.model_text) {
            for target in &self.targets {
                let mut sources = self.target_sources(target);
                sources.push(target.clone());
                for c in &text.columns {
                    if sources.contains(c) {
                        warnings.push(format!(
                            "label leakage: the model text `{}` includes `{c}`, which target `{target}` is derived from",
                            text.name
                        ));
                    }
                }
            }
        }
        // Targets derived identically are not a problem (one forest answers both, and
        // training logs it), so they are not warned about on every command.
        warnings
    }

    /// A comparable description of how a derived target is made.
    pub fn derivation(&self, target: &str) -> Option<String> {
        if let Some(h) = self.hierarchies.iter().find(|h| h.name == target) {
            return Some(format!("hierarchy {:?} joined by {:?}", h.parents, h.separator));
        }
        if let Some(m) = self.column_mappings.iter().find(|m| m.target == target) {
            return Some(format!("copy of {}", m.source));
        }
        if let Some(s) = self.classification_systems.iter().find(|s| s.name == target) {
            return Some(format!("{:?} code of {}", s.mapping, s.source));
        }
        None
    }

    /// Add the configured columns to `frame`.
    pub fn apply(
        &self,
        frame: &DataFrame,
        mode: Mode,
    ) -> Result<(DataFrame, EngineeringSummary), FeatureError> {
        let mut out = frame.clone();
        let mut summary = EngineeringSummary {
            rows: frame.height(),
            ..Default::default()
        };
        let is_target = |name: &str| self.targets.iter().any(|t| t == name);
        let skip = |name: &str| mode == Mode::Predict && is_target(name);

        for m in &self.column_mappings {
            if skip(&m.target) {
                continue;
            }
            let values = text_of(&out, &m.source, "column mapping", &m.target)?;
            out.with_column(Column::new(m.target.as_str().into(), values))?;
        }
        for s in &self.classification_systems {
            if skip(&s.name) {
                continue;
            }
            let values = text_of(&out, &s.source, "classification system", &s.name)?;
            let normalised: Vec<String> = values.iter().map(|v| normalise_code(v)).collect();
            out.with_column(Column::new(s.name.as_str().into(), normalised))?;
        }
        for h in &self.hierarchies {
            if skip(&h.name) {
                continue;
            }
            let parents: Vec<Vec<String>> = h
                .parents
                .iter()
                .map(|p| text_of(&out, p, "hierarchy", &h.name))
                .collect::<Result<_, _>>()?;
            // A label derived from a missing label is missing (not "HVAC-").
            let values: Vec<String> = join_rows(&parents, &h.separator, out.height())
                .into_iter()
                .enumerate()
                .map(|(row, v)| {
                    if parents.iter().any(|p| super::model::is_unlabelled(&p[row])) {
                        String::new()
                    } else {
                        v
                    }
                })
                .collect();
            out.with_column(Column::new(h.name.as_str().into(), values))?;
        }
        for t in &self.text_combinations {
            let present = column_names(&out);
            let mut parts: Vec<Vec<String>> = Vec::new();
            for c in &t.columns {
                if present.contains(c) {
                    parts.push(super::table::text_column(&out, c)?);
                } else if t.optional.contains(c) {
                    summary.optional_text_columns_absent.push(c.clone());
                    parts.push(vec![String::new(); out.height()]);
                } else {
                    return Err(FeatureError::MissingTextColumn {
                        name: t.name.clone(),
                        column: c.clone(),
                        available: present.join(", "),
                    });
                }
            }
            let values = join_rows(&parts, &t.separator, out.height());
            out.with_column(Column::new(t.name.as_str().into(), values))?;
        }
        for n in &self.numeric_columns {
            let present = column_names(&out);
            let source = n.sources.iter().find(|s| present.contains(s));
            let (values, filled) = match source {
                Some(s) => {
                    let text = super::table::text_column(&out, s)?;
                    let mut filled = 0;
                    let values: Vec<f64> = text
                        .iter()
                        .map(|v| {
                            v.trim()
                                .parse::<f64>()
                                .ok()
                                .filter(|&x| super::scale::usable(x))
                                .unwrap_or_else(|| {
                                    filled += 1;
                                    n.fill
                                })
                        })
                        .collect();
                    (values, filled)
                }
                None if n.fill_missing_column => (vec![n.fill; out.height()], out.height()),
                None => {
                    return Err(FeatureError::MissingColumn {
                        what: "numeric column",
                        name: n.name.clone(),
                        column: n.sources.join(" or "),
                        available: present.join(", "),
                    })
                }
            };
            summary.numeric.push((n.name.clone(), source.cloned(), filled));
            out.with_column(Column::new(n.name.as_str().into(), values))?;
        }
        Ok((out, summary))
    }
}

/// The text of a column needed by a derivation, or an error naming the derivation.
fn text_of(
    frame: &DataFrame,
    column: &str,
    what: &'static str,
    name: &str,
) -> Result<Vec<String>, FeatureError> {
    if frame.column(column).is_err() {
        return Err(FeatureError::MissingColumn {
            what,
            name: name.into(),
            column: column.into(),
            available: match no_column(frame, column) {
                TableError::NoColumn { available, .. } => available,
                _ => String::new(),
            },
        });
    }
    Ok(super::table::text_column(frame, column)?)
}

/// Row by row, the columns' values joined by `separator`.
fn join_rows(columns: &[Vec<String>], separator: &str, rows: usize) -> Vec<String> {
    (0..rows)
        .map(|row| {
            columns
                .iter()
                .map(|c| c[row].as_str())
                .collect::<Vec<_>>()
                .join(separator)
        })
        .collect()
}

/// ` d3040 ` → `D3040`; `23  21 23` → `23 21 23`.
pub fn normalise_code(code: &str) -> String {
    code.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::table::{parse_csv, text_column};
    use indexmap::IndexMap;

    const CONFIG: &str = r#"
model_text = "combined_text"
model_numeric = ["service_life"]
targets = ["category_name", "uniformat_code", "Equipment_Type", "System_Subtype"]

[[text_combinations]]
name = "combined_text"
columns = ["description", "manufacturer", "building_name"]
optional = ["building_name"]

[[numeric_columns]]
name = "service_life"
sources = ["service_life", "condition_score"]
fill = 0.0

[[hierarchies]]
name = "Equipment_Type"
parents = ["mcaa_system_category", "category_name"]

[[hierarchies]]
name = "System_Subtype"
parents = ["mcaa_system_category", "category_name"]

[[classification_systems]]
name = "uniformat_code"
source = "uniformat_code"
"#;

    fn frame(csv: &str) -> DataFrame {
        parse_csv(csv.as_bytes(), Path::new("t.csv"), &IndexMap::new())
            .unwrap()
            .frame
    }

    #[test]
    fn engineers_text_numeric_hierarchies_and_codes() {
        let cfg = FeatureConfig::parse(CONFIG, Path::new("f.toml")).unwrap();
        let f = frame(
            "description,manufacturer,category_name,mcaa_system_category,uniformat_code,service_life\n\
             AHU 10k cfm,Trane,Air Handler,HVAC, d3040 ,20\n\
             pump,,Pump,Plumbing,D2020,N/A\n",
        );
        let (out, summary) = cfg.apply(&f, Mode::Train).unwrap();
        assert_eq!(
            text_column(&out, "combined_text").unwrap(),
            ["AHU 10k cfm Trane ", "pump  "]
        );
        assert_eq!(
            text_column(&out, "Equipment_Type").unwrap(),
            ["HVAC-Air Handler", "Plumbing-Pump"]
        );
        assert_eq!(text_column(&out, "uniformat_code").unwrap(), ["D3040", "D2020"]);
        let life: Vec<Option<f64>> = out
            .column("service_life")
            .unwrap()
            .f64()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(life, [Some(20.0), Some(0.0)]);
        assert_eq!(
            summary.numeric,
            [("service_life".into(), Some("service_life".into()), 1)]
        );
        assert_eq!(summary.optional_text_columns_absent, ["building_name"]);
    }

    #[test]
    fn missing_required_text_column_is_an_error_naming_it() {
        let cfg = FeatureConfig::parse(CONFIG, Path::new("f.toml")).unwrap();
        let f = frame("manufacturer,category_name,mcaa_system_category,uniformat_code\nA,B,C,D\n");
        let e = cfg.apply(&f, Mode::Train).unwrap_err().to_string();
        assert!(
            e.starts_with("text combination `combined_text` needs column `description`"),
            "{e}"
        );
        assert!(e.contains("(columns: manufacturer, category_name"), "{e}");
    }

    #[test]
    fn numeric_falls_back_to_the_next_source_and_prediction_skips_targets() {
        let cfg = FeatureConfig::parse(CONFIG, Path::new("f.toml")).unwrap();
        let f = frame("description,manufacturer,condition_score\nx,y,3.5\n");
        let (out, summary) = cfg.apply(&f, Mode::Predict).unwrap();
        let life: Vec<Option<f64>> = out
            .column("service_life")
            .unwrap()
            .f64()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(life, [Some(3.5)]);
        assert_eq!(summary.numeric[0].1.as_deref(), Some("condition_score"));
        assert!(
            out.column("Equipment_Type").is_err(),
            "targets are not derived for prediction"
        );
    }

    #[test]
    fn lint_finds_leakage_but_not_identical_targets() {
        let leaky = CONFIG.replace(
            r#"columns = ["description", "manufacturer", "building_name"]"#,
            r#"columns = ["description", "category_name"]"#,
        );
        let cfg = FeatureConfig::parse(&leaky, Path::new("f.toml")).unwrap();
        let warnings = cfg.lint();
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("label leakage") && w.contains("`category_name`")),
            "{warnings:?}"
        );
        assert!(
            warnings.iter().all(|w| w.contains("label leakage")),
            "{warnings:?}"
        );
        // The shipped pair is derived the same way: one forest, no warning.
        assert_eq!(cfg.derivation("Equipment_Type"), cfg.derivation("System_Subtype"));
        assert!(FeatureConfig::parse(CONFIG, Path::new("f.toml"))
            .unwrap()
            .lint()
            .is_empty());
    }

    #[test]
    fn config_errors_point_at_the_line() {
        let e = FeatureConfig::parse(
            "model_text = \"x\"\ntargets = [\"a\"]\nbogus = 1\n",
            Path::new("f.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("f.toml:3:1: unknown field `bogus`"), "{e}");
        let e = FeatureConfig::parse("model_text = \"x\"\ntargets = [\"a\"]\n", Path::new("f.toml"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "feature config: `model_text = \"x\"` names no text combination"
        );
    }
}
