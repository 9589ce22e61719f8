//! An op's `with` table: the Rust type it deserializes into, and each field's
//! documentation listed once beside that type. Defaults are never restated: what
//! `dag ops` shows is the type's own `Default`, serialized to TOML and looked up field
//! by field, and [`check_config_docs`] proves for every registered op that the list
//! names exactly the type's fields and that those defaults are the ones deserializing
//! gives.

use serde::de::{DeserializeOwned, Visitor};
use serde::Serialize;
use std::fmt::Write as _;

/// One `with` field as documented: its name, its type as written in TOML, whether a
/// pipeline must give it, and what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldDoc {
    pub name: &'static str,
    /// As written in TOML: `integer`, `[string]`, `"sqrt" | "log2" | "all"`.
    pub ty: &'static str,
    pub required: bool,
    pub doc: &'static str,
}

impl FieldDoc {
    /// A field the pipeline must give.
    pub const fn required(name: &'static str, ty: &'static str, doc: &'static str) -> Self {
        FieldDoc {
            name,
            ty,
            required: true,
            doc,
        }
    }

    /// A field with a default (the config type's own).
    pub const fn optional(name: &'static str, ty: &'static str, doc: &'static str) -> Self {
        FieldDoc {
            name,
            ty,
            required: false,
            doc,
        }
    }
}

/// The type an op reads its `with` table into (with `#[serde(deny_unknown_fields)]`),
/// and the documentation of each of its fields, in the order `dag ops` lists them.
///
/// `Default` holds every optional field at the value deserializing gives it when the
/// pipeline leaves it out; required fields hold placeholders, which are never shown.
pub trait OpConfig: DeserializeOwned + Serialize + Default + 'static {
    const FIELDS: &'static [FieldDoc];
}

/// The configuration of an op that takes none: `with` must be empty.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NoConfig {}

impl OpConfig for NoConfig {
    const FIELDS: &'static [FieldDoc] = &[];
}

/// One `with` field as `dag ops` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigField {
    pub name: &'static str,
    pub ty: &'static str,
    /// The default as TOML (`200`, `"sqrt"`, `{}`; `none` for an unset optional value);
    /// `None`: the field is required.
    pub default: Option<String>,
    pub doc: &'static str,
}

/// The fields of `C` for `dag ops`, each optional one with its default from
/// `C::default()`.
pub fn describe<C: OpConfig>() -> Vec<ConfigField> {
    let defaults = to_table(&C::default()).unwrap_or_default();
    C::FIELDS
        .iter()
        .map(|f| ConfigField {
            name: f.name,
            ty: f.ty,
            default: (!f.required).then(|| defaults.get(f.name).map_or_else(|| "none".to_string(), inline)),
            doc: f.doc,
        })
        .collect()
}

/// A value serialized as a TOML table.
fn to_table<T: Serialize>(value: &T) -> Result<toml::Table, String> {
    match toml::Value::try_from(value) {
        Ok(toml::Value::Table(t)) => Ok(t),
        Ok(other) => Err(format!("it serializes to a {}, not a table", other.type_str())),
        Err(e) => Err(e.to_string()),
    }
}

/// A TOML value on one line, as a pipeline would write it inline.
pub fn inline(value: &toml::Value) -> String {
    match value {
        toml::Value::Array(items) => format!("[{}]", items.iter().map(inline).collect::<Vec<_>>().join(", ")),
        toml::Value::Table(t) if t.is_empty() => "{}".to_string(),
        toml::Value::Table(t) => {
            let mut s = String::from("{ ");
            for (i, (k, v)) in t.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                let _ = write!(s, "{k} = {}", inline(v));
            }
            s.push_str(" }");
            s
        }
        other => other.to_string(),
    }
}

/// Every field name serde's derive gives `C`, documented or not (`None` when `C` does
/// not deserialize from a struct). Found by handing `C::deserialize` a deserializer
/// that only records the field list a derived struct passes to `deserialize_struct`.
pub fn field_names<C: DeserializeOwned>() -> Option<&'static [&'static str]> {
    let mut found = None;
    let _ = C::deserialize(FieldProbe { found: &mut found });
    found
}

struct FieldProbe<'a> {
    found: &'a mut Option<&'static [&'static str]>,
}

impl<'de> serde::Deserializer<'de> for FieldProbe<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.found = Some(fields);
        Err(serde::de::Error::custom("only the field names were wanted"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// What is wrong with `C`'s documentation, if anything: a documented field the type
/// lacks, a field of the type left undocumented, a field documented twice, a required
/// field that may be left out, or a default (from `C::default()`, what `dag ops`
/// shows) that differs from what deserializing the required fields alone gives.
pub fn check_config_docs<C: OpConfig>() -> Vec<String> {
    let mut problems = Vec::new();
    let Some(names) = field_names::<C>() else {
        return vec![format!(
            "{} does not deserialize from a table of fields",
            std::any::type_name::<C>()
        )];
    };
    for (i, f) in C::FIELDS.iter().enumerate() {
        if !names.contains(&f.name) {
            problems.push(format!("documents `{}`, which is no field of the type", f.name));
        }
        if C::FIELDS[..i].iter().any(|g| g.name == f.name) {
            problems.push(format!("documents `{}` twice", f.name));
        }
    }
    for name in names {
        if !C::FIELDS.iter().any(|f| f.name == *name) {
            problems.push(format!("field `{name}` is not documented"));
        }
    }
    let defaults = match to_table(&C::default()) {
        Ok(t) => t,
        Err(e) => {
            problems.push(format!("its Default does not serialize to TOML: {e}"));
            return problems;
        }
    };
    let mut required = toml::Table::new();
    for f in C::FIELDS.iter().filter(|f| f.required) {
        match defaults.get(f.name) {
            Some(v) => {
                required.insert(f.name.to_string(), v.clone());
            }
            None => problems.push(format!(
                "required field `{}` has no placeholder in its Default",
                f.name
            )),
        }
    }
    match toml::Value::Table(required.clone()).try_into::<C>() {
        Err(e) => problems.push(format!(
            "the required fields alone ({}) do not deserialize: {}",
            inline(&toml::Value::Table(required.clone())),
            e.message().trim()
        )),
        Ok(parsed) => match to_table(&parsed) {
            Err(e) => problems.push(format!("a deserialized value does not serialize back: {e}")),
            Ok(real) => {
                let keys = defaults
                    .keys()
                    .chain(real.keys().filter(|k| !defaults.contains_key(*k)));
                for key in keys {
                    let (shown, actual) = (defaults.get(key), real.get(key));
                    if shown != actual {
                        let show = |v: Option<&toml::Value>| v.map_or_else(|| "unset".to_string(), inline);
                        problems.push(format!(
                            "`{key}`: the default shown is {}, but leaving it out gives {}",
                            show(shown),
                            show(actual)
                        ));
                    }
                }
            }
        },
    }
    for f in C::FIELDS.iter().filter(|f| f.required) {
        let mut without = required.clone();
        without.remove(f.name);
        if toml::Value::Table(without).try_into::<C>().is_ok() {
            problems.push(format!(
                "`{}` is documented as required, but may be left out",
                f.name
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Good {
        path: String,
        #[serde(default = "three")]
        n: usize,
        #[serde(default)]
        depth: Option<usize>,
    }

    fn three() -> usize {
        3
    }

    impl Default for Good {
        fn default() -> Self {
            Good {
                path: String::new(),
                n: three(),
                depth: None,
            }
        }
    }

    impl OpConfig for Good {
        const FIELDS: &'static [FieldDoc] = &[
            FieldDoc::required("path", "string", "a file"),
            FieldDoc::optional("n", "integer", "how many"),
            FieldDoc::optional("depth", "integer", "how deep"),
        ];
    }

    /// `Good` with a wrong default (4 shown, 3 real), an undocumented field, a field
    /// documented that does not exist, and an optional field documented as required.
    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Bad {
        #[serde(default = "three")]
        n: usize,
        #[serde(default)]
        hidden: bool,
        #[serde(default)]
        maybe: String,
    }

    impl Default for Bad {
        fn default() -> Self {
            Bad {
                n: 4,
                hidden: false,
                maybe: String::new(),
            }
        }
    }

    impl OpConfig for Bad {
        const FIELDS: &'static [FieldDoc] = &[
            FieldDoc::optional("n", "integer", "how many"),
            FieldDoc::optional("ghost", "integer", "not there"),
            FieldDoc::required("maybe", "string", "not required at all"),
        ];
    }

    #[test]
    fn field_names_come_from_the_derive() {
        assert_eq!(field_names::<Good>(), Some(&["path", "n", "depth"][..]));
        assert_eq!(field_names::<toml::Table>(), None);
    }

    #[test]
    fn defaults_are_the_types_own() {
        assert!(
            check_config_docs::<Good>().is_empty(),
            "{:?}",
            check_config_docs::<Good>()
        );
        let shown = describe::<Good>();
        assert_eq!(shown[0].default, None);
        assert_eq!(shown[1].default.as_deref(), Some("3"));
        assert_eq!(shown[2].default.as_deref(), Some("none"));
    }

    #[test]
    fn every_kind_of_drift_is_found() {
        let problems = check_config_docs::<Bad>();
        assert_eq!(
            problems,
            [
                "documents `ghost`, which is no field of the type",
                "field `hidden` is not documented",
                "`n`: the default shown is 4, but leaving it out gives 3",
                "`maybe` is documented as required, but may be left out",
            ],
            "{problems:#?}"
        );
    }

    #[test]
    fn values_are_shown_inline() {
        let t: toml::Table = "a = [1, 2]\nb = {}\nc = { x = \"y\" }\nd = 0.9".parse().unwrap();
        let shown: Vec<String> = t.values().map(inline).collect();
        assert_eq!(shown, ["[1, 2]", "{}", "{ x = \"y\" }", "0.9"]);
    }
}
