//! Cron schedules for `tributary serve`: the classic five fields (minute, hour, day of month,
//! month, day of week), in UTC.
//!
//! Each field takes `*`, numbers, ranges `a-b`, steps `*/n` and `a-b/n`, and comma lists; day of
//! week is 0-7 with both 0 and 7 meaning Sunday. As in Vixie cron, when both day fields are
//! restricted a day matches if either does. A step is 1 to the field's largest value; any
//! other text is an error naming the field, never a panic (a property test feeds it noise).

use crate::clock::civil_from_days as civil;

/// A parsed cron expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    days_any: bool,
    weekdays_any: bool,
}

fn field(text: &str, name: &str, lo: u32, hi: u32) -> anyhow::Result<(u64, bool)> {
    let mut bits = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .map_err(|_| anyhow::anyhow!("{name}: step `{s}` is not a number"))?;
                anyhow::ensure!(step >= 1, "{name}: step must be at least 1");
                anyhow::ensure!(step <= hi, "{name}: step {step} is more than {hi}");
                (r, step)
            }
            None => (part, 1),
        };
        let number = |s: &str| -> anyhow::Result<u32> {
            let n: u32 = s
                .parse()
                .map_err(|_| anyhow::anyhow!("{name}: `{s}` is not a number"))?;
            anyhow::ensure!((lo..=hi).contains(&n), "{name}: {n} is outside {lo}-{hi}");
            Ok(n)
        };
        let (from, to) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (number(a)?, number(b)?);
            anyhow::ensure!(a <= b, "{name}: range {a}-{b} runs backwards");
            (a, b)
        } else {
            let a = number(range)?;
            // `5/15` means from 5 to the end, every 15.
            (a, if step > 1 { hi } else { a })
        };
        // `to` is at most 59 and `step` at most `hi`, so this never overflows.
        let mut v = from;
        while v <= to {
            bits |= 1 << v;
            v = v.saturating_add(step);
        }
    }
    Ok((bits, text == "*"))
}

impl Cron {
    /// Parses `"m h dom mon dow"`; the error names the field at fault.
    pub fn parse(text: &str) -> anyhow::Result<Cron> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        anyhow::ensure!(
            parts.len() == 5,
            "`{text}` needs five fields (minute hour day-of-month month day-of-week), found {}",
            parts.len()
        );
        let (minutes, _) = field(parts[0], "minute", 0, 59)?;
        let (hours, _) = field(parts[1], "hour", 0, 23)?;
        let (days, days_any) = field(parts[2], "day of month", 1, 31)?;
        let (months, _) = field(parts[3], "month", 1, 12)?;
        let (mut weekdays, weekdays_any) = field(parts[4], "day of week", 0, 7)?;
        if weekdays & (1 << 7) != 0 {
            weekdays = (weekdays | 1) & !(1 << 7); // 7 is Sunday too
        }
        Ok(Cron {
            minutes,
            hours,
            days,
            months,
            weekdays,
            days_any,
            weekdays_any,
        })
    }

    /// Whether the minute starting at Unix time `t` (seconds, UTC) matches.
    pub fn matches(&self, t: i64) -> bool {
        let days = t.div_euclid(86_400);
        let secs = t.rem_euclid(86_400);
        let (minute, hour) = ((secs / 60) % 60, secs / 3600);
        let (_, month, _) = civil(days);
        let bit = |set: u64, v: i64| set & (1u64 << v) != 0;
        bit(self.minutes, minute)
            && bit(self.hours, hour)
            && bit(self.months, month)
            && self.day_matches(days)
    }

    /// The first matching minute after `after` (Unix seconds), looking at most a little over
    /// four years ahead (so `0 0 29 2 *` is found).
    pub fn next_after(&self, after: i64) -> Option<i64> {
        let mut t = after.div_euclid(60) * 60 + 60;
        let end = t + 4 * 366 * 86_400 + 86_400;
        while t < end {
            let days = t.div_euclid(86_400);
            let (_, month, _) = civil(days);
            if self.months & (1 << month) == 0 || !self.day_matches(days) {
                t = (days + 1) * 86_400; // skip to the next day
                continue;
            }
            let hour = t.rem_euclid(86_400) / 3600;
            if self.hours & (1 << hour) == 0 {
                t = t.div_euclid(3600) * 3600 + 3600; // skip to the next hour
                continue;
            }
            if self.matches(t) {
                return Some(t);
            }
            t += 60;
        }
        None
    }

    /// The day rule: day of month and day of week, either one when both are restricted.
    fn day_matches(&self, days: i64) -> bool {
        let (_, _, day) = civil(days);
        // 1970-01-01 was a Thursday (4).
        let weekday = (days + 4).rem_euclid(7);
        let bit = |set: u64, v: i64| set & (1u64 << v) != 0;
        match (self.days_any, self.weekdays_any) {
            (true, true) => true,
            (false, true) => bit(self.days, day),
            (true, false) => bit(self.weekdays, weekday),
            (false, false) => bit(self.days, day) || bit(self.weekdays, weekday),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // 2026-11-25T10:07:00Z, a Wednesday.
    const T: i64 = 1_795_601_220;

    #[test]
    fn calendar_fields_are_right() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(T.div_euclid(86_400)), (2026, 11, 25));
        assert_eq!(civil(11_016), (2000, 2, 29));
        assert!(Cron::parse("7 10 * * 3").unwrap().matches(T));
        assert!(!Cron::parse("7 10 * * 4").unwrap().matches(T));
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
    }

    #[test]
    fn bad_expressions_name_the_field() {
        for (text, needle) in [
            ("* * * *", "five fields"),
            ("60 * * * *", "minute: 60 is outside 0-59"),
            ("* 24 * * *", "hour"),
            ("* * 0 * *", "day of month"),
            ("* * * 13 *", "month"),
            ("* * * * 8", "day of week"),
            ("*/0 * * * *", "step must be at least 1"),
            ("5-1 * * * *", "runs backwards"),
            ("a * * * *", "not a number"),
            (
                "59/4294967295 * * * *",
                "minute: step 4294967295 is more than 59",
            ),
            ("* */24 * * *", "hour: step 24 is more than 23"),
            ("* * * * 0/99999999999", "day of week: step"),
        ] {
            let err = Cron::parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    proptest::proptest! {
        /// Any text of cron-ish characters parses or is refused; never a panic, and what
        /// parses finds its next time without one.
        #[test]
        fn random_expressions_never_panic(
            fields in proptest::collection::vec("[0-9*/,\\-]{1,12}", 5),
            t in 0i64..4_000_000_000,
        ) {
            if let Ok(cron) = Cron::parse(&fields.join(" ")) {
                let _ = cron.next_after(t);
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
