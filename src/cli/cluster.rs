//! `dag export --to slurm | airflow`: the pipeline's units (the jobs `--executor slurm`
//! would submit) as a standalone Slurm script or an Airflow DAG against a shared store
//! (`dag run --executor slurm` is `crate::cluster::SlurmRunner`).

use super::{CliError, ExportArgs, ExportTarget};
use crate::cluster::{airflow, job_env, slurm, units};
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
    let dir = args
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
    let params = dir.join(format!("{stem}.params.toml"));
    std::fs::create_dir_all(dir).map_err(|source| CliError::Io {
        what: "cannot create",
        path: dir.into(),
        source,
    })?;
    let env = job_env(p, &store, &args.jobs_dir, &params)?;
    let units = units(p, &mask, args.group.grouping()).map_err(|e| CliError::Usage(e.to_string()))?;
    let params_toml = toml::to_string(&session.job_params()).unwrap_or_default();
    match args.to {
        ExportTarget::Slurm => {
            let script = slurm::script(p, &units, &env, &params_toml)?;
            write(&args.output, &script)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&args.output, std::fs::Permissions::from_mode(0o755));
            }
        }
        ExportTarget::Airflow => {
            // The tasks read their parameters from here: written now, beside the DAG.
            write(&params, &params_toml)?;
            let dag_id = format!(
                "nexusml_{}",
                p.name
                    .replace(|c: char| !c.is_ascii_alphanumeric() && c != '_' && c != '-', "_")
            );
            write(&args.output, &airflow::dag_file(p, &units, &env, &dag_id))?;
        }
    }
    for (i, unit) in units.iter().enumerate() {
        tracing::info!("job {}: {}", i + 1, slurm::describe(p, unit));
    }
    tracing::info!("wrote {} ({} jobs)", args.output.display(), units.len());
    Ok(ExitCode::SUCCESS)
}
