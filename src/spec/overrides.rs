//! Parameter overrides, in the order they apply: the file's `[params]`, then a
//! `--params` file (a TOML table), then each `--set KEY=VALUE`, then values the library
//! API or a classic flag gives. Each names a parameter the file declares (a typo is an
//! error, with the nearest name), and is recorded as given on the command line, so a
//! relative path in it is taken from the working directory.

use super::{parse_error, parse_override, PipelineSpec, SpecError};
use std::path::{Path, PathBuf};
use toml::{Table, Value};

/// Every override a run was given.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--params FILE`.
    pub params_file: Option<PathBuf>,
    /// `--set KEY=VALUE`, in order; `KEY` may be `table.entry` for a table parameter.
    pub set: Vec<String>,
    /// Values from the library API or classic flags, applied last.
    pub api: Table,
}

impl Overrides {
    pub fn is_empty(&self) -> bool {
        self.params_file.is_none() && self.set.is_empty() && self.api.is_empty()
    }

    /// Apply to `spec`'s parameters, or say which override is wrong.
    pub fn apply(&self, spec: &mut PipelineSpec) -> Result<(), SpecError> {
        if let Some(path) = &self.params_file {
            let table = read_params_file(path)?;
            for key in table.keys() {
                check_declared(spec, key, &format!("--params {}", path.display()))?;
            }
            set_all(spec, table);
        }
        for text in &self.set {
            let (key, value) = parse_override(text)?;
            // `--set map.description=Desc` sets one entry of a table parameter.
            if let Some((head, entry)) = key.split_once('.') {
                if let Some(Value::Table(t)) = spec.params.get_mut(head) {
                    t.insert(entry.to_string(), value);
                    spec.command_line_params.insert(head.to_string());
                    continue;
                }
            }
            check_declared(spec, &key, &format!("--set {key}=…"))?;
            set_all(spec, Table::from_iter([(key, value)]));
        }
        for key in self.api.keys() {
            check_declared(spec, key, "the call")?;
        }
        set_all(spec, self.api.clone());
        Ok(())
    }
}

fn set_all(spec: &mut PipelineSpec, table: Table) {
    for (k, v) in table {
        spec.command_line_params.insert(k.clone());
        spec.params.insert(k, v);
    }
}

fn check_declared(spec: &PipelineSpec, key: &str, given_by: &str) -> Result<(), SpecError> {
    if spec.params.contains_key(key) {
        return Ok(());
    }
    Err(SpecError::UnknownParam {
        given_by: given_by.to_string(),
        file: spec.path.clone(),
        name: key.to_string(),
        help: crate::suggest::did_you_mean(key, spec.params.keys().map(String::as_str))
            .map(|h| format!(" ({h})"))
            .unwrap_or_default(),
    })
}

fn read_params_file(path: &Path) -> Result<Table, SpecError> {
    let text = crate::fsx::read_to_string(path, crate::fsx::PARAMS).map_err(|e| SpecError::ParamsFile {
        path: path.to_path_buf(),
        reason: format!("cannot read it: {}", e.reason()),
    })?;
    toml::from_str(&text).map_err(|e| parse_error(path, &text, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> PipelineSpec {
        PipelineSpec::parse(
            "[pipeline]\nname = \"t\"\n[params]\ntrees = 200\nmap = {}\n",
            Path::new("t.toml"),
        )
        .unwrap()
    }

    #[test]
    fn overrides_apply_in_order_and_are_marked_as_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.toml");
        std::fs::write(&file, "trees = 50\n").unwrap();
        let mut s = spec();
        Overrides {
            params_file: Some(file),
            set: vec!["trees=100".into(), "map.description=Asset Description".into()],
            api: Table::new(),
        }
        .apply(&mut s)
        .unwrap();
        assert_eq!(s.params["trees"], Value::Integer(100));
        assert_eq!(s.params["map"]["description"].as_str(), Some("Asset Description"));
        assert!(s.command_line_params.contains("trees") && s.command_line_params.contains("map"));
    }

    #[test]
    fn an_undeclared_parameter_is_an_error_with_the_nearest_name() {
        for o in [
            Overrides {
                set: vec!["tres=1".into()],
                ..Default::default()
            },
            Overrides {
                api: Table::from_iter([("tres".to_string(), Value::Integer(1))]),
                ..Default::default()
            },
        ] {
            let e = o.apply(&mut spec()).unwrap_err().to_string();
            assert!(
                e.contains("has no parameter `tres`") && e.contains("did you mean `trees`"),
                "{e}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.toml");
        std::fs::write(&file, "tres = 1\n").unwrap();
        let e = Overrides {
            params_file: Some(file.clone()),
            ..Default::default()
        }
        .apply(&mut spec())
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with(&format!(
                "--params {}: t.toml has no parameter `tres`",
                file.display()
            )),
            "{e}"
        );
    }

    #[test]
    fn a_params_file_that_is_not_a_regular_file_is_refused_before_reading() {
        let e = Overrides {
            params_file: Some("/dev/zero".into()),
            ..Default::default()
        }
        .apply(&mut spec())
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("--params /dev/zero: cannot read it: it is ")
                && e.ends_with(", not a regular file"),
            "{e}"
        );
    }
}
