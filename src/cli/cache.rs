//! `nexusml cache info | gc`: what the artifact store holds, and deleting what the newest
//! runs do not reach.

use super::{CliError, GcArgs, StoreDirArg};
use std::process::ExitCode;

pub(crate) fn info(args: StoreDirArg) -> Result<ExitCode, CliError> {
    let store = args.open()?;
    let i = store.info();
    say!("store:     {}", i.root);
    say!("size:      {}", human_bytes(i.bytes));
    say!("entries:   {} manifests, {} blobs", i.manifests, i.blobs);
    say!("runs:      {} recorded, {} running now", i.runs, i.live_runs);
    if let Some(newest) = i.newest_run {
        say!("newest:    {newest}");
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn gc(args: GcArgs) -> Result<ExitCode, CliError> {
    let store = args.store.open()?;
    let r = store.gc(&crate::store::GcOptions {
        keep_runs: args.keep_runs,
        max_size: args.max_size,
        dry_run: args.dry_run,
    })?;
    let verb = if args.dry_run { "would remove" } else { "removed" };
    say!(
        "{verb} {} manifests, {} blobs ({}) and {} run records; kept {} runs ({}){}",
        r.manifests_removed,
        r.blobs_removed,
        human_bytes(r.bytes_removed),
        r.runs_removed,
        r.runs_kept,
        human_bytes(r.bytes_kept),
        if r.live_runs > 0 {
            format!(", and what {} running run(s) use", r.live_runs)
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn human_bytes(n: u64) -> String {
    let n = n as f64;
    if n < 1024.0 {
        format!("{n} B")
    } else if n < 1024.0 * 1024.0 {
        format!("{:.1} KiB", n / 1024.0)
    } else if n < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} MiB", n / 1048576.0)
    } else {
        format!("{:.2} GiB", n / 1073741824.0)
    }
}
