//! `dag export --to slurm`: a standalone script submitting the pipeline's nodes as Slurm
//! jobs against a shared store (`dag run --executor slurm` is `crate::cluster::SlurmRunner`).

use super::{CliError, ExportArgs};
use crate::cluster::{job_env, plan, slurm};
use std::path::Path;
use std::process::ExitCode;

fn write(path: &Path, text: &str) -> Result<(), CliError> {
    crate::atomic_file::write_atomic(path, text.as_bytes()).map_err(|source| CliError::Io {
        what: "cannot write",
        path: path.into(),
        source,
    })
}

pub(crate) fn export(args: ExportArgs) -> Result<ExitCode, CliError> {
    let session = crate::engine::Session::open(crate::engine::Request {
        overrides: args.pipeline.overrides(),
        store: None,
        ..crate::engine::Request::new(args.pipeline.source(), crate::ops::builtin())
    })?;
    let p = &session.pipeline;
    let mask = vec![true; p.nodes.len()];
    let store = args.store.dir();
    let script_dir = args
        .output
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let stem = args
        .output
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let params = script_dir.join(format!("{stem}.params.toml"));
    let env = job_env(p, &store, &args.jobs_dir, &params)?;
    let jobs = plan(p, &mask, &env);
    let params_toml = toml::to_string(&session.job_params()).unwrap_or_default();
    let script = slurm::script(p, &jobs, &env, &params_toml)?;
    write(&args.output, &script)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&args.output, std::fs::Permissions::from_mode(0o755));
    }
    tracing::info!("wrote {} ({} jobs)", args.output.display(), jobs.len());
    Ok(ExitCode::SUCCESS)
}
