//! Parameters: `--set` / `--params` overrides and `${name}` interpolation.

use std::collections::BTreeSet;
use toml::{Table, Value};

/// A `${name}` that names no parameter, or an unterminated reference.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum InterpolationError {
    #[error("`${{{name}}}` names no parameter")]
    Unknown { name: String },
    #[error("unterminated `${{` in \"{text}\"")]
    Unterminated { text: String },
    #[error("parameter `{name}` is of type {kind} and cannot be spliced into text \"{text}\"")]
    NotText {
        name: String,
        kind: &'static str,
        text: String,
    },
}

/// Which parameters were referenced, to warn about the others.
#[derive(Debug, Default)]
pub struct ParamUse {
    pub used: BTreeSet<String>,
}

/// Parse `key=value`; the value is read as TOML (so `3` stays an integer, `[1,2]` an array)
/// and taken as a plain string when it is not valid TOML (`data=my.csv`).
pub fn parse_override(text: &str) -> Result<(String, Value), super::SpecError> {
    let (key, raw) = text.split_once('=').ok_or_else(|| super::SpecError::Override {
        text: text.to_string(),
        reason: "expected KEY=VALUE".into(),
    })?;
    let key = key.trim();
    if key.is_empty() {
        return Err(super::SpecError::Override {
            text: text.to_string(),
            reason: "the key is empty".into(),
        });
    }
    let value = match format!("v = {raw}").parse::<Table>() {
        Ok(mut t) => t.remove("v").unwrap_or(Value::String(raw.to_string())),
        Err(_) => Value::String(raw.to_string()),
    };
    Ok((key.to_string(), value))
}

/// One piece of a string with `${name}` references.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Literal text.
    Text(&'a str),
    /// `${ name }`: the parameter's name, trimmed.
    Reference(&'a str),
}

/// An unterminated `${` (no `}` after it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unterminated;

/// Split `text` into literal text and `${name}` references: the one parser of
/// references. A name is what lies between `${` and the next `}`, trimmed. An
/// unterminated `${` ends the pieces with `Err(Unterminated)`.
pub fn pieces(text: &str) -> Pieces<'_> {
    Pieces { rest: Some(text) }
}

/// The iterator [`pieces`] returns.
pub struct Pieces<'a> {
    /// `None` once an unterminated reference was reported.
    rest: Option<&'a str>,
}

impl<'a> Iterator for Pieces<'a> {
    type Item = Result<Piece<'a>, Unterminated>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest.filter(|r| !r.is_empty())?;
        match rest.find("${") {
            None => {
                self.rest = Some("");
                Some(Ok(Piece::Text(rest)))
            }
            Some(0) => {
                let after = &rest[2..];
                match after.find('}') {
                    Some(end) => {
                        self.rest = Some(&after[end + 1..]);
                        Some(Ok(Piece::Reference(after[..end].trim())))
                    }
                    None => {
                        self.rest = None;
                        Some(Err(Unterminated))
                    }
                }
            }
            Some(start) => {
                self.rest = Some(&rest[start..]);
                Some(Ok(Piece::Text(&rest[..start])))
            }
        }
    }
}

/// The parameter `text` names when it is exactly one reference (`"${seed}"`, `"${ seed }"`):
/// such a value takes the parameter's value and type.
pub fn whole_reference(text: &str) -> Option<&str> {
    let mut it = pieces(text);
    match (it.next(), it.next()) {
        (Some(Ok(Piece::Reference(name))), None) => Some(name),
        _ => None,
    }
}

/// The parameter names `${name}` references in `text`, trimmed as interpolation trims
/// them (those before an unterminated `${`: interpolation reports that one).
pub fn referenced_params(text: &str) -> Vec<String> {
    pieces(text)
        .map_while(Result::ok)
        .filter_map(|p| match p {
            Piece::Reference(name) => Some(name.to_string()),
            Piece::Text(_) => None,
        })
        .collect()
}

/// Apply overrides in order; a later one wins.
pub fn apply_overrides(params: &mut Table, overrides: impl IntoIterator<Item = (String, Value)>) {
    for (k, v) in overrides {
        params.insert(k, v);
    }
}

/// Resolve every `${name}` inside `value` (recursively through arrays and tables).
///
/// A string that is exactly one reference takes the parameter's value and type
/// (`"${seed}"` → `42`); references inside longer text are spliced in as text.
pub fn interpolate(value: &Value, params: &Table, usage: &mut ParamUse) -> Result<Value, InterpolationError> {
    Ok(match value {
        Value::String(s) => interpolate_str(s, params, usage)?,
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| interpolate(v, params, usage))
                .collect::<Result<_, _>>()?,
        ),
        Value::Table(t) => Value::Table(
            t.iter()
                .map(|(k, v)| Ok((k.clone(), interpolate(v, params, usage)?)))
                .collect::<Result<_, InterpolationError>>()?,
        ),
        other => other.clone(),
    })
}

fn interpolate_str(s: &str, params: &Table, usage: &mut ParamUse) -> Result<Value, InterpolationError> {
    let lookup = |name: &str, usage: &mut ParamUse| -> Result<Value, InterpolationError> {
        let v = params
            .get(name)
            .ok_or_else(|| InterpolationError::Unknown { name: name.into() })?;
        usage.used.insert(name.to_string());
        Ok(v.clone())
    };
    if !s.contains("${") {
        return Ok(Value::String(s.to_string()));
    }
    let pieces = pieces(s)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|Unterminated| InterpolationError::Unterminated { text: s.into() })?;
    // Whole-string reference keeps the type.
    if let [Piece::Reference(name)] = pieces.as_slice() {
        return lookup(name, usage);
    }
    let mut out = String::with_capacity(s.len());
    for piece in pieces {
        let name = match piece {
            Piece::Text(text) => {
                out.push_str(text);
                continue;
            }
            Piece::Reference(name) => name,
        };
        match lookup(name, usage)? {
            Value::String(v) => out.push_str(&v),
            Value::Integer(i) => out.push_str(&i.to_string()),
            Value::Float(f) => out.push_str(&f.to_string()),
            Value::Boolean(b) => out.push_str(&b.to_string()),
            other => {
                return Err(InterpolationError::NotText {
                    name: name.into(),
                    kind: other.type_str(),
                    text: s.into(),
                })
            }
        }
    }
    Ok(Value::String(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Table {
        "seed = 42\ndata = \"in.csv\"\nratio = 0.3\nlist = [1, 2]"
            .parse()
            .unwrap()
    }

    #[test]
    fn whole_reference_keeps_type() {
        let mut u = ParamUse::default();
        let v = interpolate(&Value::String("${seed}".into()), &params(), &mut u).unwrap();
        assert_eq!(v, Value::Integer(42));
        let v = interpolate(&Value::String("${list}".into()), &params(), &mut u).unwrap();
        assert_eq!(v, Value::Array(vec![Value::Integer(1), Value::Integer(2)]));
        assert!(u.used.contains("seed") && u.used.contains("list"));
    }

    #[test]
    fn references_inside_text_are_spliced() {
        let mut u = ParamUse::default();
        let v = interpolate(&Value::String("dir/${data}-${ratio}".into()), &params(), &mut u).unwrap();
        assert_eq!(v, Value::String("dir/in.csv-0.3".into()));
    }

    #[test]
    fn unknown_and_unterminated_are_errors() {
        let mut u = ParamUse::default();
        let e = interpolate(&Value::String("${nope}".into()), &params(), &mut u).unwrap_err();
        assert_eq!(e.to_string(), "`${nope}` names no parameter");
        let e = interpolate(&Value::String("a ${seed".into()), &params(), &mut u).unwrap_err();
        assert!(matches!(e, InterpolationError::Unterminated { .. }));
        let e = interpolate(&Value::String("x${list}".into()), &params(), &mut u).unwrap_err();
        assert!(e.to_string().contains("is of type array"), "{e}");
    }

    #[test]
    fn one_parser_names_references_trimmed() {
        assert_eq!(whole_reference("${seed}"), Some("seed"));
        assert_eq!(whole_reference("${ seed }"), Some("seed"));
        assert_eq!(whole_reference("${a}${b}"), None);
        assert_eq!(whole_reference("x${a}"), None);
        assert_eq!(whole_reference("${a"), None);
        assert_eq!(whole_reference("plain"), None);
        assert_eq!(referenced_params("dir/${ data }-${ratio}"), ["data", "ratio"]);
        // The references before an unterminated one are still named.
        assert_eq!(referenced_params("${a} and ${b"), ["a"]);
        assert_eq!(
            pieces("a${b}c").collect::<Vec<_>>(),
            [
                Ok(Piece::Text("a")),
                Ok(Piece::Reference("b")),
                Ok(Piece::Text("c"))
            ]
        );
        // A spaced whole reference keeps the type, as `whole_reference` says.
        let mut u = ParamUse::default();
        let v = interpolate(&Value::String("${ seed }".into()), &params(), &mut u).unwrap();
        assert_eq!(v, Value::Integer(42));
    }

    #[test]
    fn overrides_parse_as_toml_or_text() {
        assert_eq!(parse_override("n=3").unwrap().1, Value::Integer(3));
        assert_eq!(parse_override("f=0.25").unwrap().1, Value::Float(0.25));
        assert_eq!(
            parse_override("data=my file.csv").unwrap().1,
            Value::String("my file.csv".into())
        );
        assert_eq!(
            parse_override("s=\"quoted\"").unwrap().1,
            Value::String("quoted".into())
        );
        assert!(parse_override("novalue").is_err());
    }
}
