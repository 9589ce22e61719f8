//! Generate a synthetic equipment inventory.
//!
//! `cargo run --release --example synth -- <rows> <seed> <out.csv>`

use nexusml::ml::synth::{write_inventory, SynthOptions};
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(rows), Some(seed), Some(out)) = (
        args.first().and_then(|s| s.parse::<usize>().ok()),
        args.get(1).and_then(|s| s.parse::<u64>().ok()),
        args.get(2).map(PathBuf::from),
    ) else {
        eprintln!("usage: synth <rows> <seed> <out.csv>");
        return ExitCode::from(2);
    };
    match write_inventory(&SynthOptions { rows, seed }, &out) {
        Ok(s) => {
            println!(
                "wrote {} rows, {} categories, {} mislabelled to {}",
                s.rows,
                s.categories,
                s.mislabelled,
                out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
