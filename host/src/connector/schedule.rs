//! When `tributary serve` runs a connector's syncs: per sync kind an interval (`<kind>_minutes`
//! or `<kind>_every`, e.g. `"15m"`) or a five-field UTC cron expression (`<kind>_cron`), never
//! two ways for one kind. An interval is at least one second (one minute for `<kind>_minutes`)
//! and at most [`MAX_INTERVAL_SECS`] (366 days), so it never overflows a duration or a clock
//! sum; anything else is an error naming the field.

use serde::Deserialize;

use super::cron::Cron;
use crate::job::SyncKind;

/// The longest interval: 366 days.
pub const MAX_INTERVAL_SECS: u64 = 366 * 86_400;

/// Sync intervals for `tributary serve`, in minutes; absent means never.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Full syncs.
    pub full_minutes: Option<u64>,
    /// Incremental syncs (a full sync runs first if none has succeeded yet).
    pub incremental_minutes: Option<u64>,
    /// Access-control syncs.
    pub access_control_minutes: Option<u64>,
    /// Full syncs, as a duration with a unit: `"30s"`, `"15m"`, `"2h"`, `"1d"` (instead of
    /// `full_minutes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_every: Option<String>,
    /// Incremental syncs, as a duration with a unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental_every: Option<String>,
    /// Access-control syncs, as a duration with a unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_control_every: Option<String>,
    /// Full syncs at the times of a five-field cron expression, UTC (e.g. `"30 2 * * *"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_cron: Option<String>,
    /// Incremental syncs on a cron expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental_cron: Option<String>,
    /// Access-control syncs on a cron expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_control_cron: Option<String>,
}

/// When a kind of sync runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Timing {
    /// Every so often.
    Every(std::time::Duration),
    /// At the times of a cron expression.
    Cron(Cron),
}

impl Schedule {
    /// When `kind` runs, if it is scheduled; an error names a malformed duration or cron
    /// expression, or a kind given more than one way.
    pub fn timing(&self, kind: SyncKind) -> anyhow::Result<Option<Timing>> {
        let (cron, name) = match kind {
            SyncKind::Full => (&self.full_cron, "full"),
            SyncKind::Incremental => (&self.incremental_cron, "incremental"),
            SyncKind::AccessControl => (&self.access_control_cron, "access_control"),
        };
        let every = self.interval(kind)?;
        match (cron, every) {
            (Some(_), Some(_)) => {
                anyhow::bail!("schedule: give `{name}` an interval or a `{name}_cron`, not both")
            }
            (Some(text), None) => Cron::parse(text)
                .map(|c| Some(Timing::Cron(c)))
                .map_err(|e| anyhow::anyhow!("schedule: `{name}_cron`: {e}")),
            (None, every) => Ok(every.map(Timing::Every)),
        }
    }

    /// How often `kind` runs by interval, if it is scheduled so; an error names a malformed
    /// duration or a kind given both ways.
    pub fn interval(&self, kind: SyncKind) -> anyhow::Result<Option<std::time::Duration>> {
        let (minutes, every, name) = match kind {
            SyncKind::Full => (self.full_minutes, &self.full_every, "full"),
            SyncKind::Incremental => (
                self.incremental_minutes,
                &self.incremental_every,
                "incremental",
            ),
            SyncKind::AccessControl => (
                self.access_control_minutes,
                &self.access_control_every,
                "access_control",
            ),
        };
        match (minutes, every) {
            (Some(_), Some(_)) => {
                anyhow::bail!("schedule: give `{name}_minutes` or `{name}_every`, not both")
            }
            (Some(0), None) => anyhow::bail!(
                "schedule: `{name}_minutes` must be at least 1 (leave it out to never run)"
            ),
            (Some(m), None) if m > MAX_INTERVAL_SECS / 60 => anyhow::bail!(
                "schedule: `{name}_minutes` {m} is more than {} (366 days)",
                MAX_INTERVAL_SECS / 60
            ),
            (Some(m), None) => Ok(Some(std::time::Duration::from_secs(m * 60))),
            (None, Some(text)) => parse_every(text)
                .map(Some)
                .map_err(|e| anyhow::anyhow!("schedule: `{name}_every`: {e}")),
            (None, None) => Ok(None),
        }
    }

    /// Checks every interval.
    pub fn check(&self) -> anyhow::Result<()> {
        for kind in [
            SyncKind::Full,
            SyncKind::Incremental,
            SyncKind::AccessControl,
        ] {
            self.timing(kind)?;
        }
        Ok(())
    }
}

/// Parses `"<n><unit>"` with unit `s`, `m`, `h` or `d` (at least one second).
pub fn parse_every(text: &str) -> anyhow::Result<std::time::Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| anyhow::anyhow!("`{text}` has no unit (s, m, h or d)"))?;
    let (number, unit) = text.split_at(split);
    anyhow::ensure!(
        !number.is_empty(),
        "`{text}` does not start with a whole number"
    );
    let too_long = || anyhow::anyhow!("`{text}` is longer than 366 days");
    // Only digits: a parse failure is a number too large for u64.
    let n: u64 = number.parse().map_err(|_| too_long())?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => anyhow::bail!("unknown unit `{other}` in `{text}` (use s, m, h or d)"),
    };
    let secs = n.checked_mul(scale).ok_or_else(too_long)?;
    anyhow::ensure!(secs >= 1, "`{text}` is shorter than one second");
    anyhow::ensure!(secs <= MAX_INTERVAL_SECS, too_long());
    Ok(std::time::Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn schedule_intervals_take_minutes_or_a_unit() {
        use std::time::Duration;
        let s = Schedule {
            full_minutes: Some(2),
            incremental_every: Some("45s".into()),
            access_control_every: Some("1d".into()),
            ..Schedule::default()
        };
        assert_eq!(
            s.interval(SyncKind::Full).unwrap(),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            s.interval(SyncKind::Incremental).unwrap(),
            Some(Duration::from_secs(45))
        );
        assert_eq!(
            s.interval(SyncKind::AccessControl).unwrap(),
            Some(Duration::from_secs(86_400))
        );
        for bad in [
            "10",
            "5x",
            "m",
            "0s",
            "-3m",
            "367d",
            "18446744073709551615m",
            "99999999999999999999999s",
        ] {
            assert!(parse_every(bad).is_err(), "{bad} was accepted");
        }
        let both = Schedule {
            full_minutes: Some(1),
            full_every: Some("1m".into()),
            ..Schedule::default()
        };
        let err = both.check().unwrap_err().to_string();
        assert!(err.contains("not both"), "{err}");
        let cron = Schedule {
            full_cron: Some("30 2 * * *".into()),
            ..Schedule::default()
        };
        assert!(matches!(
            cron.timing(SyncKind::Full).unwrap(),
            Some(Timing::Cron(_))
        ));
        let bad = Schedule {
            incremental_cron: Some("61 * * * *".into()),
            ..Schedule::default()
        };
        let err = bad.check().unwrap_err().to_string();
        assert!(
            err.contains("incremental_cron") && err.contains("minute"),
            "{err}"
        );
    }

    #[test]
    fn intervals_of_zero_or_that_overflow_are_refused_naming_the_field() {
        let minutes = |m| Schedule {
            full_minutes: Some(m),
            ..Schedule::default()
        };
        for (m, needle) in [
            (0, "`full_minutes` must be at least 1"),
            (u64::MAX, "`full_minutes` 18446744073709551615 is more than"),
            (MAX_INTERVAL_SECS / 60 + 1, "`full_minutes`"),
        ] {
            let err = minutes(m).check().unwrap_err().to_string();
            assert!(err.contains(needle), "{m}: {err}");
        }
        assert!(minutes(MAX_INTERVAL_SECS / 60).check().is_ok());
        let every = Schedule {
            access_control_every: Some("18446744073709551615d".into()),
            ..Schedule::default()
        };
        let err = every.check().unwrap_err().to_string();
        assert!(err.contains("`access_control_every`"), "{err}");
        let cron = Schedule {
            incremental_cron: Some("59/4294967295 * * * *".into()),
            ..Schedule::default()
        };
        let err = cron.check().unwrap_err().to_string();
        assert!(err.contains("`incremental_cron`"), "{err}");
    }
}
