//! The placeholders of a command line: `{in.port}`, `{in.port:arrow}`, `{out.port}`,
//! `{out.port:csv}` and `{dir}`. Any other `{…}` is the command's own text (an awk
//! program, a Python dict), left as written.

/// Where a placeholder points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placeholder {
    /// An input's file (or directory) in the work directory, in a format for tables.
    In { port: String, format: Option<String> },
    /// Where the command writes an output.
    Out { port: String, format: Option<String> },
    /// The pipeline file's directory.
    Dir,
}

impl std::fmt::Display for Placeholder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (side, port, format) = match self {
            Placeholder::Dir => return f.write_str("{dir}"),
            Placeholder::In { port, format } => ("in", port, format),
            Placeholder::Out { port, format } => ("out", port, format),
        };
        match format {
            Some(x) => write!(f, "{{{side}.{port}:{x}}}"),
            None => write!(f, "{{{side}.{port}}}"),
        }
    }
}

/// A piece of a command word, the shell line or an environment value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Placeholder(Placeholder),
}

/// Table formats a placeholder may ask for.
pub const TABLE_FORMATS: [&str; 2] = ["csv", "arrow"];

/// Split `text` into literal text and placeholders.
pub fn parse(text: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        literal.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let is_ours = after.starts_with("in.") || after.starts_with("out.") || after.starts_with("dir}");
        if !is_ours {
            literal.push('{');
            rest = after;
            continue;
        }
        let Some(close) = after.find('}') else {
            return Err(format!("unterminated placeholder `{{{after}` in \"{text}\""));
        };
        let inner = &after[..close];
        let placeholder = if inner == "dir" {
            Placeholder::Dir
        } else {
            let (side, spec) = inner.split_once('.').unwrap_or((inner, ""));
            let (port, format) = match spec.split_once(':') {
                Some((p, f)) => (p, Some(f.to_string())),
                None => (spec, None),
            };
            let valid = |s: &str| {
                !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            };
            if !valid(port) {
                return Err(format!(
                    "placeholder `{{{inner}}}` names no port: write `{{{side}.<port>}}`"
                ));
            }
            if format.as_deref().is_some_and(|f| !valid(f)) {
                return Err(format!(
                    "placeholder `{{{inner}}}` has an empty or malformed format"
                ));
            }
            let port = port.to_string();
            if side == "in" {
                Placeholder::In { port, format }
            } else {
                Placeholder::Out { port, format }
            }
        };
        if !literal.is_empty() {
            pieces.push(Piece::Text(std::mem::take(&mut literal)));
        }
        pieces.push(Piece::Placeholder(placeholder));
        rest = &after[close + 1..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Piece {
        Piece::Text(s.into())
    }

    #[test]
    fn placeholders_and_the_commands_own_braces() {
        assert_eq!(
            parse("--in={in.raw:arrow} -o {out.clean}").unwrap(),
            [
                text("--in="),
                Piece::Placeholder(Placeholder::In {
                    port: "raw".into(),
                    format: Some("arrow".into())
                }),
                text(" -o "),
                Piece::Placeholder(Placeholder::Out {
                    port: "clean".into(),
                    format: None
                }),
            ]
        );
        assert_eq!(
            parse("awk '{print $1}' {dir}/x").unwrap()[0],
            text("awk '{print $1}' ")
        );
        assert_eq!(parse("{dir}").unwrap(), [Piece::Placeholder(Placeholder::Dir)]);
        assert_eq!(parse("{'a': 1}").unwrap(), [text("{'a': 1}")]);
        assert!(parse("{in.raw").unwrap_err().contains("unterminated"));
        assert!(parse("{in.}").unwrap_err().contains("names no port"));
        assert!(parse("{out.x:}").unwrap_err().contains("format"));
        assert_eq!(
            Placeholder::In {
                port: "raw".into(),
                format: Some("arrow".into())
            }
            .to_string(),
            "{in.raw:arrow}"
        );
    }
}
