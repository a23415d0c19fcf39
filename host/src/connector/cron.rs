//! Cron expressions, parsed and evaluated by the `croner` crate, in UTC.
//!
//! Two dialects, one type:
//! - [`Cron::parse`]: the classic five fields (minute, hour, day of month, month, day of week)
//!   of `tributary serve` schedules. Day of week 0-7 (0 and 7 are Sunday); when both day fields
//!   are restricted a day matches if either does, as in Vixie cron. `croner`'s extensions
//!   (`L`, `W`, `#`, names such as `MON`/`JAN`, `@daily`) are accepted too.
//! - [`Cron::parse_quartz`]: Quartz expressions as Elastic's connectors service stores them in
//!   `scheduling.<kind>.interval`: seconds first, an optional year last, `?` for "no specific
//!   value", day of week 1-7 with 1 = Sunday (e.g. `0 0 0 * * ?`).
//!
//! Invariants: parsing never panics, whatever the text (a property test feeds it noise and
//! huge numbers); an error names the field at fault; [`Cron::next_after`] is strictly after its
//! argument and whole seconds.

use chrono::{DateTime, Utc};
use croner::parser::{CronParser, Seconds, Year};

/// The fields of a five-field expression, in order.
const POSIX_FIELDS: [&str; 5] = ["minute", "hour", "day of month", "month", "day of week"];
/// The fields of a Quartz expression, in order (the year is optional).
const QUARTZ_FIELDS: [&str; 7] = [
    "second",
    "minute",
    "hour",
    "day of month",
    "month",
    "day of week",
    "year",
];

/// A parsed cron expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Cron {
    // Boxed: the parsed pattern is a few hundred bytes and schedules hold it in an enum.
    inner: Box<croner::Cron>,
}

// Equality is on the parsed fields (`0 0 * * 7` equals `0 0 * * 0`).
impl Eq for Cron {}

impl Cron {
    /// Parses `"m h dom mon dow"`; the error names the field at fault.
    pub fn parse(text: &str) -> anyhow::Result<Cron> {
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        let fields = text.split_whitespace().count();
        anyhow::ensure!(
            fields == 5,
            "`{text}` needs five fields (minute hour day-of-month month day-of-week), found {fields}"
        );
        Self::parse_with(&parser, text, &POSIX_FIELDS)
    }

    /// Parses a Quartz expression (`sec min hour dom month dow [year]`, `?` allowed, day of
    /// week 1 = Sunday); the error names the field at fault.
    pub fn parse_quartz(text: &str) -> anyhow::Result<Cron> {
        let parser = CronParser::builder()
            .seconds(Seconds::Required)
            .year(Year::Optional)
            .alternative_weekdays(true)
            .build();
        let fields = text.split_whitespace().count();
        anyhow::ensure!(
            (6..=7).contains(&fields),
            "`{text}` needs six or seven fields (second minute hour day-of-month month \
             day-of-week [year]), found {fields}"
        );
        Self::parse_with(&parser, text, &QUARTZ_FIELDS)
    }

    fn parse_with(parser: &CronParser, text: &str, names: &[&str]) -> anyhow::Result<Cron> {
        match parser.parse(text) {
            Ok(inner) => Ok(Cron {
                inner: Box::new(inner),
            }),
            Err(whole) => {
                // `croner` does not say which field failed: try each one alone among
                // wildcards, so the message can name it.
                let parts: Vec<&str> = text.split_whitespace().collect();
                for (i, part) in parts.iter().enumerate() {
                    let alone: Vec<&str> = (0..parts.len())
                        .map(|j| if j == i { *part } else { "*" })
                        .collect();
                    if let Err(e) = parser.parse(&alone.join(" ")) {
                        let name = names.get(i).copied().unwrap_or("field");
                        anyhow::bail!("{name}: `{part}`: {e}");
                    }
                }
                anyhow::bail!("`{text}`: {whole}")
            }
        }
    }

    /// Whether the second at Unix time `t` (UTC) matches.
    pub fn matches(&self, t: i64) -> bool {
        DateTime::<Utc>::from_timestamp(t, 0)
            .is_some_and(|at| self.inner.is_time_matching(&at).unwrap_or(false))
    }

    /// The first matching time after `after` (Unix seconds), if there is one before the year
    /// 5000 (`0 0 31 2 *` has none).
    pub fn next_after(&self, after: i64) -> Option<i64> {
        let at = DateTime::<Utc>::from_timestamp(after, 0)?;
        self.inner
            .find_next_occurrence(&at, false)
            .ok()
            .map(|next| next.timestamp())
    }
}

/// Parses an expression with `croner`'s defaults (five to seven fields); only for tests that
/// compare the dialects.
#[cfg(test)]
fn croner_default(text: &str) -> Option<croner::Cron> {
    use std::str::FromStr as _;
    croner::Cron::from_str(text).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::clock::civil_from_days as civil;

    // 2026-11-25T10:07:00Z, a Wednesday.
    const T: i64 = 1_795_601_220;

    #[test]
    fn calendar_fields_are_right() {
        assert_eq!(civil(T.div_euclid(86_400)), (2026, 11, 25));
        assert!(Cron::parse("7 10 * * 3").unwrap().matches(T));
        assert!(!Cron::parse("7 10 * * 4").unwrap().matches(T));
        assert!(Cron::parse("7 10 * * WED").unwrap().matches(T));
    }

    #[test]
    fn next_times() {
        let every_15 = Cron::parse("*/15 * * * *").unwrap();
        assert_eq!(every_15.next_after(T), Some(T + 8 * 60)); // 10:15
        let nightly = Cron::parse("30 2 * * *").unwrap();
        let next = nightly.next_after(T).unwrap();
        assert_eq!(civil(next.div_euclid(86_400)), (2026, 11, 26));
        assert_eq!(next.rem_euclid(86_400), 2 * 3600 + 30 * 60);
        // Weekdays at 09:00: Thursday next.
        let workdays = Cron::parse("0 9 * * 1-5").unwrap();
        assert_eq!(workdays.next_after(T).unwrap() - T, 86_400 - 67 * 60);
        // Day 1 or Sunday (either, as both are restricted): Sunday 2026-11-29 first.
        let either = Cron::parse("0 0 1 * 0").unwrap();
        assert_eq!(
            civil(either.next_after(T).unwrap().div_euclid(86_400)),
            (2026, 11, 29)
        );
        let leap = Cron::parse("0 0 29 2 *").unwrap();
        assert_eq!(
            civil(leap.next_after(T).unwrap().div_euclid(86_400)),
            (2028, 2, 29)
        );
        assert!(Cron::parse("0 0 31 2 *").unwrap().next_after(T).is_none());
        // 7 is Sunday.
        assert_eq!(
            Cron::parse("0 0 * * 7").unwrap(),
            Cron::parse("0 0 * * 0").unwrap()
        );
        // Strictly after: at a matching minute, the next one.
        assert_eq!(every_15.next_after(T + 8 * 60), Some(T + 23 * 60));
    }

    #[test]
    fn quartz_expressions_as_elastic_stores_them() {
        // Elastic's default: every day at midnight.
        let midnight = Cron::parse_quartz("0 0 0 * * ?").unwrap();
        let next = midnight.next_after(T).unwrap();
        assert_eq!(civil(next.div_euclid(86_400)), (2026, 11, 26));
        assert_eq!(next.rem_euclid(86_400), 0);
        // Seconds count: every 30 seconds.
        let often = Cron::parse_quartz("*/30 * * * * ?").unwrap();
        assert_eq!(often.next_after(T), Some(T + 30));
        // Day of week 1 is Sunday in Quartz (0 in POSIX): 2026-11-29.
        let sundays = Cron::parse_quartz("0 0 12 ? * 1").unwrap();
        let next = sundays.next_after(T).unwrap();
        assert_eq!(civil(next.div_euclid(86_400)), (2026, 11, 29));
        assert_eq!(
            next,
            Cron::parse("0 12 * * 0").unwrap().next_after(T).unwrap()
        );
        // A year field.
        let once = Cron::parse_quartz("0 0 0 1 1 ? 2030").unwrap();
        assert_eq!(
            civil(once.next_after(T).unwrap().div_euclid(86_400)),
            (2030, 1, 1)
        );
        assert!(once.next_after(T + 5 * 366 * 86_400).is_none());
        // The five-field form is not Quartz.
        let err = Cron::parse_quartz("0 0 * * *").unwrap_err().to_string();
        assert!(err.contains("six or seven fields"), "{err}");
        // What croner alone would do with Quartz's `1`: Monday, which is why the dialect is
        // configured.
        let posix_reading = croner_default("0 0 12 ? * 1").unwrap();
        let at = DateTime::<Utc>::from_timestamp(T, 0).unwrap();
        let monday = posix_reading.find_next_occurrence(&at, false).unwrap();
        assert_eq!(civil(monday.timestamp().div_euclid(86_400)), (2026, 11, 30));
    }

    #[test]
    fn bad_expressions_name_the_field() {
        for (text, needle) in [
            ("* * * *", "five fields"),
            ("* * * * * *", "five fields"),
            ("60 * * * *", "minute: `60`"),
            ("* 24 * * *", "hour: `24`"),
            ("* * 0 * *", "day of month: `0`"),
            ("* * * 13 *", "month: `13`"),
            ("* * * * 8", "day of week: `8`"),
            ("*/0 * * * *", "minute: `*/0`"),
            ("a * * * *", "minute: `a`"),
            ("59/4294967295 * * * *", "minute: `59/4294967295`"),
            ("* */99999 * * *", "hour: `*/99999`"),
            ("* * * * 0/99999999999", "day of week: `0/99999999999`"),
        ] {
            let err = Cron::parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
        let err = Cron::parse_quartz("0 0 25 * * ?").unwrap_err().to_string();
        assert!(err.contains("hour: `25`"), "{err}");
    }

    proptest::proptest! {
        /// Any text of cron-ish characters parses or is refused; never a panic, and what
        /// parses finds its next time (strictly later) without one.
        #[test]
        fn random_expressions_never_panic(
            fields in proptest::collection::vec("[0-9*/,\\-?LW#]{1,12}", 5..=7),
            t in 0i64..4_000_000_000,
        ) {
            let text = fields.join(" ");
            for cron in [Cron::parse(&text), Cron::parse_quartz(&text)].into_iter().flatten() {
                if let Some(next) = cron.next_after(t) {
                    proptest::prop_assert!(next > t);
                }
            }
        }

        /// Numbers of any size in any position are refused or accepted cleanly.
        #[test]
        fn huge_numbers_never_panic(a in proptest::num::u64::ANY, b in 0u32..60, i in 0usize..5) {
            let mut fields = vec!["*".to_string(); 5];
            fields[i] = format!("{b}/{a}");
            let _ = Cron::parse(&fields.join(" "));
            fields[i] = format!("{b}-{a}");
            let _ = Cron::parse(&fields.join(" "));
        }
    }
}
