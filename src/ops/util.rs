//! Utility ops for tests, benchmarks and wiring: they do no domain work, but they exercise
//! every engine path (ordering, parallelism, failure, panics, data flow, determinism).

use super::{ArtifactType, ConfigField, Op, OpError, OpSpec, Port, Registry};
use crate::op::NodeContext;
use serde::Deserialize;
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpinConfig {
    ms: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageConfig {
    #[serde(default = "default_message")]
    message: String,
}

fn default_message() -> String {
    "failed on purpose".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValueConfig {
    value: toml::Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RandomConfig {
    #[serde(default)]
    seed: u64,
    // u64, not usize: a count too big for usize gets the limit's message, not serde's.
    #[serde(default = "default_count")]
    count: u64,
}

fn default_count() -> u64 {
    4
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssertConfig {
    expected: toml::Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteConfig {
    file: String,
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
        .any_outputs(ArtifactType::of::<Token>())
        .field(ConfigField::required(
            "ms",
            "integer",
            "how long to compute, in milliseconds",
        )),
    );
    r.register(
        OpSpec::new("util.fail", "Fail with `message`.", |c: MessageConfig| {
            Ok(Fail(c.message))
        })
        .any_inputs(ArtifactType::ANY)
        .any_outputs(ArtifactType::of::<Token>())
        .field(ConfigField::with_default(
            "message",
            "string",
            "\"failed on purpose\"",
            "the error text",
        )),
    );
    r.register(
        OpSpec::new(
            "util.panic",
            "Panic with `message` (tests panic isolation).",
            |c: MessageConfig| Ok(Panic(c.message)),
        )
        .any_inputs(ArtifactType::ANY)
        .any_outputs(ArtifactType::of::<Token>())
        .field(ConfigField::with_default(
            "message",
            "string",
            "\"failed on purpose\"",
            "the panic text",
        )),
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
        .output(Port::new::<Value>("value", "the configured value"))
        .field(ConfigField::required("value", "any", "the value to emit")),
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
        .output(Port::new::<Value>("value", "an array of integers"))
        .field(ConfigField::with_default("seed", "integer", "0", "base seed"))
        .field(ConfigField::with_default(
            "count",
            "integer",
            "4",
            "how many numbers (at most 1,000,000)",
        )),
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
        .input(Port::new::<Value>("value", "the value to check"))
        .field(ConfigField::required(
            "expected",
            "any",
            "the value it must equal",
        )),
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
        .any_inputs(ArtifactType::ANY)
        .field(ConfigField::required(
            "file",
            "string",
            "file name, relative to the run directory",
        )),
    );
}

fn write_tokens(ctx: &mut NodeContext<'_>) -> Result<(), OpError> {
    let ports: Vec<String> = ctx.output_ports().into_iter().map(String::from).collect();
    for port in ports {
        ctx.output(&port, Token)?;
    }
    Ok(())
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
