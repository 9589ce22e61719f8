//! The column mapping: which column of the user's inventory holds each column the model
//! reads or is trained on (`manufacturer` ← `Mfr`). One parser and one set of checks for
//! every entry point: `--map MODEL_COLUMN=INPUT_COLUMN`, `--map-file FILE` (TOML,
//! `model_column = "input column"`), the `map` param of the shipped pipelines and the
//! mapping a model records from its training data.
//!
//! Training and evaluation apply it at load ([`ColumnMap::apply`]: the input column is
//! renamed), so validation, features, plots and metrics see the standard names;
//! prediction copies ([`ColumnMap::copy_into`]), so its output keeps the user's names.

use indexmap::IndexMap;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How to map a missing column, for messages: the CLI flag and the pipeline param.
pub fn how_to_map(model_column: &str) -> String {
    format!("--map {model_column}=COLUMN (`--set map.{model_column}=COLUMN` under `dag run`)")
}

#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("--map {0}: expected MODEL_COLUMN=INPUT_COLUMN, e.g. --map manufacturer=Mfr")]
    Syntax(String),
    #[error(
        "the mapping `{model_column}={input_column}` has an empty {which} column name: a mapping names a model \
         column and an input column, e.g. manufacturer=Mfr"
    )]
    Empty {
        model_column: String,
        input_column: String,
        which: &'static str,
    },
    #[error("`{model_column}` is mapped twice{source_}: from \"{first}\" and from \"{second}\"")]
    DuplicateModelColumn {
        model_column: String,
        first: String,
        second: String,
        source_: String,
    },
    #[error(
        "your column \"{input_column}\" is mapped to both `{first}` and `{second}`: one input column stands for \
         one model column"
    )]
    DuplicateInputColumn {
        input_column: String,
        first: String,
        second: String,
    },
    #[error(
        "the mapping {model_column}={input_column} names `{model_column}`, which is not a column the model reads \
         or is trained on{suggestion}; those are {known}"
    )]
    UnknownModelColumn {
        model_column: String,
        input_column: String,
        suggestion: String,
        known: String,
    },
    #[error(
        "the mapping {model_column}={input_column} names no input column \"{input_column}\" (columns present: \
         {present})"
    )]
    NoInputColumn {
        model_column: String,
        input_column: String,
        present: String,
    },
    #[error("cannot read mapping file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "{path}: `{key}` must be a string, the name of your column (`{key} = \"Your Column\"`); the file maps \
         model columns to input columns"
    )]
    NotAString { path: PathBuf, key: String },
    #[error("polars: {0}")]
    Polars(#[from] PolarsError),
}

/// Model column → input column, in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ColumnMap(pub IndexMap<String, String>);

impl ColumnMap {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }

    /// The input column that holds `model_column`, if mapped.
    pub fn input_of(&self, model_column: &str) -> Option<&str> {
        self.0.get(model_column).map(String::as_str)
    }

    /// `manufacturer (your column "Mfr")`, or plainly `manufacturer` when not mapped.
    pub fn label(&self, model_column: &str) -> String {
        match self.input_of(model_column) {
            Some(input) if input != model_column => format!("{model_column} (your column \"{input}\")"),
            _ => model_column.to_string(),
        }
    }

    /// Parse repeated `--map MODEL_COLUMN=INPUT_COLUMN` arguments (names trimmed).
    pub fn from_args(args: &[String]) -> Result<Self, MappingError> {
        let mut map = ColumnMap::default();
        for a in args {
            let (m, i) = a.split_once('=').ok_or_else(|| MappingError::Syntax(a.clone()))?;
            map.insert(m.trim(), i.trim(), " by --map")?;
        }
        map.check()?;
        Ok(map)
    }

    /// Read a mapping file: TOML, `model_column = "input column"` per line.
    pub fn from_file(path: &Path) -> Result<Self, MappingError> {
        let text =
            crate::fsx::read_to_string(path, crate::fsx::FEATURES).map_err(|e| MappingError::Read {
                path: path.into(),
                reason: e.reason(),
            })?;
        Self::parse_toml(&text, path)
    }

    pub fn parse_toml(text: &str, path: &Path) -> Result<Self, MappingError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map_or((1, 1), |s| crate::textpos::line_column(text, s.start));
            MappingError::Parse {
                path: path.into(),
                line,
                column,
                message: e.message().to_string(),
            }
        })?;
        let mut map = ColumnMap::default();
        for (k, v) in table {
            let v = v.as_str().ok_or_else(|| MappingError::NotAString {
                path: path.into(),
                key: k.clone(),
            })?;
            map.insert(k.trim(), v.trim(), "")?;
        }
        map.check()?;
        Ok(map)
    }

    /// The mapping file's entries, then the `--map` arguments (an argument replaces the
    /// file's entry for the same model column).
    pub fn resolve(file: Option<&Path>, args: &[String]) -> Result<Self, MappingError> {
        let mut map = match file {
            Some(f) => Self::from_file(f)?,
            None => ColumnMap::default(),
        };
        for (m, i) in Self::from_args(args)?.0 {
            map.0.insert(m, i);
        }
        map.check()?;
        Ok(map)
    }

    fn insert(&mut self, model_column: &str, input_column: &str, source: &str) -> Result<(), MappingError> {
        if let Some(first) = self.0.get(model_column) {
            return Err(MappingError::DuplicateModelColumn {
                model_column: model_column.into(),
                first: first.clone(),
                second: input_column.into(),
                source_: source.into(),
            });
        }
        self.0.insert(model_column.into(), input_column.into());
        Ok(())
    }

    /// No empty names; no input column standing for two model columns. Every way of
    /// making a mapping ends here (op configs call it when they are built).
    pub fn check(&self) -> Result<(), MappingError> {
        let mut seen: IndexMap<&str, &str> = IndexMap::new();
        for (m, i) in &self.0 {
            for (which, name) in [("model", m), ("input", i)] {
                if name.trim().is_empty() {
                    return Err(MappingError::Empty {
                        model_column: m.clone(),
                        input_column: i.clone(),
                        which,
                    });
                }
            }
            if let Some(first) = seen.insert(i.as_str(), m.as_str()) {
                return Err(MappingError::DuplicateInputColumn {
                    input_column: i.clone(),
                    first: first.into(),
                    second: m.clone(),
                });
            }
        }
        Ok(())
    }

    /// Every model column must be one of `known` (the columns a feature config or a
    /// model reads): a typo such as `manufacturr` is refused, not silently ignored.
    pub fn check_known(&self, known: &[String]) -> Result<(), MappingError> {
        for (m, i) in &self.0 {
            if !known.contains(m) {
                return Err(MappingError::UnknownModelColumn {
                    model_column: m.clone(),
                    input_column: i.clone(),
                    suggestion: crate::suggest::did_you_mean(m, known.iter().map(String::as_str))
                        .map(|s| format!(" ({s})"))
                        .unwrap_or_default(),
                    known: known.join(", "),
                });
            }
        }
        Ok(())
    }

    /// Only the entries whose model column is in `columns`.
    pub fn restricted_to(&self, columns: &[String]) -> ColumnMap {
        ColumnMap(
            self.0
                .iter()
                .filter(|(m, _)| columns.contains(m))
                .map(|(m, i)| (m.clone(), i.clone()))
                .collect(),
        )
    }

    /// The mapping to use on a file with `columns`: every explicit entry, and each entry
    /// `recorded` (by the model, from its training data) whose input column the file has
    /// and whose model column it lacks. A file with the standard names needs none.
    pub fn with_recorded(&self, recorded: &ColumnMap, columns: &[String]) -> (ColumnMap, Vec<String>) {
        let mut out = self.clone();
        let mut used = Vec::new();
        for (m, i) in &recorded.0 {
            if out.0.contains_key(m) || out.0.values().any(|v| v == i) {
                continue;
            }
            if columns.contains(i) && !columns.contains(m) {
                out.0.insert(m.clone(), i.clone());
                used.push(m.clone());
            }
        }
        (out, used)
    }

    /// Rename each mapped input column to its model column (at load). A column already
    /// named like a mapped model column is replaced by the mapped one (a warning). An
    /// input column the table lacks is an error listing the columns present.
    pub fn apply(&self, frame: &DataFrame) -> Result<DataFrame, MappingError> {
        if self.is_empty() {
            return Ok(frame.clone());
        }
        self.check_inputs_present(frame)?;
        let by_input: IndexMap<&str, &str> = self.0.iter().map(|(m, i)| (i.as_str(), m.as_str())).collect();
        let mut columns = Vec::with_capacity(frame.width());
        for c in frame.columns() {
            let name = c.name().as_str();
            if let Some(model) = by_input.get(name) {
                columns.push(c.clone().with_name((*model).into()));
            } else if self.0.contains_key(name) {
                tracing::warn!(
                    "your column `{name}` is replaced by \"{}\" (mapped to `{name}`)",
                    self.0[name]
                );
            } else {
                columns.push(c.clone());
            }
        }
        Ok(DataFrame::new(frame.height(), columns)?)
    }

    /// Copy each mapped input column under its model column's name (prediction: the
    /// user's columns stay as they are, for the output).
    pub fn copy_into(&self, frame: &DataFrame) -> Result<DataFrame, MappingError> {
        self.check_inputs_present(frame)?;
        let mut out = frame.clone();
        for (m, i) in &self.0 {
            let column = frame.column(i)?;
            out.with_column(column.clone().with_name(m.as_str().into()))?;
        }
        Ok(out)
    }

    /// Every mapped input column is in `frame` (else an error listing the columns present).
    pub fn check_inputs_present(&self, frame: &DataFrame) -> Result<(), MappingError> {
        let present = super::table::column_names(frame);
        for (m, i) in &self.0 {
            if !present.contains(i) {
                return Err(MappingError::NoInputColumn {
                    model_column: m.clone(),
                    input_column: i.clone(),
                    present: present.join(", "),
                });
            }
        }
        Ok(())
    }

    /// The columns of a mapped table, each labelled with the user's name where mapped.
    pub fn labels(&self, columns: &[String]) -> Vec<String> {
        columns.iter().map(|c| self.label(c)).collect()
    }
}

/// The raw inventory columns a feature configuration reads: its text columns, numeric
/// sources, and the sources of its targets (copied, normalised or joined), without the
/// columns it derives.
pub fn known_columns(features: &super::features::FeatureConfig) -> Vec<String> {
    let mut derived: Vec<&String> = Vec::new();
    derived.extend(features.text_combinations.iter().map(|t| &t.name));
    derived.extend(features.hierarchies.iter().map(|h| &h.name));
    derived.extend(
        features
            .column_mappings
            .iter()
            .filter(|m| m.source != m.target)
            .map(|m| &m.target),
    );
    let mut out: Vec<String> = Vec::new();
    let candidates = features
        .text_combinations
        .iter()
        .flat_map(|t| t.columns.iter())
        .chain(features.numeric_columns.iter().flat_map(|n| n.sources.iter()))
        .chain(features.column_mappings.iter().map(|m| &m.source))
        .chain(features.classification_systems.iter().map(|s| &s.source))
        .chain(features.hierarchies.iter().flat_map(|h| h.parents.iter()))
        .chain(features.targets.iter());
    for c in candidates {
        if !derived.contains(&c) && !out.contains(c) {
            out.push(c.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn arguments_and_files_make_one_mapping_with_the_same_checks() {
        let m =
            ColumnMap::from_args(&args(&["manufacturer=Mfr", " description = Asset Description "])).unwrap();
        assert_eq!(m.input_of("description"), Some("Asset Description"));
        assert_eq!(m.label("manufacturer"), "manufacturer (your column \"Mfr\")");
        assert_eq!(m.label("model"), "model");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("map.toml");
        std::fs::write(&f, "manufacturer = \"Maker\"\nmodel = \"Model No\"\n").unwrap();
        let r = ColumnMap::resolve(Some(&f), &args(&["manufacturer=Mfr"])).unwrap();
        assert_eq!(
            r.input_of("manufacturer"),
            Some("Mfr"),
            "--map wins over the file"
        );
        assert_eq!(r.input_of("model"), Some("Model No"));

        let e = ColumnMap::from_args(&args(&["manufacturer"])).unwrap_err();
        assert!(
            e.to_string().contains("expected MODEL_COLUMN=INPUT_COLUMN"),
            "{e}"
        );
        let e = ColumnMap::from_args(&args(&["manufacturer="])).unwrap_err();
        assert!(e.to_string().contains("empty input column name"), "{e}");
        let e = ColumnMap::from_args(&args(&["=Mfr"])).unwrap_err();
        assert!(e.to_string().contains("empty model column name"), "{e}");
        let e = ColumnMap::from_args(&args(&["manufacturer=Mfr", "manufacturer=Maker"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`manufacturer` is mapped twice by --map: from \"Mfr\" and from \"Maker\""
        );
        let e = ColumnMap::from_args(&args(&["manufacturer=Mfr", "model=Mfr"])).unwrap_err();
        assert!(
            e.to_string()
                .contains("mapped to both `manufacturer` and `model`"),
            "{e}"
        );
        std::fs::write(&f, "manufacturer = 3\n").unwrap();
        let e = ColumnMap::from_file(&f).unwrap_err();
        assert!(e.to_string().contains("must be a string"), "{e}");
        std::fs::write(&f, "manufacturer = \"Mfr\"\nmanufacturer = \"X\"\n").unwrap();
        let e = ColumnMap::from_file(&f).unwrap_err();
        assert!(e.to_string().contains("map.toml:2:"), "{e}");
    }

    #[test]
    fn unknown_model_columns_are_refused_with_a_suggestion() {
        let features = crate::ml::features::FeatureConfig::open(Path::new("builtin")).unwrap();
        let known = known_columns(&features);
        for c in [
            "description",
            "manufacturer",
            "service_life",
            "category_name",
            "mcaa_system_category",
        ] {
            assert!(known.iter().any(|k| k == c), "{c} in {known:?}");
        }
        assert!(!known
            .iter()
            .any(|k| k == "combined_text" || k == "Equipment_Type"));
        let m = ColumnMap::from_args(&args(&["manufacturr=Mfr"])).unwrap();
        let e = m.check_known(&known).unwrap_err().to_string();
        assert!(e.contains("`manufacturr`, which is not a column"), "{e}");
        assert!(e.contains("manufacturer"), "{e}");
    }

    #[test]
    fn apply_renames_at_once_and_copy_keeps_the_users_columns() {
        let frame = df!("Mfr" => ["a"], "manufacturer" => ["old"], "Model No" => ["m"]).unwrap();
        let m = ColumnMap::from_args(&args(&["manufacturer=Mfr", "model=Model No"])).unwrap();
        let renamed = m.apply(&frame).unwrap();
        assert_eq!(
            super::super::table::column_names(&renamed),
            ["manufacturer", "model"]
        );
        assert_eq!(
            super::super::table::text_column(&renamed, "manufacturer").unwrap(),
            ["a"]
        );
        let copied = m.copy_into(&frame).unwrap();
        assert_eq!(
            super::super::table::column_names(&copied),
            ["Mfr", "manufacturer", "Model No", "model"]
        );
        let bad = ColumnMap::from_args(&args(&["model=Model Number"])).unwrap();
        let e = bad.apply(&frame).unwrap_err().to_string();
        assert!(
            e.contains("no input column \"Model Number\" (columns present: Mfr, manufacturer, Model No)"),
            "{e}"
        );
        // A recorded mapping applies where the file has its columns, not over standard names.
        let recorded = ColumnMap::from_args(&args(&["manufacturer=Mfr", "model=Model No"])).unwrap();
        let (used, from) = ColumnMap::default().with_recorded(&recorded, &["Mfr".into(), "model".into()]);
        assert_eq!(used.input_of("manufacturer"), Some("Mfr"));
        assert_eq!(used.input_of("model"), None);
        assert_eq!(from, ["manufacturer"]);
    }
}
