//! Time for people: UTC timestamps (run directories and model files are named by them;
//! the calendar is chrono's) and durations in readable units.

use std::time::{SystemTime, UNIX_EPOCH};

/// Calendar fields of a UTC instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub millis: u32,
}

impl Utc {
    pub fn now() -> Self {
        Self::from_system(SystemTime::now())
    }

    pub fn from_system(t: SystemTime) -> Self {
        let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        Self::from_unix_millis(d.as_millis() as i64)
    }

    pub fn from_unix_millis(ms: i64) -> Self {
        use chrono::{Datelike, Timelike};
        let t = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
        Utc {
            year: i64::from(t.year()),
            month: t.month(),
            day: t.day(),
            hour: t.hour(),
            minute: t.minute(),
            second: t.second(),
            millis: t.timestamp_subsec_millis(),
        }
    }

    /// `20261124T113512Z`: sortable and safe in file names.
    pub fn compact(&self) -> String {
        format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// `2026-11-24T11:35:12.345Z` (RFC 3339).
    pub fn rfc3339(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second, self.millis
        )
    }
}

/// `850 µs`, `35.2 ms`, `1.24 s`.
pub fn format_ms(ms: f64) -> String {
    if ms < 1.0 {
        format!("{:.0} µs", ms * 1000.0)
    } else if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(Utc::from_unix_millis(0).rfc3339(), "1970-01-01T00:00:00.000Z");
        // 2026-11-24T11:35:12.345Z
        let t = Utc::from_unix_millis(1_795_520_112_345);
        assert_eq!(t.rfc3339(), "2026-11-24T11:35:12.345Z");
        assert_eq!(t.compact(), "20261124T113512Z");
        // Leap day.
        assert_eq!(
            Utc::from_unix_millis(951_782_400_000).rfc3339(),
            "2000-02-29T00:00:00.000Z"
        );
    }
}
