//! A seeded generator of realistic facility-equipment inventories.
//!
//! Rows look like what a facilities team exports from a CMMS: abbreviation-based tags
//! (`AHU-3`, `CHWP-2A`, `EF-B1-04`), real manufacturers and model-number shapes, sizes in
//! field notation (`15,000 CFM`, `25 hp`, `4"`), free-text descriptions with
//! abbreviations, typos and missing words, and the classic NexusML classification
//! columns. The noise is deliberate: neighbouring categories share vocabulary, some rows
//! carry no category word at all and about 1.5% are mislabelled, so a text classifier
//! lands around 0.85–0.95 accuracy instead of a trivial 1.0.
//!
//! Every row is drawn from its own generator seeded with
//! `derive_seed(seed, ["row", i])`, so the output for a given `(rows, seed)` is
//! byte-identical on every platform and row `i` does not depend on the others.

mod catalog;
mod text;

pub use catalog::{
    catalog, Discipline, EquipmentKind, Maker, Size, Unit, AIR, CHW, CW, DRAIN, ELEC, EPWR, FIRE, HVAC, HW,
    LIFE, MCAA_CATEGORIES, PLUMB, STEAM,
};

use crate::ml::rng::{derive_seed, Rng};
use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Output columns, in order.
pub const COLUMNS: [&str; 19] = [
    "equipment_tag",
    "manufacturer",
    "model",
    "category_name",
    "omniclass_code",
    "uniformat_code",
    "masterformat_code",
    "mcaa_system_category",
    "building_name",
    "initial_cost",
    "condition_score",
    "CategoryID",
    "OmniClassID",
    "UniFormatID",
    "MasterFormatID",
    "MCAAID",
    "LocationID",
    "description",
    "service_life",
];

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynthOptions {
    pub rows: usize,
    pub seed: u64,
}

/// What was generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynthSummary {
    pub rows: usize,
    /// Distinct `category_name` values written.
    pub categories: usize,
    /// Rows whose labels were deliberately taken from a similar kind.
    pub mislabelled: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("cannot write {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("output path {path} has no file name")]
    NoFileName { path: PathBuf },
    #[error("--rows {rows} is more than the limit of {MAX_ROWS} (a larger file would pass the 1 GiB a CSV data file may have)")]
    TooManyRows { rows: usize },
}

/// The most rows `data synth` writes: about 180 bytes a row, so the file stays under the
/// size an inventory CSV may have ([`crate::fsx::DATA`]).
pub const MAX_ROWS: usize = 5_000_000;

/// Refuse a row count past [`MAX_ROWS`], before anything is written.
pub fn check_rows(rows: usize) -> Result<(), SynthError> {
    if rows > MAX_ROWS {
        return Err(SynthError::TooManyRows { rows });
    }
    Ok(())
}

// ------------------------------------------------------------------ noise calibration
/// Share of rows whose labels come from a similar kind.
const P_MISLABEL: f64 = 0.015;
/// Share of rows with an empty description.
const P_DESC_EMPTY: f64 = 0.045;
/// Per-word chance of a keyboard slip.
const P_TYPO: f64 = 0.03;
/// Per-word chance of being dropped.
const P_DROP: f64 = 0.06;
const P_UPPER: f64 = 0.14;
const P_LOWER: f64 = 0.14;
const P_MAKER_EMPTY: f64 = 0.06;
const P_MODEL_EMPTY: f64 = 0.06;
const P_COST_EMPTY: f64 = 0.08;

/// Buildings: (name, short code used in some tags).
const BUILDINGS: &[(&str, &str)] = &[
    ("Science Hall, Annex", "SHA"),
    ("Administration Building", "ADM"),
    ("Central Utility Plant", "CUP"),
    ("Memorial Library", "LIB"),
    ("Student Union", "SU"),
    ("Engineering Center", "ENG"),
    ("Medical Center, Tower B", "MCB"),
    ("North Parking Garage", "NPG"),
    ("Recreation Center", "REC"),
    ("Fine Arts Building", "FA"),
    ("Residence Hall A", "RHA"),
    ("Residence Hall B", "RHB"),
    ("Data Center", "DC1"),
    ("Maintenance Shop", "MS"),
    ("Municipal Building", "MUN"),
    ("Police Headquarters", "PD"),
    ("Fire Station No. 3", "FS3"),
    ("Convention Center, Hall C", "CCC"),
    ("Lincoln Elementary School", "LES"),
    ("Central High School, Gymnasium", "HSG"),
    ("County Courthouse", "CTH"),
    ("Public Works Yard", "PW"),
    ("Research Laboratory 2", "RL2"),
    ("Hospital East Wing", "HEW"),
    ("Office Tower One", "OT1"),
    ("Performing Arts Center", "PAC"),
];

const FLOORS: &[&str] = &[
    "1st floor",
    "2nd floor",
    "3rd flr",
    "4th fl",
    "5th floor",
    "ground floor",
    "basement",
    "level 2",
    "level 3",
    "lower level",
    "mezzanine",
];
const WINGS: &[&str] = &[
    "east",
    "west",
    "north",
    "south",
    "NE",
    "SW",
    "north wing",
    "east wing",
    "addition",
];
const AREAS: &[&str] = &[
    "lab wing",
    "gym",
    "kitchen",
    "auditorium",
    "lobby",
    "classrooms",
    "admin offices",
    "locker rooms",
    "library stacks",
    "corridor",
    "conference rooms",
    "server room",
    "clinic",
    "cafeteria",
    "natatorium",
    "lecture hall",
    "dorm rooms",
    "studio",
    "shop",
];
const ROOMS: &[&str] = &[
    "mech rm",
    "mech room",
    "MER",
    "boiler room",
    "elec rm",
    "electrical room",
    "penthouse",
    "roof",
    "basement",
    "attic",
    "CUP",
    "janitor closet",
    "IDF",
    "above ceiling rm",
    "pump room",
    "fan room",
];
const FLOOR_CODES: &[&str] = &["B1", "B2", "R", "1", "2", "3", "4", "P", "M", "G"];

struct Row {
    cells: [String; 19],
}

struct Tables {
    cumulative: Vec<u32>,
    total: u32,
    omniclass_ids: HashMap<&'static str, usize>,
    uniformat_ids: HashMap<&'static str, usize>,
    masterformat_ids: HashMap<&'static str, usize>,
    mcaa_ids: HashMap<&'static str, usize>,
    similar: Vec<Vec<usize>>,
}

fn first_seen_ids(values: impl Iterator<Item = &'static str>) -> HashMap<&'static str, usize> {
    let mut ids = HashMap::new();
    for v in values {
        let next = ids.len() + 1;
        ids.entry(v).or_insert(next);
    }
    ids
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let kinds = catalog();
        let mut cumulative = Vec::with_capacity(kinds.len());
        let mut total = 0;
        for k in kinds {
            total += k.weight;
            cumulative.push(total);
        }
        let index: HashMap<&str, usize> = kinds
            .iter()
            .enumerate()
            .map(|(i, k)| (k.category_name, i))
            .collect();
        let similar = kinds
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let mut s: Vec<usize> = k
                    .similar
                    .iter()
                    .filter_map(|name| index.get(name).copied())
                    .filter(|&j| j != i)
                    .collect();
                if s.is_empty() {
                    s = (0..kinds.len())
                        .filter(|&j| j != i && kinds[j].mcaa_system_category == k.mcaa_system_category)
                        .collect();
                }
                s
            })
            .collect();
        Tables {
            cumulative,
            total,
            omniclass_ids: first_seen_ids(kinds.iter().map(|k| k.omniclass_code)),
            uniformat_ids: first_seen_ids(kinds.iter().map(|k| k.uniformat_code)),
            masterformat_ids: first_seen_ids(kinds.iter().map(|k| k.masterformat_code)),
            mcaa_ids: first_seen_ids(MCAA_CATEGORIES.iter().copied()),
            similar,
        }
    })
}

fn pick_kind(rng: &mut Rng) -> usize {
    let t = tables();
    let r = rng.below(t.total as usize) as u32;
    t.cumulative.partition_point(|&c| c <= r)
}

/// Other spellings of a manufacturer seen in real inventories.
fn maker_aliases(name: &str) -> &'static [&'static str] {
    match name {
        "Bell & Gossett" => &["B&G", "Bell and Gossett", "Xylem B&G"],
        "A.O. Smith" => &["AO Smith", "A O Smith"],
        "Baltimore Aircoil" => &["BAC", "Baltimore Air Coil"],
        "Cutler-Hammer" => &["Cutler Hammer", "Eaton/Cutler-Hammer"],
        "Eaton" => &["Eaton/Cutler-Hammer", "Eaton Corp"],
        "Loren Cook" => &["Cook", "Loren Cook Co"],
        "Liebert" => &["Vertiv/Liebert", "Emerson Liebert"],
        "Johnson Controls" => &["JCI", "Johnson"],
        "Square D" => &["Schneider Electric", "Sq D"],
        "Cleaver-Brooks" => &["Cleaver Brooks", "CB"],
        "Allen-Bradley" => &["Allen Bradley", "Rockwell"],
        "Zurn Wilkins" => &["Wilkins", "Zurn"],
        "Marley" => &["SPX Marley", "Marley/SPX"],
        "McQuay" => &["Daikin McQuay", "McQuay Intl"],
        "Daikin" => &["Daikin Applied"],
        "Trane" => &["Trane/American Standard"],
        "Carrier" => &["Carrier Corp", "Bryant/Carrier"],
        "York" => &["York/JCI", "YORK Intl"],
        "Greenheck" => &["Greenheck Fan"],
        "Mitsubishi" => &["Mitsubishi Electric"],
        "Caterpillar" => &["CAT", "Cat/Olympian"],
        "Siemens" => &["Siemens Building Tech", "Siemens Industry"],
        "Grundfos" => &["Grundfos Pumps"],
        "Aurora" => &["Aurora Pump", "Pentair Aurora"],
        _ => &[],
    }
}

/// A service / location phrase.
fn service_phrase(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 => format!("serves {} {}", rng.pick(FLOORS), rng.pick(WINGS)),
        1 => format!("serving {}", rng.pick(AREAS)),
        2 => format!("{} {}", rng.pick(ROOMS), 100 + rng.below(400)),
        3 => rng.pick(ROOMS).to_string(),
        4 => format!("serves {}", rng.pick(AREAS)),
        _ => format!("{} {}", rng.pick(FLOORS), rng.pick(WINGS)),
    }
}

fn equipment_tag(rng: &mut Rng, kind: &EquipmentKind, building_code: &str) -> String {
    let r = rng.next_f64();
    if r < 0.06 {
        return String::new();
    }
    if r < 0.13 {
        return match rng.below(4) {
            0 => format!("{}", 1000 + rng.below(9000)),
            1 => format!("A-{:05}", rng.below(100000)),
            2 => format!("EQ-{:04}", rng.below(10000)),
            _ => format!("{}", 10 + rng.below(990)),
        };
    }
    let prefix = if r < 0.25 && !kind.generic_tags.is_empty() {
        *rng.pick(kind.generic_tags)
    } else if rng.chance(0.6) {
        kind.abbreviations[0]
    } else {
        *rng.pick(kind.abbreviations)
    };
    let span = if rng.chance(0.8) { 12 } else { 40 };
    let n = 1 + rng.below(span);
    match rng.below(20) {
        0..=6 => format!("{prefix}-{n}"),
        7 | 8 => format!("{prefix}-{n:02}"),
        9 => format!("{prefix}{n}"),
        10 | 11 => format!("{prefix} {n}"),
        12 | 13 => format!("{prefix}-{n}{}", if rng.chance(0.5) { "A" } else { "B" }),
        14 | 15 => format!("{prefix}-{}-{n:02}", rng.pick(FLOOR_CODES)),
        16 | 17 => format!("{building_code}-{prefix}-{n}"),
        _ => format!("{prefix}-{}{:02}", 1 + rng.below(4), n),
    }
}

/// The word(s) naming the equipment in a description, or nothing.
fn equipment_word(rng: &mut Rng, kind: &EquipmentKind) -> String {
    let r = rng.next_f64();
    if r < 0.55 {
        rng.pick(kind.names).to_string()
    } else if r < 0.70 {
        rng.pick(kind.abbreviations).to_string()
    } else if r < 0.92 && !kind.generic_names.is_empty() {
        rng.pick(kind.generic_names).to_string()
    } else {
        String::new()
    }
}

fn description(rng: &mut Rng, kind: &EquipmentKind, sizes: &[String], maker: &str, model: &str) -> String {
    if rng.chance(P_DESC_EMPTY) {
        return String::new();
    }
    let name = equipment_word(rng, kind);
    let size = match sizes.len() {
        0 => String::new(),
        1 => {
            if rng.chance(0.75) {
                sizes[0].clone()
            } else {
                String::new()
            }
        }
        _ => match rng.below(4) {
            0 => sizes[0].clone(),
            1 => sizes[1].clone(),
            2 => format!("{} {}", sizes[0], sizes[1]),
            _ => format!("{} @ {}", sizes[0], sizes[1]),
        },
    };
    let feat = if !kind.features.is_empty() && rng.chance(0.55) {
        let first = rng.pick(kind.features).to_string();
        if rng.chance(0.25) {
            format!("{first}, {}", rng.pick(kind.features))
        } else {
            first
        }
    } else {
        String::new()
    };
    let svc = if rng.chance(0.45) {
        service_phrase(rng)
    } else {
        String::new()
    };
    let maker_model = format!("{maker} {model}");
    let parts: Vec<&str> = match rng.below(10) {
        0..=2 => vec![&name, &size, &feat, &svc],
        3 => vec![&name, ",", &maker_model],
        4 => vec![&size, &name, &feat],
        5 => vec![&maker_model, &size, &feat],
        6 => vec![&name],
        7 => vec![&name, "-", &svc],
        8 => vec![&feat, &name, &size],
        _ => vec![&maker, &name, &size, &svc],
    };
    let joined = parts
        .iter()
        .filter(|p| !p.trim().is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
        .replace(" ,", ",");
    let mut words: Vec<String> = joined.split_whitespace().map(str::to_string).collect();
    // Leading/trailing separators left by empty parts.
    while words.first().is_some_and(|w| w == "-" || w == ",") {
        words.remove(0);
    }
    while words.last().is_some_and(|w| w == "-" || w == ",") {
        words.pop();
    }
    if words.len() > 2 {
        words.retain(|_| !rng.chance(P_DROP));
    }
    if words.len() > 2 && rng.chance(0.08) {
        let i = rng.below(words.len() - 1);
        words.swap(i, i + 1);
    }
    for w in &mut words {
        if rng.chance(P_TYPO) {
            *w = text::typo(rng, w);
        }
    }
    let mut out = words.join(" ");
    let r = rng.next_f64();
    if r < P_UPPER {
        out = out.to_uppercase();
    } else if r < P_UPPER + P_LOWER {
        out = out.to_lowercase();
    }
    out
}

fn service_life(rng: &mut Rng, kind: &EquipmentKind) -> String {
    let r = rng.next_f64();
    if r < 0.06 {
        return String::new();
    }
    if r < 0.09 {
        return rng.pick(&["N/A", "unknown", "TBD", "n/a"]).to_string();
    }
    let (lo, hi) = kind.service_life;
    let mut years = (lo + rng.below((hi - lo + 1) as usize) as u32) as i64;
    if rng.chance(0.12) {
        years += rng.below(11) as i64 - 5;
    }
    format!("{}", years.max(3))
}

fn make_row(seed: u64, i: usize) -> (Row, bool) {
    let mut rng = Rng::new(derive_seed(seed, &[b"row", &(i as u64).to_le_bytes()]));
    let kinds = catalog();
    let t = tables();
    let ki = pick_kind(&mut rng);
    let kind = &kinds[ki];
    let (building, building_code) = *rng.pick(BUILDINGS);
    let location_id = BUILDINGS.iter().position(|(b, _)| *b == building).unwrap_or(0) + 1;

    let maker = *rng.pick(kind.makers);
    let pattern = *rng.pick(maker.models);
    let model = text::fill_pattern(&mut rng, pattern);
    let size_values: Vec<(Unit, f64, f64)> = kind
        .sizes
        .iter()
        .map(|s| {
            let v = text::sample_size(&mut rng, s);
            (s.unit, v, text::size_fraction(s, v))
        })
        .collect();
    let size_text: Vec<String> = size_values
        .iter()
        .map(|&(u, v, _)| text::format_size(&mut rng, u, v))
        .collect();

    let maker_field = if rng.chance(P_MAKER_EMPTY) {
        String::new()
    } else {
        let aliases = maker_aliases(maker.name);
        let r = rng.next_f64();
        if r < 0.12 && !aliases.is_empty() {
            rng.pick(aliases).to_string()
        } else if r < 0.18 {
            maker.name.to_uppercase()
        } else {
            maker.name.to_string()
        }
    };
    let model_field = {
        let r = rng.next_f64();
        if r < P_MODEL_EMPTY {
            String::new()
        } else if r < P_MODEL_EMPTY + 0.02 {
            rng.pick(&["N/A", "UNKNOWN", "unk", "see nameplate"]).to_string()
        } else {
            model.clone()
        }
    };
    let desc_maker = if rng.chance(0.5) {
        maker.name.to_string()
    } else {
        maker_field.clone()
    };
    let desc = description(&mut rng, kind, &size_text, &desc_maker, &model);
    let tag = equipment_tag(&mut rng, kind, building_code);

    // Cost scales with size (log-interpolated), with scatter.
    let frac = size_values
        .first()
        .map(|&(_, _, f)| f)
        .unwrap_or_else(|| rng.next_f64());
    let (lo, hi) = (f64::from(kind.cost.0), f64::from(kind.cost.1));
    let w = (0.7 * frac + 0.3 * rng.next_f64()).clamp(0.0, 1.0);
    let cost = text::round_cost(lo * (hi / lo).powf(w));
    let cost_field = if rng.chance(P_COST_EMPTY) {
        String::new()
    } else {
        text::format_cost(&mut rng, cost)
    };
    let condition = 1.0 + 4.0 * (rng.next_f64() + rng.next_f64()) / 2.0;
    let life = service_life(&mut rng, kind);

    // Labels: usually the true kind, sometimes a similar one.
    let mislabelled = rng.chance(P_MISLABEL) && !t.similar[ki].is_empty();
    let li = if mislabelled {
        *rng.pick(&t.similar[ki])
    } else {
        ki
    };
    let label = &kinds[li];

    let cells = [
        tag,
        maker_field,
        model_field,
        label.category_name.to_string(),
        label.omniclass_code.to_string(),
        label.uniformat_code.to_string(),
        label.masterformat_code.to_string(),
        label.mcaa_system_category.to_string(),
        building.to_string(),
        cost_field,
        format!("{condition:.1}"),
        (li + 1).to_string(),
        t.omniclass_ids[label.omniclass_code].to_string(),
        t.uniformat_ids[label.uniformat_code].to_string(),
        t.masterformat_ids[label.masterformat_code].to_string(),
        t.mcaa_ids[label.mcaa_system_category].to_string(),
        location_id.to_string(),
        desc,
        life,
    ];
    (Row { cells }, mislabelled)
}

fn push_record<S: AsRef<str>>(line: &mut String, cells: &[S]) {
    line.clear();
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        text::push_cell(line, c.as_ref());
    }
    line.push('\n');
}

/// Write a header and `opts.rows` rows of CSV to `out`.
pub fn generate_csv(opts: &SynthOptions, out: &mut impl Write) -> std::io::Result<SynthSummary> {
    let mut line = String::with_capacity(512);
    push_record(&mut line, &COLUMNS);
    out.write_all(line.as_bytes())?;
    let mut categories = BTreeSet::new();
    let mut mislabelled = 0;
    for i in 0..opts.rows {
        let (row, wrong) = make_row(opts.seed, i);
        mislabelled += usize::from(wrong);
        categories.insert(row.cells[3].clone());
        push_record(&mut line, &row.cells);
        out.write_all(line.as_bytes())?;
    }
    Ok(SynthSummary {
        rows: opts.rows,
        categories: categories.len(),
        mislabelled,
    })
}

/// Generate into `path` atomically (`atomic_file`), creating its directory.
pub fn write_inventory(opts: &SynthOptions, path: &Path) -> Result<SynthSummary, SynthError> {
    check_rows(opts.rows)?;
    if path.file_name().is_none() {
        return Err(SynthError::NoFileName {
            path: path.to_path_buf(),
        });
    }
    let io_err = |source| SynthError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io_err)?;
    }
    let mut summary = None;
    crate::atomic_file::write_atomic_with(path, |w| {
        summary = Some(generate_csv(opts, w)?);
        Ok(())
    })
    .map_err(io_err)?;
    Ok(summary.expect("written means generated"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Minimal RFC 4180 reader: records of fields, quotes doubled inside quoted fields.
    fn parse_csv(text: &str) -> Vec<Vec<String>> {
        let mut records = Vec::new();
        let mut record = Vec::new();
        let mut field = String::new();
        let mut chars = text.chars().peekable();
        let mut quoted = false;
        while let Some(c) = chars.next() {
            if quoted {
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        field.push('"');
                        chars.next();
                    } else {
                        quoted = false;
                    }
                } else {
                    field.push(c);
                }
            } else {
                match c {
                    '"' if field.is_empty() => quoted = true,
                    ',' => record.push(std::mem::take(&mut field)),
                    '\n' => {
                        record.push(std::mem::take(&mut field));
                        records.push(std::mem::take(&mut record));
                    }
                    '\r' => {}
                    _ => field.push(c),
                }
            }
        }
        if !field.is_empty() || !record.is_empty() {
            record.push(field);
            records.push(record);
        }
        records
    }

    fn generate(rows: usize, seed: u64) -> (String, SynthSummary) {
        let mut buf = Vec::new();
        let summary = generate_csv(&SynthOptions { rows, seed }, &mut buf).unwrap();
        (String::from_utf8(buf).unwrap(), summary)
    }

    #[test]
    fn same_seed_same_bytes() {
        assert_eq!(generate(500, 42).0, generate(500, 42).0);
    }

    #[test]
    fn different_seeds_differ() {
        assert_ne!(generate(200, 1).0, generate(200, 2).0);
    }

    #[test]
    fn rows_do_not_depend_on_row_count() {
        let (short, _) = generate(100, 9);
        let (long, _) = generate(300, 9);
        assert!(long.starts_with(&short));
    }

    #[test]
    fn header_and_every_row_have_all_columns() {
        let (text, summary) = generate(2000, 42);
        let records = parse_csv(&text);
        assert_eq!(records[0], COLUMNS.map(String::from).to_vec());
        assert_eq!(records.len(), 2001);
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.len(), COLUMNS.len(), "record {i}: {r:?}");
        }
        assert_eq!(summary.rows, 2000);
        assert!(summary.categories >= 60, "{summary:?}");
        assert!(summary.mislabelled > 0 && summary.mislabelled < 80, "{summary:?}");
        // Quoting is exercised: building names and descriptions with commas and quotes.
        assert!(text.contains("\"Science Hall, Annex\""));
        assert!(records.iter().any(|r| r[17].contains('"')));
    }

    #[test]
    fn ids_are_consistent_per_code() {
        let (text, _) = generate(1500, 5);
        let records = parse_csv(&text);
        let mut seen: HashMap<(usize, String), String> = HashMap::new();
        for r in &records[1..] {
            for (code, id) in [(3, 11), (4, 12), (5, 13), (6, 14), (7, 15), (8, 16)] {
                assert!(r[id].parse::<u32>().is_ok(), "{r:?}");
                let prev = seen.entry((code, r[code].clone())).or_insert(r[id].clone());
                assert_eq!(*prev, r[id], "column {code} value {}", r[code]);
            }
            let score: f64 = r[10].parse().unwrap();
            assert!((1.0..=5.0).contains(&score), "{}", r[10]);
        }
    }

    #[test]
    fn catalog_covers_four_disciplines_with_real_uniformat_codes() {
        let kinds = catalog();
        assert!(kinds.len() >= 60, "{}", kinds.len());
        for d in [
            Discipline::Hvac,
            Discipline::Plumbing,
            Discipline::FireProtection,
            Discipline::Electrical,
        ] {
            assert!(kinds.iter().filter(|k| k.discipline == d).count() >= 8, "{d:?}");
        }
        let mut names = BTreeSet::new();
        for k in kinds {
            assert!(names.insert(k.category_name), "duplicate {}", k.category_name);
            assert!(
                ["D20", "D30", "D40", "D50"]
                    .iter()
                    .any(|p| k.uniformat_code.starts_with(p))
                    && k.uniformat_code.len() == 5,
                "{}: {}",
                k.category_name,
                k.uniformat_code
            );
            assert!(MCAA_CATEGORIES.contains(&k.mcaa_system_category));
            assert!(k.omniclass_code.starts_with("23-"), "{}", k.category_name);
            assert!(!k.abbreviations.is_empty() && !k.names.is_empty());
            assert!(!k.makers.is_empty() && k.makers.iter().all(|m| !m.models.is_empty()));
            assert!(k.service_life.0 <= k.service_life.1 && k.cost.0 < k.cost.1);
            assert!(k.weight > 0);
            for s in k.similar {
                assert!(
                    kinds.iter().any(|o| o.category_name == *s),
                    "{} -> unknown similar {s}",
                    k.category_name
                );
            }
        }
    }

    #[test]
    fn every_category_is_represented_in_3000_rows() {
        let (text, _) = generate(3000, 42);
        let records = parse_csv(&text);
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for r in &records[1..] {
            *counts.entry(r[3].as_str()).or_default() += 1;
        }
        for k in catalog() {
            let n = counts.get(k.category_name).copied().unwrap_or(0);
            assert!(n >= 8, "{} has {n} rows", k.category_name);
        }
    }

    #[test]
    fn quoting_round_trips() {
        let cells = [
            "plain",
            "a, b",
            "8\" inlet",
            "say \"hi\", twice",
            "line\nbreak",
            "",
        ];
        let mut line = String::new();
        push_record(&mut line, &cells);
        assert_eq!(
            line,
            "plain,\"a, b\",\"8\"\" inlet\",\"say \"\"hi\"\", twice\",\"line\nbreak\",\n"
        );
        let parsed = parse_csv(&line);
        assert_eq!(parsed, vec![cells.map(String::from).to_vec()]);
    }

    #[test]
    fn write_inventory_is_atomic_and_matches_generate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inv.csv");
        let opts = SynthOptions { rows: 50, seed: 3 };
        let summary = write_inventory(&opts, &path).unwrap();
        assert_eq!(summary.rows, 50);
        let written = std::fs::read_to_string(&path).unwrap();
        assert_eq!(written, generate(50, 3).0);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
        // A directory that does not exist yet is made, as csv.write does.
        let nested = dir.path().join("new/sub/inv.csv");
        write_inventory(&opts, &nested).unwrap();
        assert_eq!(std::fs::read_to_string(&nested).unwrap(), written);
        // A directory that cannot be made (its parent is a file) is an error naming it.
        let bad = dir.path().join("inv.csv").join("x.csv");
        let err = write_inventory(&opts, &bad).unwrap_err();
        assert!(matches!(err, SynthError::Io { .. }), "{err}");
        assert!(err.to_string().starts_with("cannot write"));
    }
}
