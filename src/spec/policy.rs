//! What a node does when an attempt fails or runs long: `retries` with a `retry_delay`
//! that grows by `backoff` up to `retry_delay_max` (with optional `jitter`), only for
//! the failures `retry_on` names, and a `timeout` per attempt. Written on a node, or in
//! `[pipeline]` as defaults a node's own value overrides field by field. Durations follow
//! the one parser of [`super::parse_duration`] (`30s`, `10m`, `2h`, Slurm's forms).

use super::resources::{format_secs, parse_duration, DurationError};
use std::fmt;
use std::time::Duration;

/// The most retries a node may ask for: a step that fails a hundred times running is
/// broken, not flaky.
pub const MAX_RETRIES: i64 = 100;

/// The policy fields, in the order they are documented.
pub const POLICY_FIELDS: [&str; 7] = [
    "retries",
    "retry_delay",
    "backoff",
    "retry_delay_max",
    "jitter",
    "retry_on",
    "timeout",
];

/// How the delay between attempts grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backoff {
    /// `retry_delay` every time.
    None,
    /// `retry_delay` × the retry's number (1, 2, 3, …).
    Linear,
    /// `retry_delay` × 2^(retry's number − 1) (1, 2, 4, …).
    Exponential,
}

/// Which failures are retried.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetryOn {
    /// Every failure (`"any"`).
    pub any: bool,
    /// An attempt that ran out of time (`"timeout"`).
    pub timeout: bool,
    /// A command that exited with one of these codes.
    pub codes: Vec<i32>,
}

impl RetryOn {
    /// Whether a failed attempt (its command's exit code, whether it timed out) is retried.
    pub fn matches(&self, exit_code: Option<i32>, timed_out: bool) -> bool {
        self.any || (timed_out && self.timeout) || exit_code.is_some_and(|c| self.codes.contains(&c))
    }
}

impl fmt::Display for RetryOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.any {
            return f.write_str("any failure");
        }
        let mut parts: Vec<String> = Vec::new();
        if !self.codes.is_empty() {
            let codes: Vec<String> = self.codes.iter().map(i32::to_string).collect();
            parts.push(format!(
                "exit code{} {}",
                if codes.len() == 1 { "" } else { "s" },
                codes.join(", ")
            ));
        }
        if self.timeout {
            parts.push("a timeout".into());
        }
        f.write_str(&parts.join(" or "))
    }
}

/// A node's resolved policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Attempts after the first.
    pub retries: u32,
    pub retry_delay: Duration,
    pub backoff: Backoff,
    pub retry_delay_max: Duration,
    /// Each delay is drawn between half of it and all of it, so nodes that failed together
    /// do not all retry at once.
    pub jitter: bool,
    pub retry_on: RetryOn,
    /// The limit of each attempt; `None`: none.
    pub timeout: Option<Duration>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            retries: 0,
            retry_delay: Duration::from_secs(1),
            backoff: Backoff::None,
            retry_delay_max: Duration::from_secs(3600),
            jitter: false,
            retry_on: RetryOn {
                any: true,
                ..RetryOn::default()
            },
            timeout: None,
        }
    }
}

/// A policy value that is not one, with the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("`retries = {0}`: give a whole number from 0 to {MAX_RETRIES} (the attempts after the first)")]
    Retries(String),
    #[error(
        "`{field} = {value}` is not a duration: give 30s, 90m, 2h or 1d, or Slurm's minutes, \
         minutes:seconds, hours:minutes:seconds, days-hours, days-hours:minutes or \
         days-hours:minutes:seconds{unlimited}"
    )]
    Duration {
        field: &'static str,
        value: String,
        /// `, or "unlimited"` where that is allowed.
        unlimited: &'static str,
    },
    #[error("`{field} = {value}` is longer than the limit of 2147483647 seconds (68 years)")]
    DurationTooLong { field: &'static str, value: String },
    #[error("`{field} = {value}`: {field} cannot be unlimited")]
    Unlimited { field: &'static str, value: String },
    #[error("`timeout = {0}`: a time limit must be more than 0 seconds (\"unlimited\" sets none)")]
    ZeroTimeout(String),
    #[error("`backoff = {0}`: give \"none\", \"linear\" or \"exponential\"")]
    Backoff(String),
    #[error("`jitter = {0}`: give true or false")]
    Jitter(String),
    #[error(
        "`retry_on = {0}`: give \"any\", \"timeout\", or a list of exit codes (1 to 255) and \
         \"timeout\", e.g. [75, \"timeout\"]"
    )]
    RetryOn(String),
    #[error(
        "`retry_delay = {delay}` is longer than `retry_delay_max` ({max}): raise `retry_delay_max` \
         or shorten the delay"
    )]
    DelayOverCap { delay: String, max: String },
}

impl Policy {
    /// The policy a node's fields (`node`) give over the pipeline's defaults (`defaults`),
    /// both after `${…}` interpolation: every problem at once.
    pub fn resolve(node: &toml::Table, defaults: &toml::Table) -> Result<Policy, Vec<PolicyError>> {
        let get = |field: &str| node.get(field).or_else(|| defaults.get(field));
        let mut p = Policy::default();
        let mut errors = Vec::new();
        if let Some(v) = get("retries") {
            match v.as_integer() {
                Some(n) if (0..=MAX_RETRIES).contains(&n) => p.retries = n as u32,
                _ => errors.push(PolicyError::Retries(v.to_string())),
            }
        }
        let mut duration = |field: &'static str, unlimited_ok: bool| -> Option<Option<Duration>> {
            let v = get(field)?;
            let shown = v.to_string();
            let bad = |unlimited: &'static str| PolicyError::Duration {
                field,
                value: shown.clone(),
                unlimited,
            };
            let allowed = if unlimited_ok { ", or \"unlimited\"" } else { "" };
            let Some(text) = v.as_str() else {
                errors.push(bad(allowed));
                return None;
            };
            match parse_duration(text) {
                Ok(Some(s)) => Some(Some(Duration::from_secs(s))),
                Ok(None) if unlimited_ok => Some(None),
                Ok(None) => {
                    errors.push(PolicyError::Unlimited {
                        field,
                        value: shown.clone(),
                    });
                    None
                }
                Err(DurationError::Malformed) => {
                    errors.push(bad(allowed));
                    None
                }
                Err(DurationError::TooLong) => {
                    errors.push(PolicyError::DurationTooLong {
                        field,
                        value: shown.clone(),
                    });
                    None
                }
            }
        };
        if let Some(Some(d)) = duration("retry_delay", false) {
            p.retry_delay = d;
        }
        if let Some(Some(d)) = duration("retry_delay_max", false) {
            p.retry_delay_max = d;
        }
        if let Some(t) = duration("timeout", true) {
            if t == Some(Duration::ZERO) {
                errors.push(PolicyError::ZeroTimeout(
                    get("timeout").map(|v| v.to_string()).unwrap_or_default(),
                ));
            }
            p.timeout = t;
        }
        if let Some(v) = get("backoff") {
            match v.as_str() {
                Some("none") => p.backoff = Backoff::None,
                Some("linear") => p.backoff = Backoff::Linear,
                Some("exponential") => p.backoff = Backoff::Exponential,
                _ => errors.push(PolicyError::Backoff(v.to_string())),
            }
        }
        if let Some(v) = get("jitter") {
            match v.as_bool() {
                Some(b) => p.jitter = b,
                None => errors.push(PolicyError::Jitter(v.to_string())),
            }
        }
        if let Some(v) = get("retry_on") {
            match retry_on(v) {
                Some(r) => p.retry_on = r,
                None => errors.push(PolicyError::RetryOn(v.to_string())),
            }
        }
        if p.retry_delay > p.retry_delay_max {
            errors.push(PolicyError::DelayOverCap {
                delay: format_secs(p.retry_delay.as_secs()),
                max: format_secs(p.retry_delay_max.as_secs()),
            });
        }
        if errors.is_empty() {
            Ok(p)
        } else {
            Err(errors)
        }
    }

    /// How many attempts a node may take.
    pub fn attempts(&self) -> u32 {
        self.retries + 1
    }

    /// The wait before attempt `next` (2 is the first retry). `unit`, in [0, 1), draws
    /// the jitter.
    pub fn delay_before(&self, next: u32, unit: f64) -> Duration {
        let n = next.saturating_sub(1).max(1);
        let factor: u64 = match self.backoff {
            Backoff::None => 1,
            Backoff::Linear => u64::from(n),
            Backoff::Exponential => 1u64.checked_shl(n - 1).unwrap_or(u64::MAX),
        };
        let millis = (self.retry_delay.as_millis() as u64).saturating_mul(factor);
        let capped = Duration::from_millis(millis).min(self.retry_delay_max);
        if self.jitter {
            capped.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
        } else {
            capped
        }
    }

    /// The longest every attempt and every wait between them can take together; `None`
    /// without a timeout.
    pub fn worst_case(&self) -> Option<Duration> {
        let limit = self.timeout?;
        let mut total = limit;
        for next in 2..=self.attempts() {
            total += self.delay_before(next, 1.0) + limit;
        }
        Some(total)
    }
}

/// `"any"`, `"timeout"`, or a list of exit codes and `"timeout"`.
fn retry_on(v: &toml::Value) -> Option<RetryOn> {
    let mut r = RetryOn::default();
    let mut one = |item: &toml::Value| -> Option<()> {
        match item {
            toml::Value::String(s) if s == "timeout" => r.timeout = true,
            toml::Value::Integer(c) if (1..=255).contains(c) => {
                if !r.codes.contains(&(*c as i32)) {
                    r.codes.push(*c as i32)
                }
            }
            _ => return None,
        }
        Some(())
    };
    match v {
        toml::Value::String(s) if s == "any" => {
            return Some(RetryOn {
                any: true,
                ..RetryOn::default()
            })
        }
        toml::Value::Array(items) if !items.is_empty() => {
            for item in items {
                one(item)?;
            }
        }
        other => one(other)?,
    }
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        text.parse().unwrap()
    }

    #[test]
    fn a_node_overrides_the_defaults_field_by_field() {
        let p = Policy::resolve(
            &table("retries = 2\ntimeout = \"unlimited\""),
            &table("retries = 5\nretry_delay = \"3s\"\ntimeout = \"10m\"\nbackoff = \"exponential\""),
        )
        .unwrap();
        assert_eq!(p.retries, 2);
        assert_eq!(p.retry_delay, Duration::from_secs(3));
        assert_eq!(p.backoff, Backoff::Exponential);
        assert_eq!(p.timeout, None, "a node's `unlimited` lifts the default");
        assert_eq!(
            Policy::resolve(&table(""), &table("")).unwrap(),
            Policy::default()
        );
    }

    #[test]
    fn delays_grow_and_stop_at_the_cap() {
        let mut p = Policy {
            retries: 10,
            retry_delay: Duration::from_secs(2),
            retry_delay_max: Duration::from_secs(10),
            ..Policy::default()
        };
        let delays = |p: &Policy| -> Vec<u64> { (2..=6).map(|n| p.delay_before(n, 0.0).as_secs()).collect() };
        assert_eq!(delays(&p), [2, 2, 2, 2, 2]);
        p.backoff = Backoff::Linear;
        assert_eq!(delays(&p), [2, 4, 6, 8, 10]);
        p.backoff = Backoff::Exponential;
        assert_eq!(delays(&p), [2, 4, 8, 10, 10]);
        p.retries = 100;
        assert_eq!(p.delay_before(101, 0.0), Duration::from_secs(10), "no overflow");
        p.jitter = true;
        assert_eq!(
            p.delay_before(2, 0.0),
            Duration::from_secs(1),
            "half at the least"
        );
        assert_eq!(p.delay_before(2, 1.0), Duration::from_secs(2));
        let q = Policy {
            retries: 2,
            timeout: Some(Duration::from_secs(60)),
            ..Policy::default()
        };
        assert_eq!(
            q.worst_case(),
            Some(Duration::from_secs(182)),
            "3 × 60 s + 2 × 1 s"
        );
    }

    #[test]
    fn retry_conditions() {
        let codes = Policy::resolve(&table("retry_on = [75, \"timeout\"]"), &table("")).unwrap();
        assert!(codes.retry_on.matches(Some(75), false));
        assert!(!codes.retry_on.matches(Some(1), false));
        assert!(codes.retry_on.matches(None, true));
        assert!(!codes.retry_on.matches(None, false));
        assert_eq!(codes.retry_on.to_string(), "exit code 75 or a timeout");
        let t = Policy::resolve(&table("retry_on = \"timeout\""), &table("")).unwrap();
        assert!(!t.retry_on.matches(Some(75), false) && t.retry_on.matches(None, true));
        assert!(Policy::default().retry_on.matches(None, false));
    }

    #[test]
    fn every_bad_value_is_reported_with_its_rule() {
        let e = Policy::resolve(
            &table(
                "retries = -1\nretry_delay = \"soon\"\nbackoff = \"quadratic\"\njitter = 1\n\
                 retry_on = [0]\ntimeout = \"0s\"\nretry_delay_max = \"unlimited\"",
            ),
            &table(""),
        )
        .unwrap_err();
        let text: Vec<String> = e.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 7, "{text:#?}");
        assert!(text[0].starts_with("`retries = -1`: give a whole number from 0 to 100"));
        assert!(text[1].starts_with("`retry_delay = \"soon\"` is not a duration"));
        assert!(!text[1].contains("unlimited"));
        assert_eq!(
            text[2],
            "`retry_delay_max = \"unlimited\"`: retry_delay_max cannot be unlimited"
        );
        assert!(text[3].starts_with("`timeout = \"0s\"`: a time limit must be more than 0"));
        assert!(text[4].starts_with("`backoff = \"quadratic\"`"));
        assert!(text[5].starts_with("`jitter = 1`"));
        assert!(text[6].starts_with("`retry_on = [0]`"));
        let e = Policy::resolve(&table("retry_delay = \"2h\""), &table("")).unwrap_err();
        assert_eq!(
            e[0].to_string(),
            "`retry_delay = 2h` is longer than `retry_delay_max` (1h): raise `retry_delay_max` or shorten the delay"
        );
        assert!(Policy::resolve(&table("retry_on = []"), &table("")).is_err());
        assert!(
            Policy::resolve(&table("timeout = \"99999999999d\""), &table("")).unwrap_err()[0]
                .to_string()
                .contains("longer than the limit")
        );
    }
}
