//! Reading inventories into tables: the CSV dialects spreadsheets really produce.
//!
//! Every column is read as text unless a schema says otherwise (codes such as `0301`
//! must not become numbers). Byte-order marks (one or several) are stripped, header
//! names are trimmed, and a file that is not UTF-8 is decoded as Windows-1252 (the
//! superset of latin-1 that spreadsheets write) with a warning. Before polars parses the
//! text, a quote-aware scan finds ragged rows and unterminated quotes and names their line.

use indexmap::IndexMap;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::io::Cursor;
use std::path::{Path, PathBuf};

/// Reading a table failed.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("file not found: {path}")]
    Missing { path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}:{line}: a NUL byte (byte {offset}): this is a binary file, or UTF-16 text, not a CSV nexusml reads (save it as UTF-8 CSV)"
    )]
    Binary {
        path: PathBuf,
        line: usize,
        offset: usize,
    },
    #[error("{path} is empty: no header row")]
    Empty { path: PathBuf },
    #[error("{path}:{line}: row has {found} fields, the header has {expected}")]
    Ragged {
        path: PathBuf,
        line: usize,
        expected: usize,
        found: usize,
    },
    #[error("{path}:{line}: a quoted field is never closed")]
    UnterminatedQuote { path: PathBuf, line: usize },
    #[error("{path}: the header names column `{column}` twice")]
    DuplicateColumn { path: PathBuf, column: String },
    #[error("{path}: the schema names column `{column}`, which the file does not have")]
    SchemaColumn { path: PathBuf, column: String },
    #[error("{path}:{line}: column `{column}` should be {dtype}, found \"{value}\"")]
    BadValue {
        path: PathBuf,
        line: usize,
        column: String,
        dtype: ColumnType,
        value: String,
    },
    #[error("{path}: {source}")]
    Polars {
        path: PathBuf,
        #[source]
        source: PolarsError,
    },
    #[error("table has no column `{column}` (columns: {available})")]
    NoColumn { column: String, available: String },
    #[error("column `{column}` is not text")]
    NotText { column: String },
}

/// A column type a schema can ask for; everything else is text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    Str,
    F64,
    I64,
}

impl std::fmt::Display for ColumnType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ColumnType::Str => "text",
            ColumnType::F64 => "a number",
            ColumnType::I64 => "an integer",
        })
    }
}

/// How the file's bytes were decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    Utf8,
    Windows1252,
}

/// A table read from a CSV file, with what was done to read it.
pub struct LoadedCsv {
    pub frame: DataFrame,
    pub encoding: Encoding,
    pub boms_stripped: usize,
}

/// Read a CSV file: a regular file within [`crate::fsx::DATA`] (a FIFO, a device or a
/// larger file is refused before it is read).
pub fn read_csv(path: &Path, schema: &IndexMap<String, ColumnType>) -> Result<LoadedCsv, TableError> {
    let bytes = crate::fsx::read(path, crate::fsx::DATA).map_err(|e| {
        if e.is_not_found() {
            TableError::Missing { path: path.into() }
        } else {
            TableError::Read {
                path: path.into(),
                source: e.into_io(),
            }
        }
    })?;
    parse_csv(&bytes, path, schema)
}

/// Parse CSV bytes; `path` names them in messages.
pub fn parse_csv(
    bytes: &[u8],
    path: &Path,
    schema: &IndexMap<String, ColumnType>,
) -> Result<LoadedCsv, TableError> {
    // Neither UTF-8 nor Windows-1252 text has a NUL byte; refuse a binary file before decoding it
    // (a NUL-filled file would otherwise be parsed as one enormous field).
    if let Some(offset) = bytes.iter().position(|&b| b == 0) {
        let line = 1 + bytes[..offset].iter().filter(|&&b| b == b'\n').count();
        return Err(TableError::Binary {
            path: path.into(),
            line,
            offset,
        });
    }
    let (text, encoding, boms_stripped) = decode(bytes);
    if text.trim().is_empty() {
        return Err(TableError::Empty { path: path.into() });
    }
    let (blanks, row_lines) = check_shape(&text, path)?;
    let text = if blanks.is_empty() {
        text
    } else {
        cut(&text, &blanks)
    };
    let text = requote_bare_quotes(&text).unwrap_or(text);
    let header = header_names(&text);
    let mut seen = std::collections::HashSet::new();
    for name in &header {
        if !seen.insert(name.as_str()) {
            return Err(TableError::DuplicateColumn {
                path: path.into(),
                column: name.clone(),
            });
        }
    }
    // Every column as text; empty cells stay "" rather than null.
    let fields: Vec<Field> = header
        .iter()
        .map(|h| Field::new(h.as_str().into(), DataType::String))
        .collect();
    let polars_err = |source| TableError::Polars {
        path: path.into(),
        source,
    };
    let mut frame = CsvReadOptions::default()
        .with_has_header(true)
        .with_schema(Some(Arc::new(Schema::from_iter(fields))))
        .with_parse_options(CsvParseOptions::default().with_missing_is_null(false))
        .into_reader_with_file_handle(Cursor::new(text.into_bytes()))
        .finish()
        .map_err(polars_err)?;
    for (name, &dtype) in schema {
        if dtype == ColumnType::Str {
            continue;
        }
        let column = frame.column(name).map_err(|_| TableError::SchemaColumn {
            path: path.into(),
            column: name.clone(),
        })?;
        let typed = parse_column(column, dtype).map_err(|(row, value)| TableError::BadValue {
            path: path.into(),
            line: row_lines.get(row + 1).copied().unwrap_or(row + 2),
            column: name.clone(),
            dtype,
            value,
        })?;
        frame.with_column(typed).map_err(polars_err)?;
    }
    Ok(LoadedCsv {
        frame,
        encoding,
        boms_stripped,
    })
}

/// Text of a column parsed as numbers; empty cells become null. Error: (row, value).
fn parse_column(column: &Column, dtype: ColumnType) -> Result<Column, (usize, String)> {
    let name = column.name().clone();
    match dtype {
        ColumnType::F64 => Ok(Column::new(name, parse_cells::<f64>(column)?)),
        ColumnType::I64 => Ok(Column::new(name, parse_cells::<i64>(column)?)),
        ColumnType::Str => Ok(column.clone()),
    }
}

fn parse_cells<T: std::str::FromStr>(column: &Column) -> Result<Vec<Option<T>>, (usize, String)> {
    let strings = column.str().map_err(|_| (0, String::new()))?;
    strings
        .iter()
        .enumerate()
        .map(|(row, v)| match v.map(str::trim).unwrap_or("") {
            "" => Ok(None),
            s => s.parse::<T>().map(Some).map_err(|_| (row, s.to_string())),
        })
        .collect()
}

/// UTF-8 (BOMs stripped) or, failing that, Windows-1252.
pub fn decode(bytes: &[u8]) -> (String, Encoding, usize) {
    let mut rest = bytes;
    let mut boms = 0;
    while let Some(r) = rest.strip_prefix(b"\xEF\xBB\xBF") {
        rest = r;
        boms += 1;
    }
    match std::str::from_utf8(rest) {
        Ok(s) => (s.to_string(), Encoding::Utf8, boms),
        Err(_) => (
            rest.iter().map(|&b| windows_1252(b)).collect(),
            Encoding::Windows1252,
            boms,
        ),
    }
}

/// One Windows-1252 byte as a char: latin-1 except 0x80–0x9F, where 1252 has
/// typographic characters (€, curly quotes, dashes...).
fn windows_1252(b: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8D}', 'Ž', '\u{8F}',
        '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9D}', 'ž', 'Ÿ',
    ];
    match b {
        0x80..=0x9F => HIGH[usize::from(b - 0x80)],
        _ => char::from(b),
    }
}

/// `text` without the byte ranges `cuts` (sorted, disjoint).
fn cut(text: &str, cuts: &[(usize, usize)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for &(start, end) in cuts {
        out.push_str(&text[at..start]);
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

/// Walk the records (quotes may hold commas and newlines) and check that every row has
/// as many fields as the header. Returns the byte ranges of blank lines, which are not
/// rows (as pandas' `skip_blank_lines`), and the line each record starts on (header first).
type Shape = (Vec<(usize, usize)>, Vec<usize>);

fn check_shape(text: &str, path: &Path) -> Result<Shape, TableError> {
    let bytes = text.as_bytes();
    let mut expected = None;
    let mut fields = 1;
    let mut line = 1;
    let mut record_line = 1;
    let mut in_quotes = false;
    let mut quote_line = 0;
    let mut field_start = true;
    let mut empty_record = true;
    let mut record_start = 0;
    let mut blanks = Vec::new();
    let mut row_lines = Vec::new();
    let mut i = 0;
    let mut end_record = |fields: usize, empty: bool, record_line: usize| -> Result<(), TableError> {
        if empty {
            return Ok(());
        }
        match expected {
            None => expected = Some(fields),
            Some(n) if n != fields => {
                return Err(TableError::Ragged {
                    path: path.into(),
                    line: record_line,
                    expected: n,
                    found: fields,
                })
            }
            _ => {}
        }
        Ok(())
    };
    while i < bytes.len() {
        let b = bytes[i];
        if in_quotes {
            match b {
                b'"' if bytes.get(i + 1) == Some(&b'"') => i += 1,
                // Only a quote a separator follows closes the field; another is a character
                // (`"Pump 4" inlet"`), so an unclosed quote is reported where it opened.
                b'"' if closes_field(bytes, i) => in_quotes = false,
                b'"' => {}
                b'\n' => line += 1,
                _ => {}
            }
        } else {
            match b {
                // A quote opens a quoted field only at the field's start; inside a field it
                // is a character (`12" pipe`), as polars and pandas read it.
                b'"' if field_start => {
                    in_quotes = true;
                    quote_line = line;
                    empty_record = false;
                }
                b',' => {
                    fields += 1;
                    empty_record = false;
                    field_start = true;
                    i += 1;
                    continue;
                }
                b'\n' => {
                    end_record(fields, empty_record, record_line)?;
                    if empty_record {
                        blanks.push((record_start, i + 1));
                    } else {
                        row_lines.push(record_line);
                    }
                    record_start = i + 1;
                    line += 1;
                    record_line = line;
                    fields = 1;
                    empty_record = true;
                    field_start = true;
                    i += 1;
                    continue;
                }
                b'\r' => {}
                _ => empty_record = false,
            }
        }
        field_start = false;
        i += 1;
    }
    if in_quotes {
        return Err(TableError::UnterminatedQuote {
            path: path.into(),
            line: quote_line,
        });
    }
    end_record(fields, empty_record, record_line)?;
    if !empty_record {
        row_lines.push(record_line);
    }
    Ok((blanks, row_lines))
}

/// A quote at `i` ends a quoted field: a separator or the end follows it.
fn closes_field(bytes: &[u8], i: usize) -> bool {
    matches!(bytes.get(i + 1), None | Some(b',' | b'\n' | b'\r'))
}

/// Quotes polars would misread, made explicit: a field holding a quote that does not
/// open it (`12" pipe`, an inch mark) and a quoted field holding a lone quote that no
/// separator follows are rewritten as properly quoted fields (`"12"" pipe"`), so the
/// quote stays a character, as [`check_shape`] read it. `None` when there is none.
fn requote_bare_quotes(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0; // text[..copied] is in `out` (once `out` exists)
    let mut i = 0;
    while i <= bytes.len() {
        // At a field's start: find its end and whether it needs rewriting.
        let start = i;
        let (content, needs) = if bytes.get(i) == Some(&b'"') {
            i += 1;
            let mut lone = false;
            while i < bytes.len() {
                if bytes[i] == b'"' {
                    if bytes.get(i + 1) == Some(&b'"') {
                        i += 2;
                        continue;
                    }
                    if closes_field(bytes, i) {
                        break;
                    }
                    lone = true;
                }
                i += 1;
            }
            let content = text[start + 1..i.min(bytes.len())].replace("\"\"", "\"");
            i += 1; // the closing quote
            (content, lone)
        } else {
            while i < bytes.len() && !matches!(bytes[i], b',' | b'\n' | b'\r') {
                i += 1;
            }
            let field = &text[start..i];
            (field.to_string(), field.contains('"'))
        };
        let end = i.min(bytes.len());
        if needs {
            let o = out.get_or_insert_with(|| String::with_capacity(text.len() + 16));
            o.push_str(&text[copied..start]);
            o.push('"');
            o.push_str(&content.replace('"', "\"\""));
            o.push('"');
            copied = end;
        }
        i = end + 1; // past the separator
    }
    out.map(|mut o| {
        o.push_str(&text[copied.min(text.len())..]);
        o
    })
}

/// The header row's names, unquoted and trimmed.
fn header_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, in_quotes) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => in_quotes = !in_quotes,
            (',', false) => names.push(std::mem::take(&mut cur)),
            ('\n', false) => break,
            ('\r', false) => {}
            (c, _) => cur.push(c),
        }
    }
    names.push(cur);
    names.into_iter().map(|n| n.trim().to_string()).collect()
}

/// The values of a text column (nulls as "").
pub fn text_column(frame: &DataFrame, name: &str) -> Result<Vec<String>, TableError> {
    let column = frame.column(name).map_err(|_| no_column(frame, name))?;
    let strings = column
        .str()
        .map_err(|_| TableError::NotText { column: name.into() })?;
    Ok(strings.iter().map(|v| v.unwrap_or("").to_string()).collect())
}

/// The error for a missing column, listing the ones that exist.
pub fn no_column(frame: &DataFrame, name: &str) -> TableError {
    TableError::NoColumn {
        column: name.into(),
        available: column_names(frame).join(", "),
    }
}

pub fn column_names(frame: &DataFrame) -> Vec<String> {
    frame.get_column_names().iter().map(|s| s.to_string()).collect()
}

/// Rows `idx` of `frame`, in that order.
pub fn take_rows(frame: &DataFrame, idx: &[usize]) -> Result<DataFrame, PolarsError> {
    let idx: Vec<IdxSize> = idx.iter().map(|&i| i as IdxSize).collect();
    frame.take(&IdxCa::from_vec("idx".into(), idx))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<LoadedCsv, TableError> {
        parse_csv(bytes, Path::new("t.csv"), &IndexMap::new())
    }

    #[test]
    fn strips_boms_and_trims_headers_and_keeps_text() {
        let t = parse(b"\xEF\xBB\xBF\xEF\xBB\xBF code , name\n0301,\"Pump, CHW\"\n0302,\n").unwrap();
        assert_eq!(t.boms_stripped, 2);
        assert_eq!(column_names(&t.frame), ["code", "name"]);
        assert_eq!(text_column(&t.frame, "code").unwrap(), ["0301", "0302"]);
        assert_eq!(text_column(&t.frame, "name").unwrap(), ["Pump, CHW", ""]);
    }

    #[test]
    fn doubled_quotes_and_newlines_in_quotes() {
        let t = parse(b"a,b\n\"say \"\"hi\"\"\",\"two\nlines\"\n").unwrap();
        assert_eq!(text_column(&t.frame, "a").unwrap(), ["say \"hi\""]);
        assert_eq!(text_column(&t.frame, "b").unwrap(), ["two\nlines"]);
    }

    #[test]
    fn a_quote_inside_a_field_is_a_character() {
        // Inch marks, as real inventories write them; and a quoted field beside them.
        let t = parse(b"size,desc\n12\" pipe,\"Pump, 4\"\" inlet\"\r\n6\",x\"y\"\n").unwrap();
        assert_eq!(text_column(&t.frame, "size").unwrap(), ["12\" pipe", "6\""]);
        assert_eq!(
            text_column(&t.frame, "desc").unwrap(),
            ["Pump, 4\" inlet", "x\"y\""]
        );
        // A lone quote inside a quoted field, which no separator follows.
        let t = parse(b"a,b\n\"Valve 2\" gate\",1\n").unwrap();
        assert_eq!(text_column(&t.frame, "a").unwrap(), ["Valve 2\" gate"]);
        assert_eq!(text_column(&t.frame, "b").unwrap(), ["1"]);
    }

    #[test]
    fn an_unclosed_quote_is_reported_where_it_opened() {
        // An inch mark further down must not close it (and move the report to the end).
        let mut csv = b"a,b\n1,2\n3,\"open\n".to_vec();
        for i in 0..3000 {
            csv.extend_from_slice(format!("{i},12\" pipe\n").as_bytes());
        }
        let e = parse(&csv).err().unwrap();
        assert_eq!(e.to_string(), "t.csv:3: a quoted field is never closed");
    }

    #[test]
    fn latin1_falls_back_with_the_right_characters() {
        let t = parse(b"name\nCaf\xe9 \x80 \x96 \x93ok\x94\n").unwrap();
        assert_eq!(t.encoding, Encoding::Windows1252);
        assert_eq!(text_column(&t.frame, "name").unwrap(), ["Café € – “ok”"]);
    }

    #[test]
    fn ragged_rows_name_the_line() {
        let e = parse(b"a,b\n1,2\n\"x,y\",3\n4,5,6\n").err().unwrap();
        assert_eq!(e.to_string(), "t.csv:4: row has 3 fields, the header has 2");
        let e = parse(b"a,b\n1\n").err().unwrap();
        assert_eq!(e.to_string(), "t.csv:2: row has 1 fields, the header has 2");
        let e = parse(b"a,b\n1,\"open\n").err().unwrap();
        assert_eq!(e.to_string(), "t.csv:2: a quoted field is never closed");
    }

    #[test]
    fn schema_types_and_bad_values() {
        let mut schema = IndexMap::new();
        schema.insert("cost".to_string(), ColumnType::F64);
        let t = parse_csv(b"cost\n1.5\n\n2\n", Path::new("t.csv"), &schema).unwrap();
        let cost = t
            .frame
            .column("cost")
            .unwrap()
            .f64()
            .unwrap()
            .iter()
            .collect::<Vec<_>>();
        assert_eq!(cost, [Some(1.5), Some(2.0)]);
        let t = parse_csv(b"cost,x\n1.5,a\n\n2,b\n", Path::new("t.csv"), &schema).unwrap();
        assert_eq!(t.frame.height(), 2, "blank lines between rows are skipped");
        let e = parse_csv(b"cost\n1.5\n$12,500\n", Path::new("t.csv"), &schema).err();
        // "$12,500" unquoted is two fields: a ragged row, caught first.
        assert!(e.unwrap().to_string().contains("t.csv:3: row has 2 fields"));
        let e = parse_csv(b"cost\n1.5\n\nN/A\n", Path::new("t.csv"), &schema)
            .err()
            .unwrap();
        assert_eq!(
            e.to_string(),
            "t.csv:4: column `cost` should be a number, found \"N/A\""
        );
    }

    #[test]
    fn empty_and_duplicate_headers_are_errors() {
        assert!(matches!(parse(b"").err().unwrap(), TableError::Empty { .. }));
        let e = parse(b"a, a\n1,2\n").err().unwrap();
        assert_eq!(e.to_string(), "t.csv: the header names column `a` twice");
    }
}
