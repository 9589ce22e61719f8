//! Bounded, deterministic mutation fuzzing in stable Rust (no cargo-fuzz, no nightly).
//!
//! * `model_files_never_panic_or_hang` (a forest model) and
//!   `linear_model_files_never_panic_or_hang`: a valid small model's payload is mutated (bit
//!   flips, byte sets, small-integer edits, truncation, splices, deletions, duplications)
//!   and re-checksummed, or its header's length field is edited; each file is decoded,
//!   validated and, when accepted, used to predict one record (whose probabilities must
//!   be in (0, 1]) and a small table.
//! * `pipeline_specs_never_panic`: `dags/train.toml`'s text is mutated (bytes, lines,
//!   TOML fragments) and parsed, then built into a pipeline with the builtin ops.
//!
//! Neither may panic; each iteration must finish (a wall-clock guard reports the
//! iteration that does not). Iterations: `NEXUSML_FUZZ_ITERS` (default 2000); seed:
//! `NEXUSML_FUZZ_SEED` (default 1). Run with `-- --nocapture` to see the counts.

mod small_model;

use nexusml::graph::Pipeline;
use nexusml::ml::bundle::{self, BundleError, CHECKSUM, HEADER};
use nexusml::ml::model::{EquipmentModel, FORMAT_VERSION};
use nexusml::ml::rng::Rng;
use nexusml::spec::PipelineSpec;
use sha2::{Digest, Sha256};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Run `body(progress)` on a fuzz thread; fail if it does not finish within `limit`,
/// naming the iteration it was on.
fn guarded<T: Send + 'static>(
    name: &str,
    limit: Duration,
    body: impl FnOnce(&AtomicUsize) -> T + Send + 'static,
) -> T {
    quiet_fuzz_threads();
    let progress = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    let p = Arc::clone(&progress);
    std::thread::Builder::new()
        .name(format!("{FUZZ_THREAD} {name}"))
        .spawn(move || {
            let _ = tx.send(body(&p));
        })
        .unwrap();
    match rx.recv_timeout(limit) {
        Ok(out) => out,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!(
            "{name}: iteration {} did not finish within {limit:?} (a hang?)",
            progress.load(Ordering::SeqCst)
        ),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!(
            "{name}: the harness itself panicked at iteration {}",
            progress.load(Ordering::SeqCst)
        ),
    }
}

const FUZZ_THREAD: &str = "fuzz";

/// Panics on fuzz threads are caught and counted: do not print each one. Other threads
/// (the test's own assertions) keep the default report.
fn quiet_fuzz_threads() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let fuzz = std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with(FUZZ_THREAD));
            if !fuzz {
                default(info);
            }
        }));
    });
}

/// A panic's message.
fn message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(no message)".into())
}

/// Byte values that mean something in MessagePack: nil, false/true, array and map
/// headers, integer and float markers, the extremes of fixints.
const INTERESTING: &[u8] = &[
    0x00, 0x01, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xc3, 0xca, 0xcb, 0xcc, 0xcd, 0xce,
    0xcf, 0xd0, 0xdc, 0xdd, 0xde, 0xff,
];

/// A random range of `len` bytes: (start, end).
fn range(rng: &mut Rng, len: usize, max: usize) -> (usize, usize) {
    let start = rng.below(len);
    let n = 1 + rng.below(max.min(len - start));
    (start, start + n)
}

/// Apply one random mutation to a payload.
fn mutate(rng: &mut Rng, p: &mut Vec<u8>) {
    if p.is_empty() {
        p.push(rng.next_u64() as u8);
        return;
    }
    let len = p.len();
    match rng.below(9) {
        // Bit flips.
        0 => {
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(len);
                p[i] ^= 1 << rng.below(8);
            }
        }
        // A random byte.
        1 => {
            let i = rng.below(len);
            p[i] = rng.next_u64() as u8;
        }
        // A byte meaningful to MessagePack.
        2 => {
            let i = rng.below(len);
            p[i] = *rng.pick(INTERESTING);
        }
        // Small integers (child, feature, class and leaf indices are mostly fixints):
        // another fixint keeps the structure decodable and changes an index.
        3 | 4 => {
            let fixints: Vec<usize> = (0..8).map(|_| rng.below(len)).filter(|&i| p[i] < 0x80).collect();
            for i in fixints.into_iter().take(1 + rng.below(2)) {
                p[i] = rng.below(0x80) as u8;
            }
        }
        // Truncation.
        5 => p.truncate(rng.below(len)),
        // Splice: copy a range of the payload over another place.
        6 => {
            let (a, b) = range(rng, len, 64);
            let chunk = p[a..b].to_vec();
            let at = rng.below(len);
            for (k, byte) in chunk.into_iter().enumerate() {
                if at + k < len {
                    p[at + k] = byte;
                }
            }
        }
        // Delete a range.
        7 => {
            let (a, b) = range(rng, len, 32);
            p.drain(a..b);
        }
        // Duplicate a range in place.
        _ => {
            let (a, b) = range(rng, len, 32);
            let chunk = p[a..b].to_vec();
            p.splice(b..b, chunk);
        }
    }
}

/// A model file image around `payload` with a valid checksum and `declared` as length.
fn file(payload: &[u8], declared: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len() + CHECKSUM);
    out.extend_from_slice(bundle::MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&declared.to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&Sha256::digest(payload));
    out
}

#[derive(Debug, Default)]
struct ModelCounts {
    executions: usize,
    container_rejected: usize,
    decode_rejected: usize,
    validate_rejected: usize,
    accepted: usize,
    predicted_rows: usize,
    panics: Vec<(usize, String)>,
}

#[test]
fn model_files_never_panic_or_hang() {
    fuzz_model_file("forest", small_model::train(80, 2));
}

#[test]
fn linear_model_files_never_panic_or_hang() {
    fuzz_model_file("linear", small_model::train_linear(80));
}

/// Mutate `model`'s payload (see the module documentation).
fn fuzz_model_file(what: &'static str, model: EquipmentModel) {
    let iters = env_or("NEXUSML_FUZZ_ITERS", 2000) as usize;
    let seed = env_or("NEXUSML_FUZZ_SEED", 1);
    let t0 = Instant::now();
    let good = bundle::encode(&model, FORMAT_VERSION).unwrap();
    let payload = good[HEADER..good.len() - CHECKSUM].to_vec();
    let raw = small_model::inventory(12, 5);
    let record = small_model::record();
    let setup = t0.elapsed();
    let payload_len = payload.len();
    let limit = Duration::from_secs(30 + iters as u64 / 50);
    let t1 = Instant::now();
    let counts = guarded(what, limit, move |progress| {
        let path = Path::new("fuzz.nxm");
        let mut rng = Rng::new(seed);
        let mut c = ModelCounts::default();
        for it in 0..iters {
            progress.store(it, Ordering::SeqCst);
            let mut p = payload.clone();
            let mut declared = None;
            for _ in 0..1 + rng.below(3) {
                if rng.chance(0.06) {
                    // The header's length field, not the payload.
                    let len = p.len() as u64;
                    declared = Some(match rng.below(5) {
                        0 => u64::MAX - rng.below(64) as u64,
                        1 => rng.next_u64(),
                        2 => len.wrapping_add(1 + rng.below(100) as u64),
                        3 => len.saturating_sub(1 + rng.below(100) as u64),
                        _ => 1 << (32 + rng.below(32)),
                    });
                } else {
                    mutate(&mut rng, &mut p);
                }
            }
            let bytes = file(&p, declared.unwrap_or(p.len() as u64));
            c.executions += 1;
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                let decoded = bundle::decode::<EquipmentModel>(&bytes, path, FORMAT_VERSION);
                let mut m = match decoded {
                    Ok((m, _)) => m,
                    Err(BundleError::Decode { .. }) => return 1,
                    Err(_) => return 0,
                };
                if m.validate().is_err() {
                    return 2;
                }
                m.restore();
                let answers = m.predict_record(&record);
                assert_eq!(answers.len(), m.features.targets.len(), "one answer per target");
                // A model that passed validation answers a distribution's most likely
                // class: never probability 0 (every leaf empty, or its entries all 0).
                for a in &answers {
                    assert!(
                        a.probability > 0.0 && a.probability <= 1.0 + 1e-6,
                        "an accepted model answers garbage: {a:?}"
                    );
                }
                if let Ok((_, x)) = m.prepare(&raw) {
                    let rows = m.predict_matrix(&x);
                    return 3 + rows.first().map_or(0, |r| r.1.len());
                }
                3
            }));
            match outcome {
                Ok(0) => c.container_rejected += 1,
                Ok(1) => c.decode_rejected += 1,
                Ok(2) => c.validate_rejected += 1,
                Ok(n) => {
                    c.accepted += 1;
                    c.predicted_rows += n - 3;
                }
                Err(e) => c.panics.push((it, message(&*e))),
            }
        }
        c
    });
    let run = t1.elapsed();
    println!(
        "{what} model fuzz: seed {seed}, {} executions in {run:.2?} ({:.0}/s; setup {setup:.2?}), payload {} bytes: \
         {} rejected by the container (length/checksum), {} undecodable, {} rejected by validation, \
         {} accepted and predicted ({} table rows predicted), {} panics",
        counts.executions,
        counts.executions as f64 / run.as_secs_f64(),
        payload_len,
        counts.container_rejected,
        counts.decode_rejected,
        counts.validate_rejected,
        counts.accepted,
        counts.predicted_rows,
        counts.panics.len()
    );
    assert_eq!(counts.executions, iters);
    assert!(
        counts.panics.is_empty(),
        "{} panics (seed {seed}), first: {:?}",
        counts.panics.len(),
        &counts.panics[..counts.panics.len().min(5)]
    );
}

/// Fragments a pipeline might contain, to splice into the text.
const TOML_FRAGMENTS: &[&str] = &[
    "[nodes.extra]\nop = \"csv.load\"\nwith = { path = \"${data}\" }\nout = { table = \"raw\" }\n",
    "[nodes.loop]\nop = \"data.validate\"\nin = { table = \"raw\" }\nout = { report = \"validation\" }\nafter = [\"train\"]\n",
    "after = [\"evaluate\"]\n",
    "after = [\"nope\"]\n",
    "in = { table = \"test_set\" }\n",
    "out = { model = \"model\" }\n",
    "with = { n_trees = \"${missing}\" }\n",
    "with = { path = \"${data\" }\n",
    "tags = [1, 2]\n",
    "op = \"no.such.op\"\n",
    "[pipeline]\nname = \"again\"\n",
    "[params]\ntrees = -1\n",
    "x = \"${${data}}\"\n",
    "\"\"\"\n",
    "[[nodes]]\n",
    "= =\n",
    "\u{0}\u{feff}\u{10ffff}\n",
];

#[derive(Debug, Default)]
struct SpecCounts {
    executions: usize,
    parse_rejected: usize,
    build_rejected: usize,
    built: usize,
    panics: Vec<(usize, String)>,
}

fn mutate_text(rng: &mut Rng, text: &str) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if lines.is_empty() {
        return rng.pick(TOML_FRAGMENTS).to_string();
    }
    match rng.below(8) {
        // Bytes, then back to text (lossily).
        0 => {
            let mut bytes = text.as_bytes().to_vec();
            for _ in 0..1 + rng.below(3) {
                mutate(rng, &mut bytes);
            }
            return String::from_utf8_lossy(&bytes).into_owned();
        }
        // One quoted string's content replaced by another's (artifact names, ops,
        // parameter references): usually still TOML, often a different graph.
        1 | 2 => {
            let quoted: Vec<(usize, usize)> = quoted_strings(text);
            if quoted.len() >= 2 {
                let (a, b) = *rng.pick(&quoted);
                let (c, d) = *rng.pick(&quoted);
                let mut out = text.to_string();
                out.replace_range(a..b, &text[c..d]);
                return out;
            }
        }
        // Delete, duplicate or swap lines.
        3 => {
            let i = rng.below(lines.len());
            lines.remove(i);
        }
        4 => {
            let i = rng.below(lines.len());
            let j = rng.below(lines.len());
            let line = lines[i].clone();
            lines.insert(j, line);
        }
        5 => {
            let i = rng.below(lines.len());
            let j = rng.below(lines.len());
            lines.swap(i, j);
        }
        // Insert a fragment.
        _ => {
            let i = rng.below(lines.len() + 1);
            lines.insert(i, rng.pick(TOML_FRAGMENTS).to_string());
        }
    }
    lines.join("\n")
}

/// Byte ranges of the contents of the `"..."` strings on each line (no escapes).
fn quoted_strings(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut open = None;
    for (i, ch) in text.char_indices() {
        match (ch, open) {
            ('"', None) => open = Some(i + 1),
            ('"', Some(start)) => {
                out.push((start, i));
                open = None;
            }
            ('\n', _) => open = None,
            _ => {}
        }
    }
    out
}

#[test]
fn pipeline_specs_never_panic() {
    let iters = env_or("NEXUSML_FUZZ_ITERS", 2000) as usize;
    let seed = env_or("NEXUSML_FUZZ_SEED", 1);
    let original =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("dags/train.toml")).unwrap();
    let registry = nexusml::ops::builtin();
    let limit = Duration::from_secs(30 + iters as u64 / 50);
    let t0 = Instant::now();
    let counts = guarded("pipeline fuzz", limit, move |progress| {
        let mut rng = Rng::new(seed);
        let mut c = SpecCounts::default();
        for it in 0..iters {
            progress.store(it, Ordering::SeqCst);
            let mut text = original.clone();
            for _ in 0..1 + rng.below(3) {
                text = mutate_text(&mut rng, &text);
            }
            c.executions += 1;
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                let Ok(spec) = PipelineSpec::parse(&text, Path::new("fuzz.toml")) else {
                    return 0;
                };
                match Pipeline::build(&spec, registry) {
                    Ok(_) => 2,
                    Err(e) => {
                        let _ = e.to_string();
                        1
                    }
                }
            }));
            match outcome {
                Ok(0) => c.parse_rejected += 1,
                Ok(1) => c.build_rejected += 1,
                Ok(_) => c.built += 1,
                Err(e) => c.panics.push((it, message(&*e))),
            }
        }
        c
    });
    let run = t0.elapsed();
    println!(
        "pipeline fuzz: seed {seed}, {} executions in {run:.2?} ({:.0}/s): {} rejected by the TOML parser, \
         {} rejected by the graph builder, {} built, {} panics",
        counts.executions,
        counts.executions as f64 / run.as_secs_f64(),
        counts.parse_rejected,
        counts.build_rejected,
        counts.built,
        counts.panics.len()
    );
    assert_eq!(counts.executions, iters);
    assert!(
        counts.panics.is_empty(),
        "{} panics (seed {seed}), first: {:?}",
        counts.panics.len(),
        &counts.panics[..counts.panics.len().min(5)]
    );
}
