//! `data.validate`: check an inventory; in strict mode, stop the pipeline on bad data.

use super::{FieldDoc, Op, OpConfig, OpError, OpSpec, Port, Registry, RunDirWrite};
use crate::ml::validate::{validate, ValidationReport, ValidationRules};
use crate::op::NodeContext;
use polars::prelude::DataFrame;

#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error("the data failed validation ({} error{}): {}", .0.len(), if .0.len() == 1 { "" } else { "s" }, .0.join("; "))]
    Invalid(Vec<String>),
    #[error("cannot write {path}: {source}")]
    Write {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub(crate) fn register(r: &mut Registry) {
    r.register(
        OpSpec::new(
            "data.validate",
            "Check columns, empty critical cells, labels per target, numeric parsing, row count, duplicates \
             and rare classes; write validation.json; with `strict`, fail on any error.",
            |c: ValidationRules| {
                c.check()?;
                Ok(Validate(c))
            },
        )
        .input(Port::new::<DataFrame>("table", "the inventory"))
        .output(Port::new::<ValidationReport>("report", "the findings").optional())
        .writes_in_run_dir(|_: &ValidationRules| vec![RunDirWrite::file(VALIDATION_FILE)])
        .version(
            3,
            "messages name mapped columns (2: empty target cells are counted and warned about, not errors)",
        ),
    );
}

/// What `data.validate` writes in the run directory.
const VALIDATION_FILE: &str = "validation.json";

impl OpConfig for ValidationRules {
    const FIELDS: &'static [FieldDoc] = &[
        FieldDoc::optional("required_columns", "[string]", "columns that must exist"),
        FieldDoc::optional(
            "critical_columns",
            "[string]",
            "columns that must have no empty cell",
        ),
        FieldDoc::optional(
            "numeric_columns",
            "[string]",
            "columns whose filled cells must be numbers",
        ),
        FieldDoc::optional(
            "max_invalid_numeric",
            "float",
            "tolerated fraction of non-numeric filled cells (above: error, else warning)",
        ),
        FieldDoc::optional("min_rows", "integer", "fewest rows accepted"),
        FieldDoc::optional(
            "target_columns",
            "[string]",
            "targets: rows without a label are counted (a warning; they are left out of that target only), \
             single-row classes and single-class targets reported",
        ),
        FieldDoc::optional(
            "min_labelled_rows",
            "integer",
            "fewest labelled rows per target (fewer: error)",
        ),
        FieldDoc::optional("strict", "bool", "fail the node when the data is invalid"),
        FieldDoc::optional(
            "map",
            "table",
            "the column mapping the table was loaded with: messages name your column beside the standard one",
        ),
    ];
}

struct Validate(ValidationRules);
impl Op for Validate {
    fn run(&self, ctx: &mut NodeContext<'_>) -> Result<(), OpError> {
        let frame = ctx.input::<DataFrame>("table")?;
        let report = validate(&frame, &self.0);
        let path = ctx.run_dir().join(VALIDATION_FILE);
        let json = serde_json::to_vec_pretty(&report)?;
        ctx.write_file(&path, json)
            .map_err(|source| ValidateError::Write { path, source })?;
        for w in &report.warnings {
            tracing::warn!("validation: {}", w.message);
        }
        for e in &report.errors {
            tracing::error!("validation: {}", e.message);
        }
        if !report.valid && self.0.strict {
            return Err(
                ValidateError::Invalid(report.errors.iter().map(|e| e.message.clone()).collect()).into(),
            );
        }
        tracing::info!(
            "validation: {} rows, {} errors, {} warnings",
            report.rows,
            report.errors.len(),
            report.warnings.len()
        );
        ctx.output("report", report)?;
        Ok(())
    }
}
