//! `dag export --to airflow`: the pipeline as an Airflow DAG, one task per unit (the same
//! units as on Slurm: [`super::groups`]), each running `nexusml dag run FILE --only … --store
//! STORE --params …`, the pipeline's edges as task dependencies. A family is one mapped
//! task (`BashOperator.partial(…).expand(bash_command=[…])`). The file is plain Python a
//! user can read and commit.

use super::{command, shell_line, JobEnv, Unit, UnitKind};
use crate::graph::Pipeline;
use std::fmt::Write as _;

/// A Python string literal holding `text` exactly (escapes for quotes, backslashes and
/// every character outside printable ASCII).
pub fn py_str(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 2);
    s.push('"');
    for c in text.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            ' '..='~' => s.push(c),
            c if (c as u32) < 0x10000 => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(s, "\\U{:08x}", c as u32);
            }
        }
    }
    s.push('"');
    s
}

/// A shell line as an Airflow `bash_command`: Jinja must not read `{{`, `{%` or `{#` in
/// paths, so the line is raw for the template engine.
fn bash_command(line: &str) -> String {
    py_str(&format!("{{% raw %}}{line}{{% endraw %}}"))
}

/// A Python identifier for a task variable.
fn ident(name: &str, taken: &mut std::collections::HashSet<String>) -> String {
    let mut v: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if v.is_empty() || v.starts_with(|c: char| c.is_ascii_digit()) {
        v.insert_str(0, "t_");
    }
    let base = v.clone();
    let mut n = 1;
    while !taken.insert(v.clone()) || is_python_word(&v) {
        n += 1;
        v = format!("{base}_{n}");
    }
    v
}

fn is_python_word(v: &str) -> bool {
    matches!(
        v,
        "dag"
            | "datetime"
            | "timedelta"
            | "bashoperator"
            | "and"
            | "as"
            | "assert"
            | "async"
            | "await"
            | "break"
            | "class"
            | "continue"
            | "def"
            | "del"
            | "elif"
            | "else"
            | "except"
            | "finally"
            | "for"
            | "from"
            | "global"
            | "if"
            | "import"
            | "in"
            | "is"
            | "lambda"
            | "nonlocal"
            | "not"
            | "or"
            | "pass"
            | "raise"
            | "return"
            | "try"
            | "while"
            | "with"
            | "yield"
    )
}

/// An Airflow task id: letters, digits, `_`, `-` and `.` (node ids already are).
fn task_id(unit: &Unit) -> String {
    unit.name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_-.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The DAG file.
pub fn dag_file(p: &Pipeline, units: &[Unit], env: &JobEnv, dag_id: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\"\"\"Airflow DAG of the nexusml pipeline `{}` ({}).\n",
        crate::spec::names::printable(&p.name).replace('"', "'"),
        crate::spec::names::printable(&p.file.display().to_string()).replace('"', "'")
    );
    s.push_str(
        "Written by `nexusml dag export --to airflow`. Each task runs its nodes with\n\
         `nexusml dag run … --only …` against the shared artifact store, which carries every\n\
         artifact between tasks; a task whose nodes the store already holds does nothing.\n\
         Every worker needs the nexusml binary and the store at the paths below.\n\n\
         Kubernetes instead of the workers' shell: replace BashOperator with\n\
         KubernetesPodOperator (apache-airflow-providers-cncf-kubernetes), with an image that\n\
         holds nexusml, `cmds=[\"bash\", \"-c\"]`, `arguments=[<the task's bash_command>]`,\n\
         and `container_resources` from the resources noted on each task.\n\"\"\"\n",
    );
    s.push_str(
        "from datetime import datetime, timedelta\n\n\
         from airflow import DAG\n\n\
         try:  # Airflow 3\n    from airflow.providers.standard.operators.bash import BashOperator\n\
         except ImportError:  # Airflow 2\n    from airflow.operators.bash import BashOperator\n\n",
    );
    let _ = writeln!(s, "with DAG(");
    let _ = writeln!(s, "    dag_id={},", py_str(dag_id));
    let _ = writeln!(s, "    description={},", py_str(&p.description));
    s.push_str(
        "    schedule=None,\n    start_date=datetime(2026, 1, 1),\n    catchup=False,\n    tags=[\"nexusml\"],\n) as dag:\n",
    );
    let mut taken = std::collections::HashSet::new();
    let vars: Vec<String> = units.iter().map(|u| ident(&u.name, &mut taken)).collect();
    for (u, unit) in units.iter().enumerate() {
        let nodes: Vec<&str> = unit.nodes.iter().map(|&v| p.nodes[v].id.as_str()).collect();
        let _ = writeln!(s, "\n    # nodes: {}", nodes.join(", "));
        let r = &unit.resources;
        let noted: Vec<String> = [
            r.cpus.map(|c| format!("cpus={c}")),
            r.mem.as_ref().map(|m| format!("mem={m}")),
            r.time.as_ref().map(|t| format!("time={t}")),
            r.partition.as_ref().map(|q| format!("partition={q}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !noted.is_empty() {
            let _ = writeln!(
                s,
                "    # resources: {}",
                crate::spec::names::printable(&noted.join(", "))
            );
        }
        let words = command(p, unit, env);
        let id = task_id(unit);
        // A node's retries run inside its task's `nexusml dag run` (Airflow retrying the
        // task too would multiply the attempts); its timeouts bound the task, as they
        // bound a Slurm job's `--time`.
        let limits = match super::slurm::unit_worst_case_secs(p, unit) {
            Some(secs) => format!(
                "retries=0, execution_timeout=timedelta(seconds={})",
                secs.saturating_add(super::slurm::JOB_TIME_SLACK_SECS)
            ),
            None => "retries=0".to_string(),
        };
        // As a Slurm job's `--chdir`: relative paths given on the exporting command line
        // follow the directory it ran in.
        let cd = format!(
            "cd {} && ",
            super::shell_quote(&env.workdir.display().to_string())
        );
        match &unit.kind {
            UnitKind::Job => {
                let _ = writeln!(s, "    {} = BashOperator(", vars[u]);
                let _ = writeln!(s, "        task_id={},", py_str(&id));
                let _ = writeln!(s, "        {limits},");
                let _ = writeln!(
                    s,
                    "        bash_command={},",
                    bash_command(&format!("{cd}{}", shell_line(&words, "")))
                );
                let _ = writeln!(s, "    )");
            }
            UnitKind::Array { .. } => {
                // One mapped task instance per member.
                let lines: Vec<String> = super::slurm::task_ids(p, unit)
                    .iter()
                    .map(|t| {
                        let member: Vec<super::Word> = words
                            .iter()
                            .map(|w| match w {
                                super::Word::Task(prefix) => super::Word::Text(format!("{prefix}{t}")),
                                other => other.clone(),
                            })
                            .collect();
                        bash_command(&format!("{cd}{}", shell_line(&member, "")))
                    })
                    .collect();
                let _ = writeln!(
                    s,
                    "    {} = BashOperator.partial(task_id={}, {limits}).expand(",
                    vars[u],
                    py_str(&id)
                );
                let _ = writeln!(s, "        bash_command=[");
                for l in lines {
                    let _ = writeln!(s, "            {l},");
                }
                let _ = writeln!(s, "        ],");
                let _ = writeln!(s, "    )");
            }
        }
    }
    let edges: Vec<String> = units
        .iter()
        .enumerate()
        .flat_map(|(u, unit)| unit.deps.iter().map(move |&d| (d, u)))
        .map(|(d, u)| format!("    {} >> {}", vars[d], vars[u]))
        .collect();
    if !edges.is_empty() {
        s.push('\n');
        for e in edges {
            s.push_str(&e);
            s.push('\n');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_strings_hold_anything() {
        assert_eq!(py_str("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(py_str("x\ny\u{7}é"), r#""x\u000ay\u0007\u00e9""#);
        assert_eq!(py_str("🦀"), r#""\U0001f980""#);
        assert_eq!(
            bash_command("echo '{{x}}'"),
            r#""{% raw %}echo '{{x}}'{% endraw %}""#
        );
    }

    #[test]
    fn task_variables_are_identifiers_of_their_own() {
        let mut taken = std::collections::HashSet::new();
        assert_eq!(ident("load+4", &mut taken), "load_4");
        assert_eq!(ident("load-4", &mut taken), "load_4_2");
        assert_eq!(ident("9lives", &mut taken), "t_9lives");
        assert_eq!(ident("dag", &mut taken), "dag_2");
    }
}
