//! `data.split`: train and test tables.

use super::{FieldDoc, Op, OpConfig, OpError, OpSpec, PathField, Port, Registry};
use crate::ml::split::{from_test_rows, split, SplitIndices, TestSize};
use crate::ml::table::{take_rows, text_column};
use crate::op::NodeContext;
use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    test_size: TestSize,
    seed: u64,
    /// Column to stratify on; empty: none.
    stratify: String,
    /// File of 0-based test row indices; empty: a random split.
    test_rows: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            test_size: TestSize::Fraction(0.3),
            seed: 42,
            stratify: String::new(),
            test_rows: String::new(),
        }
    }
}

impl OpConfig for Config {
    const FIELDS: &'static [FieldDoc] = &[
        FieldDoc::optional(
            "test_size",
            "float | integer",
            "fraction of rows (0 < x < 1) or a row count",
        ),
        FieldDoc::optional("seed", "integer", "shuffle seed"),
        FieldDoc::optional(
            "stratify",
            "string",
            "column whose class proportions both sides keep",
        ),
        FieldDoc::optional(
            "test_rows",
            "string",
            "file of 0-based test row indices (one per line) instead of a random split",
        ),
    ];
}

pub(crate) fn register(r: &mut Registry) {
    r.register(
        OpSpec::new(
            "data.split",
            "Split a table into train and test: seeded shuffle, optionally stratified, or explicit test rows.",
            |c: Config| {
                // Check the size now so `dag check` catches `test_size = 1.5`.
                if let TestSize::Fraction(f) = c.test_size {
                    if !(f > 0.0 && f < 1.0) {
                        return Err(crate::ml::split::SplitError::BadFraction(f).to_string());
                    }
                }
                Ok(Split(c))
            },
        )
        .path_field(PathField::new("test_rows"))
        .input(Port::new::<DataFrame>("table", "the table to split"))
        .output(Port::new::<DataFrame>("train", "training rows"))
        .output(Port::new::<DataFrame>("test", "test rows"))
        .output(Port::new::<SplitIndices>("split", "the row indices of each side").optional()),
    );
}

struct Split(Config);
impl Op for Split {
    fn reads(&self) -> Vec<PathBuf> {
        if self.0.test_rows.is_empty() {
            Vec::new()
        } else {
            vec![PathBuf::from(&self.0.test_rows)]
        }
    }

    fn run(&self, ctx: &mut NodeContext<'_>) -> Result<(), OpError> {
        let frame = ctx.input::<DataFrame>("table")?;
        let n = frame.height();
        let indices = if !self.0.test_rows.is_empty() {
            from_test_rows(&PathBuf::from(&self.0.test_rows), n)?
        } else if !self.0.stratify.is_empty() {
            let labels = text_column(&frame, &self.0.stratify)?;
            split(n, self.0.test_size, self.0.seed, Some(&labels))?
        } else {
            split(n, self.0.test_size, self.0.seed, None)?
        };
        for note in &indices.notes {
            tracing::warn!("split: {note}");
        }
        tracing::info!(
            "split {n} rows: {} train, {} test ({})",
            indices.train.len(),
            indices.test.len(),
            indices.method
        );
        ctx.output("train", take_rows(&frame, &indices.train)?)?;
        ctx.output("test", take_rows(&frame, &indices.test)?)?;
        ctx.output("split", indices)?;
        Ok(())
    }
}
