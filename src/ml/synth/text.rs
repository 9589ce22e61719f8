//! Text helpers for the generator: model-number patterns, sizes in field notation,
//! typos and case noise, money formats and RFC 4180 quoting.

use super::catalog::{Size, Unit};
use crate::ml::rng::Rng;

/// Expand a model pattern: `#` becomes a digit, `@` a capital letter, the rest is kept.
pub fn fill_pattern(rng: &mut Rng, pattern: &str) -> String {
    const LETTERS: &[u8] = b"ABCDEFGHJKLMNPRSTUVWXYZ";
    pattern
        .chars()
        .map(|c| match c {
            '#' => char::from(b'0' + rng.below(10) as u8),
            '@' => char::from(*rng.pick(LETTERS)),
            other => other,
        })
        .collect()
}

const HP: &[f64] = &[
    0.05, 0.1, 0.125, 0.167, 0.25, 0.33, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 25.0,
    30.0, 40.0, 50.0, 60.0, 75.0, 100.0, 125.0, 150.0, 200.0, 250.0, 300.0, 350.0, 400.0, 500.0, 600.0,
    700.0, 800.0,
];
const KVA: &[f64] = &[
    1.0, 1.5, 2.0, 3.0, 5.0, 6.0, 7.5, 9.0, 10.0, 15.0, 20.0, 25.0, 30.0, 37.5, 45.0, 50.0, 75.0, 100.0,
    112.5, 150.0, 225.0, 300.0, 400.0, 500.0, 750.0, 1000.0, 1500.0, 2000.0, 2500.0, 3000.0,
];
const KW: &[f64] = &[
    20.0, 30.0, 40.0, 50.0, 60.0, 80.0, 100.0, 125.0, 150.0, 175.0, 200.0, 250.0, 300.0, 350.0, 400.0, 500.0,
    600.0, 750.0, 800.0, 1000.0, 1250.0, 1500.0, 1750.0, 2000.0,
];
const AMPS: &[f64] = &[
    30.0, 60.0, 100.0, 125.0, 150.0, 200.0, 225.0, 250.0, 400.0, 600.0, 800.0, 1000.0, 1200.0, 1600.0,
    2000.0, 2500.0, 3000.0, 4000.0, 5000.0,
];
const GALLONS: &[f64] = &[
    1.5, 2.0, 2.5, 3.0, 5.0, 6.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 75.0, 80.0, 100.0, 119.0, 120.0,
    150.0, 200.0, 250.0, 300.0, 400.0, 500.0, 750.0, 1000.0, 1500.0, 2000.0, 3000.0,
];
const INCHES: &[f64] = &[
    0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0, 8.0, 10.0, 12.0,
];
const POUNDS: &[f64] = &[
    2.5, 5.0, 6.0, 10.0, 20.0, 30.0, 50.0, 75.0, 100.0, 150.0, 200.0, 250.0, 300.0, 400.0, 500.0, 750.0,
    1000.0,
];

fn standard_series(unit: Unit) -> Option<&'static [f64]> {
    match unit {
        Unit::Hp => Some(HP),
        Unit::Kva => Some(KVA),
        Unit::Kw => Some(KW),
        Unit::Amps => Some(AMPS),
        Unit::Gallons => Some(GALLONS),
        Unit::Inches => Some(INCHES),
        Unit::Pounds => Some(POUNDS),
        Unit::Cfm | Unit::Tons | Unit::Mbh | Unit::Gpm => None,
    }
}

/// Where `v` sits in the size range, 0..=1 on a log scale.
pub fn size_fraction(size: &Size, v: f64) -> f64 {
    if size.max <= size.min {
        return 0.5;
    }
    ((v.ln() - size.min.ln()) / (size.max.ln() - size.min.ln())).clamp(0.0, 1.0)
}

/// Draw a size log-uniformly in the range, snapped to what nameplates say.
pub fn sample_size(rng: &mut Rng, size: &Size) -> f64 {
    let (lo, hi) = (size.min.ln(), size.max.ln());
    let target = (lo + (hi - lo) * rng.next_f64()).exp();
    if let Some(series) = standard_series(size.unit) {
        let mut best = series[0];
        let mut best_d = f64::INFINITY;
        for &v in series {
            let inside = v >= size.min * 0.999 && v <= size.max * 1.001;
            let d = (v.ln() - target.ln()).abs() + if inside { 0.0 } else { 10.0 };
            if d < best_d {
                best = v;
                best_d = d;
            }
        }
        return best;
    }
    if target < 10.0 {
        return ((target * 2.0).round() / 2.0).max(0.5);
    }
    let magnitude = 10f64.powf(target.log10().floor() - 1.0);
    let step = if size.unit == Unit::Cfm {
        magnitude.max(50.0)
    } else {
        magnitude
    };
    (target / step).round() * step
}

/// "1.5", "15000", "0.75".
pub fn plain_number(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// "15,000" for whole numbers of four digits or more.
pub fn grouped_number(v: f64) -> String {
    let plain = plain_number(v);
    if plain.contains('.') || plain.len() < 4 {
        return plain;
    }
    let bytes = plain.as_bytes();
    let mut out = String::with_capacity(bytes.len() + bytes.len() / 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && (bytes.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(char::from(*b));
    }
    out
}

fn fraction_hp(v: f64) -> Option<&'static str> {
    [
        (0.125, "1/8"),
        (0.167, "1/6"),
        (0.25, "1/4"),
        (0.33, "1/3"),
        (0.5, "1/2"),
        (0.75, "3/4"),
    ]
    .iter()
    .find(|(x, _)| (x - v).abs() < 1e-6)
    .map(|(_, s)| *s)
}

/// A size written the way people write it on inventories.
pub fn format_size(rng: &mut Rng, unit: Unit, v: f64) -> String {
    let n = plain_number(v);
    let g = grouped_number(v);
    match unit {
        Unit::Cfm => match rng.below(5) {
            0 => format!("{g} CFM"),
            1 => format!("{n} cfm"),
            2 if v >= 1000.0 => format!("{}k cfm", plain_number(v / 1000.0)),
            3 => format!("{n}CFM"),
            _ => format!("{g} cfm"),
        },
        Unit::Tons => match rng.below(5) {
            0 => format!("{n} ton"),
            1 => format!("{n} tons"),
            2 => format!("{n}T"),
            3 => format!("{n}-ton"),
            _ => format!("{n} TR"),
        },
        Unit::Mbh => match rng.below(4) {
            0 => format!("{g} MBH"),
            1 => format!("{n} mbh"),
            2 => format!("{n}MBH input"),
            _ => format!("{} BTUH", grouped_number(v * 1000.0)),
        },
        Unit::Gpm => match rng.below(3) {
            0 => format!("{n} gpm"),
            1 => format!("{g} GPM"),
            _ => format!("{n}gpm"),
        },
        Unit::Hp => {
            let shown = match fraction_hp(v) {
                Some(f) if rng.chance(0.6) => f.to_string(),
                _ => n,
            };
            match rng.below(4) {
                0 => format!("{shown} hp"),
                1 => format!("{shown}HP"),
                2 => format!("{shown} H.P."),
                _ => format!("{shown} hp motor"),
            }
        }
        Unit::Kva => match rng.below(3) {
            0 => format!("{n} kVA"),
            1 => format!("{n}KVA"),
            _ => format!("{n} kva"),
        },
        Unit::Kw => match rng.below(3) {
            0 => format!("{n} kW"),
            1 => format!("{n}KW"),
            _ => format!("{n} kw"),
        },
        Unit::Amps => match rng.below(4) {
            0 => format!("{n}A"),
            1 => format!("{n} amp"),
            2 => format!("{n} AMP"),
            _ => format!("{n} amps"),
        },
        Unit::Gallons => match rng.below(4) {
            0 => format!("{n} gal"),
            1 => format!("{n} gallon"),
            2 => format!("{n}G"),
            _ => format!("{n}-gal"),
        },
        Unit::Inches => {
            let shown = match n.as_str() {
                "0.5" => "1/2".to_string(),
                "0.75" => "3/4".to_string(),
                "1.25" => "1-1/4".to_string(),
                "1.5" => "1-1/2".to_string(),
                "2.5" => "2-1/2".to_string(),
                _ => n,
            };
            match rng.below(4) {
                0 => format!("{shown}\""),
                1 => format!("{shown} in"),
                2 => format!("{shown} inch"),
                _ => format!("{shown}in"),
            }
        }
        Unit::Pounds => match rng.below(3) {
            0 => format!("{n} lb"),
            1 => format!("{n}#"),
            _ => format!("{n} lbs"),
        },
    }
}

/// One keyboard slip in a word: swapped, dropped or doubled letter.
pub fn typo(rng: &mut Rng, word: &str) -> String {
    let chars: Vec<char> = word.chars().collect();
    if chars.len() < 4 || !chars.iter().all(|c| c.is_alphabetic()) {
        return word.to_string();
    }
    let i = 1 + rng.below(chars.len() - 2);
    let mut out = chars.clone();
    match rng.below(3) {
        0 => out.swap(i, i + 1),
        1 => {
            out.remove(i);
        }
        _ => out.insert(i, chars[i]),
    }
    out.into_iter().collect()
}

/// Round a dollar amount the way estimators do.
pub fn round_cost(v: f64) -> f64 {
    let step = if v < 1000.0 {
        10.0
    } else if v < 10000.0 {
        50.0
    } else if v < 100000.0 {
        500.0
    } else {
        5000.0
    };
    ((v / step).round() * step).max(step)
}

/// "12500.00", "$12,500", "12500", "$12,500.00".
pub fn format_cost(rng: &mut Rng, v: f64) -> String {
    let g = grouped_number(v);
    match rng.below(10) {
        0 | 1 => format!("${g}"),
        2 => format!("{}", v as i64),
        3 => format!("${g}.00"),
        _ => format!("{v:.2}"),
    }
}

/// Write one CSV cell, quoted when it holds a comma, quote or line break (RFC 4180).
pub fn push_cell(out: &mut String, cell: &str) {
    if cell.contains([',', '"', '\n', '\r']) {
        out.push('"');
        for c in cell.chars() {
            if c == '"' {
                out.push('"');
            }
            out.push(c);
        }
        out.push('"');
    } else {
        out.push_str(cell);
    }
}
