//! What a node asks of a cluster (`resources = { cpus, mem, time, partition }`), and
//! the rules each value follows, as Slurm spells them. `dag check` applies them, so a
//! value `sbatch` would refuse fails before anything is submitted.

use serde::Deserialize;

/// The most CPUs a node may ask for: a job runs its node with `--jobs <cpus>`, and the
/// engine takes at most 256 worker threads.
pub const MAX_CPUS: u32 = 256;

/// The longest time limit, in seconds: Slurm counts a job's seconds in a C `int`.
pub const MAX_TIME_SECS: u64 = i32::MAX as u64;

/// The longest partition list, in characters.
pub const MAX_PARTITION_LEN: usize = 256;

/// What a node asks of a cluster when it runs as a job (`--executor slurm`): CPUs (also
/// its worker threads), memory, time limit and partition, as the scheduler spells them.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    pub cpus: Option<u32>,
    /// `16G`, `500M`.
    pub mem: Option<String>,
    /// `2h`, `30m`, `1-00:00:00`.
    pub time: Option<String>,
    pub partition: Option<String>,
}

/// A resource value Slurm would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    #[error("`cpus = {0}`: give 1 to {MAX_CPUS}")]
    Cpus(u32),
    #[error(
        "`mem = \"{0}\"` is not a memory size: a whole number with an optional unit K, M, G or T \
         (megabytes without one), e.g. \"500M\" or \"16G\""
    )]
    Mem(String),
    #[error(
        "`time = \"{0}\"` is not a time limit: give 30s, 90m, 2h or 1d, or Slurm's minutes, \
         minutes:seconds, hours:minutes:seconds, days-hours, days-hours:minutes or \
         days-hours:minutes:seconds (e.g. 1-12:00:00), or \"unlimited\""
    )]
    Time(String),
    #[error("`time = \"{0}\"` is longer than Slurm's limit of {MAX_TIME_SECS} seconds (68 years)")]
    TimeTooLong(String),
    #[error(
        "`partition = \"{0}\"` is not a partition list: names of ASCII letters, digits, `_`, `-` and `.`, \
         separated by commas, at most {MAX_PARTITION_LEN} characters"
    )]
    Partition(String),
}

impl Resources {
    /// `self`, with each unset field taken from `defaults`.
    pub fn or(&self, defaults: &Resources) -> Resources {
        Resources {
            cpus: self.cpus.or(defaults.cpus),
            mem: self.mem.clone().or_else(|| defaults.mem.clone()),
            time: self.time.clone().or_else(|| defaults.time.clone()),
            partition: self.partition.clone().or_else(|| defaults.partition.clone()),
        }
    }

    /// Every value Slurm would refuse, each with its rule.
    pub fn check(&self) -> Vec<ResourceError> {
        let mut errors = Vec::new();
        if let Some(c) = self.cpus {
            if c == 0 || c > MAX_CPUS {
                errors.push(ResourceError::Cpus(c));
            }
        }
        if let Some(m) = &self.mem {
            if let Err(e) = slurm_mem(m) {
                errors.push(e);
            }
        }
        if let Some(t) = &self.time {
            if let Err(e) = slurm_time(t) {
                errors.push(e);
            }
        }
        if let Some(p) = &self.partition {
            if let Err(e) = slurm_partition(p) {
                errors.push(e);
            }
        }
        errors
    }
}

/// A memory size as `sbatch --mem` reads it: digits, then optionally K, M, G or T in
/// either case, optionally followed by `B` (`500M`, `16G`, `16gb`; megabytes without a
/// unit). Returned as written, trimmed.
pub fn slurm_mem(text: &str) -> Result<String, ResourceError> {
    let bad = || ResourceError::Mem(text.to_string());
    let t = text.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = t.split_at(digits);
    let scale: u64 = match unit.to_ascii_uppercase().as_str() {
        "" | "M" | "MB" => 1,
        "K" | "KB" => 1, // rounded up to whole megabytes
        "G" | "GB" => 1 << 10,
        "T" | "TB" => 1 << 20,
        _ => return Err(bad()),
    };
    let n: u64 = number.parse().map_err(|_| bad())?;
    // Slurm holds megabytes in a signed 64-bit integer.
    match n.checked_mul(scale) {
        Some(mb) if mb <= i64::MAX as u64 => Ok(t.to_string()),
        _ => Err(bad()),
    }
}

/// A duration that is not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationError {
    /// Not one of the forms.
    Malformed,
    /// Longer than Slurm's limit of [`MAX_TIME_SECS`].
    TooLong,
}

/// A duration as written in a pipeline (`resources.time`, `timeout`, `retry_delay`):
/// `30s`, `90m`, `2h`, `1d`, or Slurm's `minutes`, `minutes:seconds`,
/// `hours:minutes:seconds`, `days-hours`, `days-hours:minutes`,
/// `days-hours:minutes:seconds`; at most [`MAX_TIME_SECS`]. `None`: unlimited (`unlimited`,
/// `infinite`, `-1`). The one parser of durations.
pub fn parse_duration(text: &str) -> Result<Option<u64>, DurationError> {
    parse_duration_form(text).map(|(secs, _)| secs)
}

/// The duration and whether it was written with a unit (`2h`) rather than in Slurm's form.
fn parse_duration_form(text: &str) -> Result<(Option<u64>, bool), DurationError> {
    let t = text.trim();
    if ["-1", "infinite", "unlimited"]
        .iter()
        .any(|w| t.eq_ignore_ascii_case(w))
    {
        return Ok((None, false));
    }
    let number = |s: &str| -> Result<u64, DurationError> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DurationError::Malformed);
        }
        // More digits than a u64 holds is too long, not malformed.
        s.parse::<u64>().map_err(|_| DurationError::TooLong)
    };
    let within = |secs: Option<u64>| match secs {
        Some(s) if s <= MAX_TIME_SECS => Ok(s),
        _ => Err(DurationError::TooLong),
    };
    if let Some(unit) = t.chars().last().filter(|c| "smhd".contains(*c)) {
        let per: u64 = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => 86400,
        };
        let s = within(number(t[..t.len() - 1].trim())?.checked_mul(per))?;
        return Ok((Some(s), true));
    }
    // Slurm's forms: [days-]…, each part a whole number.
    let (days, clock) = match t.split_once('-') {
        Some((d, rest)) => (Some(number(d)?), rest),
        None => (None, t),
    };
    let parts = clock.split(':').map(number).collect::<Result<Vec<u64>, _>>()?;
    // (seconds per unit of each part, by how many parts there are)
    let units: &[u64] = match (days.is_some(), parts.len()) {
        (false, 1) => &[60],          // minutes
        (false, 2) => &[60, 1],       // minutes:seconds
        (false, 3) => &[3600, 60, 1], // hours:minutes:seconds
        (true, 1) => &[3600],         // days-hours
        (true, 2) => &[3600, 60],     // days-hours:minutes
        (true, 3) => &[3600, 60, 1],  // days-hours:minutes:seconds
        _ => return Err(DurationError::Malformed),
    };
    let mut secs = days.unwrap_or(0).checked_mul(86400);
    for (&part, &unit) in parts.iter().zip(units) {
        secs = secs.and_then(|s| s.checked_add(part.checked_mul(unit)?));
    }
    Ok((Some(within(secs)?), false))
}

/// Seconds as Slurm's `D-HH:MM:SS`.
pub fn slurm_clock(s: u64) -> String {
    format!(
        "{}-{:02}:{:02}:{:02}",
        s / 86400,
        s % 86400 / 3600,
        s % 3600 / 60,
        s % 60
    )
}

/// Seconds as a person reads them: `45s`, `10m`, `1h30m`, `2d`.
pub fn format_secs(s: u64) -> String {
    if s == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let (d, h, m, sec) = (s / 86400, s % 86400 / 3600, s % 3600 / 60, s % 60);
    for (n, unit) in [(d, "d"), (h, "h"), (m, "m"), (sec, "s")] {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    out
}

/// `2h`, `90m`, `30s`, `1d` → Slurm's `D-HH:MM:SS`; Slurm's own forms (`30`, `30:00`,
/// `1:00:00`, `2-12`, `2-12:30`, `2-12:30:00`, `unlimited`) are checked and passed as
/// written, trimmed.
pub fn slurm_time(text: &str) -> Result<String, ResourceError> {
    match parse_duration_form(text) {
        Ok((Some(s), true)) => Ok(slurm_clock(s)),
        Ok(_) => Ok(text.trim().to_string()),
        Err(DurationError::Malformed) => Err(ResourceError::Time(text.to_string())),
        Err(DurationError::TooLong) => Err(ResourceError::TimeTooLong(text.to_string())),
    }
}

/// A partition or a comma-separated list of them: `batch`, `gpu,batch`.
pub fn slurm_partition(text: &str) -> Result<String, ResourceError> {
    let ok = !text.is_empty()
        && text.len() <= MAX_PARTITION_LEN
        && text.split(',').all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        });
    if ok {
        Ok(text.to_string())
    } else {
        Err(ResourceError::Partition(
            crate::spec::names::printable(text).into_owned(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_become_slurm_times() {
        assert_eq!(slurm_time("2h").unwrap(), "0-02:00:00");
        assert_eq!(slurm_time("90m").unwrap(), "0-01:30:00");
        assert_eq!(slurm_time("1d").unwrap(), "1-00:00:00");
        assert_eq!(slurm_time(" 30s ").unwrap(), "0-00:00:30");
        // Slurm's own forms pass as written.
        for ok in [
            "1:00:00",
            "30",
            "30:00",
            "2-12",
            "2-12:30",
            "2-12:30:00",
            "UNLIMITED",
            "0",
        ] {
            assert_eq!(slurm_time(ok).unwrap(), ok);
        }
        for bad in [
            "xh", "forever", "", "1:2:3:4", "1-", "-5", "1.5h", "1-2-3", "h", "1::2",
        ] {
            assert_eq!(slurm_time(bad), Err(ResourceError::Time(bad.into())), "{bad}");
        }
        for long in ["99999999999999999999d", "25000d", "4000000000"] {
            assert_eq!(
                slurm_time(long),
                Err(ResourceError::TimeTooLong(long.into())),
                "{long}"
            );
        }
    }

    #[test]
    fn one_parser_of_durations() {
        assert_eq!(parse_duration("10m"), Ok(Some(600)));
        assert_eq!(parse_duration("1:30"), Ok(Some(90)), "Slurm's minutes:seconds");
        assert_eq!(parse_duration("unlimited"), Ok(None));
        assert_eq!(parse_duration("1.5s"), Err(DurationError::Malformed));
        assert_eq!(parse_duration("99999999999d"), Err(DurationError::TooLong));
        assert_eq!(format_secs(600), "10m");
        assert_eq!(format_secs(5400), "1h30m");
        assert_eq!(format_secs(90061), "1d1h1m1s");
        assert_eq!(format_secs(0), "0s");
        assert_eq!(slurm_clock(3661), "0-01:01:01");
    }

    #[test]
    fn memory_is_a_number_with_a_unit() {
        for ok in ["500M", "16G", "16gb", "1024", "2T", "512K", "0"] {
            assert_eq!(slurm_mem(ok).unwrap(), ok);
        }
        for bad in [
            "lots",
            "",
            "16 G",
            "1.5G",
            "-1G",
            "16P",
            "G",
            "16GiB",
            "99999999999999999999",
        ] {
            assert_eq!(slurm_mem(bad), Err(ResourceError::Mem(bad.into())), "{bad}");
        }
    }

    #[test]
    fn every_bad_value_is_reported() {
        let r = Resources {
            cpus: Some(0),
            mem: Some("lots".into()),
            time: Some("forever".into()),
            partition: Some("a b".into()),
        };
        let errors = r.check();
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(errors[0].to_string().starts_with("`cpus = 0`: give 1 to 256"));
        assert!(errors[1]
            .to_string()
            .starts_with("`mem = \"lots\"` is not a memory size"));
        assert!(errors[2]
            .to_string()
            .starts_with("`time = \"forever\"` is not a time limit"));
        assert!(errors[3]
            .to_string()
            .starts_with("`partition = \"a b\"` is not a partition list"));
        let fine = Resources {
            cpus: Some(256),
            mem: Some("4G".into()),
            time: Some("1h".into()),
            partition: Some("gpu,batch".into()),
        };
        assert!(fine.check().is_empty());
        assert_eq!(
            slurm_partition("a,,b"),
            Err(ResourceError::Partition("a,,b".into()))
        );
    }
}
