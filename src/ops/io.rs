//! `csv.load` and `csv.write`: tables in and out.

use super::{FieldDoc, Op, OpConfig, OpError, OpSpec, PathField, Port, Registry, RunDirWrite};
use crate::ml::mapping::ColumnMap;
use crate::ml::model::EquipmentModel;
use crate::ml::table::{self, ColumnType, Encoding};
use crate::op::NodeContext;
use indexmap::IndexMap;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum IoError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct LoadConfig {
    path: PathBuf,
    #[serde(default)]
    schema: IndexMap<String, ColumnType>,
    /// Model column → the file's column that holds it, renamed at load.
    #[serde(default)]
    map: ColumnMap,
}

impl OpConfig for LoadConfig {
    const FIELDS: &'static [FieldDoc] = &[
        FieldDoc::required("path", "string", "CSV file"),
        FieldDoc::optional(
            "schema",
            "table",
            "column → str | f64 | i64 for columns that are not text (the file's names)",
        ),
        FieldDoc::optional(
            "map",
            "table",
            "model column = your column, e.g. { manufacturer = \"Mfr\" }: your column is renamed at load, so \
             every later step sees the standard name; with a `model` input, the mapping the model was trained \
             with applies too where the file has those columns",
        ),
    ];
}

#[derive(Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct WriteConfig {
    path: PathBuf,
    /// Relative paths are taken inside the run directory rather than the working directory.
    #[serde(default)]
    in_run_dir: bool,
}

impl OpConfig for WriteConfig {
    const FIELDS: &'static [FieldDoc] = &[
        FieldDoc::required("path", "string", "output file"),
        FieldDoc::optional(
            "in_run_dir",
            "bool",
            "resolve a relative `path` inside the run directory",
        ),
    ];
}

#[derive(Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RenameConfig {
    columns: IndexMap<String, String>,
}

impl OpConfig for RenameConfig {
    const FIELDS: &'static [FieldDoc] = &[FieldDoc::required("columns", "table", "from → to")];
}

pub(crate) fn register(r: &mut Registry) {
    r.register(
        OpSpec::new(
            "table.rename",
            "Rename columns (from → to); a `from` the table lacks is an error listing the columns present. \
             To map another company's inventory to the standard names, `csv.load`'s `map` does this at load.",
            |c: RenameConfig| Ok(Rename(c)),
        )
        .input(Port::new::<DataFrame>("table", "the table"))
        .output(Port::new::<DataFrame>(
            "table",
            "the table with the columns renamed",
        )),
    );
    r.register(
        OpSpec::new(
            "csv.load",
            "Read a CSV inventory: all columns as text unless `schema` says otherwise; BOMs stripped, \
             headers trimmed, Windows-1252 fallback (with a warning), ragged rows reported with their line.",
            |c: LoadConfig| {
                c.map.check().map_err(|e| e.to_string())?;
                Ok(Load(c))
            },
        )
        .path_field(PathField::new("path"))
        .input(
            Port::new::<EquipmentModel>(
                "model",
                "a model whose recorded column mapping applies (and whose columns a `map` may name)",
            )
            .optional(),
        )
        .output(Port::new::<DataFrame>("table", "the inventory"))
        .version(2, "`map`: columns renamed at load; an optional `model` input"),
    );
    r.register(
        OpSpec::new(
            "csv.write",
            "Write a table as CSV (atomically: temp file, then rename).",
            |c: WriteConfig| {
                if c.in_run_dir {
                    super::inside_run_dir("path", &c.path.to_string_lossy())?;
                }
                Ok(Write(c))
            },
        )
        .path_field(PathField::new("path").unless_flag("in_run_dir"))
        .writes_in_run_dir(|c: &WriteConfig| {
            if c.in_run_dir && c.path.is_relative() {
                vec![RunDirWrite::File(c.path.clone())]
            } else {
                Vec::new()
            }
        })
        .input(Port::new::<DataFrame>("table", "the table to write")),
    );
}

struct Load(LoadConfig);
impl Op for Load {
    fn reads(&self) -> Vec<PathBuf> {
        vec![self.0.path.clone()]
    }

    fn run(&self, ctx: &mut NodeContext<'_>) -> Result<(), OpError> {
        let loaded = table::read_csv(&self.0.path, &self.0.schema)?;
        if loaded.encoding == Encoding::Windows1252 {
            tracing::warn!(
                "{} is not UTF-8: decoded as Windows-1252 (latin-1)",
                self.0.path.display()
            );
        }
        if loaded.boms_stripped > 1 {
            tracing::warn!(
                "{}: stripped {} byte-order marks",
                self.0.path.display(),
                loaded.boms_stripped
            );
        }
        tracing::info!(
            "loaded {}: {} rows × {} columns",
            self.0.path.display(),
            loaded.frame.height(),
            loaded.frame.width()
        );
        let map = match ctx.input_opt::<EquipmentModel>("model")? {
            Some(model) => {
                let known = super::columns::known_columns(&model);
                super::columns::with_recorded(&model, &loaded.frame, &self.0.map, &known, &known)?
            }
            None => self.0.map.clone(),
        };
        let frame = map.apply(&loaded.frame)?;
        if !map.is_empty() {
            tracing::info!(
                "columns mapped: {}",
                map.iter()
                    .map(|(m, _)| map.label(m))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        ctx.output("table", frame)?;
        Ok(())
    }
}

struct Rename(RenameConfig);
impl Op for Rename {
    fn run(&self, ctx: &mut NodeContext<'_>) -> Result<(), OpError> {
        let mut frame = (*ctx.input::<DataFrame>("table")?).clone();
        for (from, to) in &self.0.columns {
            if from == to {
                continue;
            }
            if frame.column(from).is_err() {
                return Err(table::no_column(&frame, from).into());
            }
            if frame.column(to).is_ok() {
                // The mapped column replaces one of the same name.
                let _ = frame.drop_in_place(to);
            }
            frame.rename(from, to.as_str().into())?;
        }
        ctx.output("table", frame)?;
        Ok(())
    }
}

struct Write(WriteConfig);
impl Op for Write {
    fn run(&self, ctx: &mut NodeContext<'_>) -> Result<(), OpError> {
        let frame = ctx.input::<DataFrame>("table")?;
        let path = if self.0.in_run_dir && self.0.path.is_relative() {
            ctx.run_dir().join(&self.0.path)
        } else {
            self.0.path.clone()
        };
        write_csv(&frame, &path)?;
        ctx.wrote_file(&path).map_err(|source| IoError::Write {
            path: path.clone(),
            source,
        })?;
        tracing::info!("wrote {} ({} rows)", path.display(), frame.height());
        Ok(())
    }
}

/// Write a table as CSV, atomically; creates the parent directory.
pub(crate) fn write_csv(frame: &DataFrame, path: &std::path::Path) -> Result<(), IoError> {
    let err = |source| IoError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    let mut frame = frame.clone();
    crate::atomic_file::write_atomic_with(path, |w| {
        CsvWriter::new(w)
            .finish(&mut frame)
            .map_err(std::io::Error::other)
    })
    .map_err(err)
}
