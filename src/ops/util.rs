//! Utility ops for tests, benchmarks and wiring: they do no domain work, but they exercise
//! every engine path (ordering, parallelism, failure, panics, data flow, determinism).

use super::{ArtifactType, FieldDoc, Op, OpConfig, OpError, OpSpec, Port, Registry, RunDirWrite};
use crate::op::NodeContext;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::{Duration, Instant};

/// A marker artifact: "this node ran". Carries no data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token;

/// Errors of the utility ops.
#[derive(Debug, thiserror::Error)]
pub enum UtilError {
    #[error("{0}")]
    Requested(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("expected {expected}, got {actual}")]
    NotEqual { expected: String, actual: String },
    #[error("input `{port}` holds a {type_name}, which util ops cannot show")]
    Unprintable { port: String, type_name: String },
    #[error("`count` = {count} is more than the limit of {MAX_RANDOM_COUNT} numbers")]
    TooManyNumbers { count: u64 },
}

/// The most numbers `util.random` emits: a test op, and 1,000,000 values already take
/// 32 MB in memory and about 20 MB as JSON. A config-time bound, so `dag check` refuses
/// a count that would abort the run on allocation.
pub const MAX_RANDOM_COUNT: u64 = 1_000_000;

#[derive(Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

impl OpConfig for Empty {
    const FIELDS: &'static [FieldDoc] = &[];
}

#[derive(Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct SpinConfig {
    ms: u64,
}

impl OpConfig for SpinConfig {
    const FIELDS: &'static [FieldDoc] = &[FieldDoc::required(
        "ms",
        "integer",
        "how long to compute, in milliseconds",
    )];
}

/// `util.fail` and `util.panic`.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
struct MessageConfig {
    message: String,
}

impl Default for MessageConfig {
    fn default() -> Self {
        MessageConfig {
            message: "failed on purpose".into(),
        }
    }
}

impl OpConfig for MessageConfig {
    const FIELDS: &'static [FieldDoc] = &[FieldDoc::optional(
        "message",
        "string",
        "the error (util.fail) or panic (util.panic) text",
    )];
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ValueConfig {
    value: toml::Value,
}

/// `value` is required: the placeholder is never shown.
impl Default for ValueConfig {
    fn default() -> Self {
        ValueConfig {
            value: toml::Value::Table(toml::Table::new()),
        }
    }
}

impl OpConfig for ValueConfig {
    const FIELDS: &'static [FieldDoc] = &[FieldDoc::required("value", "any", "the value to emit")];
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
struct RandomConfig {
    seed: u64,
    // u64, not usize: a count too big for usize gets the limit's message, not serde's.
    count: u64,
}

impl Default for RandomConfig {
    fn default() -> Self {
        RandomConfig { seed: 0, count: 4 }
    }
}

impl OpConfig for RandomConfig {
    const FIELDS: &'static [FieldDoc] = &[
        FieldDoc::optional("seed", "integer", "base seed"),
        FieldDoc::optional("count", "integer", "how many numbers (at most 1,000,000)"),
    ];
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct AssertConfig {
    expected: toml::Value,
}

/// `expected` is required: the placeholder is never shown.
impl Default for AssertConfig {
    fn default() -> Self {
        AssertConfig {
            expected: toml::Value::Table(toml::Table::new()),
        }
    }
}

impl OpConfig for AssertConfig {
    const FIELDS: &'static [FieldDoc] = &[FieldDoc::required("expected", "any", "the value it must equal")];
}

#[derive(Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct WriteConfig {
    file: String,
}

impl OpConfig for WriteConfig {
    const FIELDS: &'static [FieldDoc] = &[FieldDoc::required(
        "file",
        "string",
        "file name, relative to the run directory",
    )];
}

pub(crate) fn register(r: &mut Registry) {
    r.register(
        OpSpec::new(
            "util.noop",
            "Do nothing; write a Token to every output.",
            |_: Empty| Ok(Noop),
        )
        .any_inputs(ArtifactType::ANY)
        .any_outputs(ArtifactType::of::<Token>()),
    );
    r.register(
        OpSpec::new(
            "util.spin",
            "Keep one core busy for `ms` milliseconds; write a Token to every output.",
            |c: SpinConfig| Ok(Spin(Duration::from_millis(c.ms))),
        )
        .any_inputs(ArtifactType::ANY)
        .any_outputs(ArtifactType::of::<Token>()),
    );
    r.register(
        OpSpec::new("util.fail", "Fail with `message`.", |c: MessageConfig| {
            Ok(Fail(c.message))
        })
        .any_inputs(ArtifactType::ANY)
        .any_outputs(ArtifactType::of::<Token>()),
    );
    r.register(
        OpSpec::new(
            "util.panic",
            "Panic with `message` (tests panic isolation).",
            |c: MessageConfig| Ok(Panic(c.message)),
        )
        .any_inputs(ArtifactType::ANY)
        .any_outputs(ArtifactType::of::<Token>()),
    );
    r.register(
        OpSpec::new(
            "util.value",
            "Emit `value` (usually a `${param}`) as an artifact.",
            |c: ValueConfig| {
                serde_json::to_value(&c.value)
                    .map(Emit)
                    .map_err(|e| e.to_string())
            },
        )
        .output(Port::new::<Value>("value", "the configured value")),
    );
    r.register(
        OpSpec::new(
            "util.random",
            "Emit `count` pseudo-random integers from a seed derived from `seed` and the node id.",
            |c: RandomConfig| {
                if c.count > MAX_RANDOM_COUNT {
                    return Err(UtilError::TooManyNumbers { count: c.count }.to_string());
                }
                Ok(Random(c))
            },
        )
        .any_inputs(ArtifactType::ANY)
        .seeded_by_node()
        .output(Port::new::<Value>("value", "an array of integers")),
    );
    r.register(
        OpSpec::new(
            "util.digest",
            "Emit a 64-bit digest of all inputs (in port order): shows that data flowed.",
            |_: Empty| Ok(Digest),
        )
        .any_inputs(ArtifactType::ANY)
        .output(Port::new::<Value>("value", "the digest, as a hex string")),
    );
    r.register(
        OpSpec::new(
            "util.assert_eq",
            "Fail unless the `value` input equals `expected` (checks in pipelines and tests).",
            |c: AssertConfig| {
                serde_json::to_value(&c.expected)
                    .map(AssertEq)
                    .map_err(|e| e.to_string())
            },
        )
        .input(Port::new::<Value>("value", "the value to check")),
    );
    r.register(
        OpSpec::new(
            "util.write",
            "Write all inputs as one JSON object (port → value) to `file` in the run directory.",
            |c: WriteConfig| {
                super::inside_run_dir("file", &c.file)?;
                Ok(Write(c.file))
            },
        )
        .writes_in_run_dir(|c: &WriteConfig| vec![RunDirWrite::file(&c.file)])
        .any_inputs(ArtifactType::ANY),
    );
}

fn write_tokens(ctx: &mut NodeContext<'_>) -> Result<(), OpError> {
    Ok(ctx.output_every(|| Token)?)
}

/// Inputs as JSON (tokens as the string "token"), in port order.
fn inputs_as_json(ctx: &NodeContext<'_>) -> Result<Vec<(String, Value)>, UtilError> {
    let mut inputs = ctx.inputs_untyped();
    inputs.sort_by(|a, b| a.0.cmp(b.0));
    inputs
        .into_iter()
        .map(|(port, _, slot)| {
            let v = if let Some(v) = slot.value.downcast_ref::<Value>() {
                v.clone()
            } else if slot.value.downcast_ref::<Token>().is_some() {
                Value::String("token".into())
            } else {
                return Err(UtilError::Unprintable {
                    port: port.into(),
                    type_name: super::short_type_name(slot.type_name),
                });
            };
            Ok((port.to_string(), v))
        })
        .collect()
}

struct Noop;
impl Op for Noop {
    fn run(&self, ctx: &mut NodeContext<'_>) -> Result<(), OpError> {
        write_tokens(ctx)
    }
}

struct Spin(Duration);
impl Op for Spin {
    fn run(&self, ctx: &mut NodeContext<'_>) -> Result<(), OpError> {
        // Real arithmetic, checked against the clock every few thousand steps, so the
        // node occupies one core for the whole interval.
        let start = Instant::now();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        while start.elapsed() < self.0 {
            for _ in 0..4096 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
            }
            std::hint::black_box(x);
        }
        write_tokens(ctx)
    }
}

struct Fail(String);
impl Op for Fail {
    fn run(&self, _ctx: &mut NodeContext<'_>) -> Result<(), OpError> {
        Err(UtilError::Requested(self.0.clone()).into())
    }
}

struct Panic(String);
impl Op for Panic {
    fn run(&self, _ctx: &mut NodeContext<'_>) -> Result<(), OpError> {
        panic!("{}", self.0)
    }
}

struct Emit(Value);
impl Op for Emit {
    fn run(&self, ctx: &mut NodeContext<'_>) -> Result<(), OpError> {
        ctx.output("value", self.0.clone())?;
        Ok(())
    }
}

struct Random(RandomConfig);
impl Op for Random {
    fn run(&self, ctx: &mut NodeContext<'_>) -> Result<(), OpError> {
        let mut rng = crate::ml::rng::Rng::new(super::node_seed(ctx, self.0.seed, &[]));
        let values: Vec<Value> = (0..self.0.count).map(|_| Value::from(rng.next_u64())).collect();
        ctx.output("value", Value::Array(values))?;
        Ok(())
    }
}

struct Digest;
impl Op for Digest {
    fn run(&self, ctx: &mut NodeContext<'_>) -> Result<(), OpError> {
        let inputs = inputs_as_json(ctx)?;
        let text = serde_json::to_string(&inputs)?;
        let h = crate::ml::rng::derive_seed(0, &[text.as_bytes()]);
        ctx.output("value", Value::String(format!("{h:016x}")))?;
        Ok(())
    }
}

struct AssertEq(Value);
impl Op for AssertEq {
    fn run(&self, ctx: &mut NodeContext<'_>) -> Result<(), OpError> {
        let value = ctx.input::<Value>("value")?;
        if *value != self.0 {
            return Err(UtilError::NotEqual {
                expected: self.0.to_string(),
                actual: value.to_string(),
            }
            .into());
        }
        Ok(())
    }
}

struct Write(String);
impl Op for Write {
    fn run(&self, ctx: &mut NodeContext<'_>) -> Result<(), OpError> {
        let inputs: serde_json::Map<String, Value> = inputs_as_json(ctx)?.into_iter().collect();
        let path = ctx.run_dir().join(&self.0);
        let json = serde_json::to_vec_pretty(&Value::Object(inputs))?;
        ctx.write_file(&path, json)
            .map_err(|source| UtilError::Write { path, source })?;
        Ok(())
    }
}
