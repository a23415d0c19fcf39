//! The one retry policy: which answers are worth another attempt, and how long to wait.
//!
//! Invariants:
//! - 2xx other than 202 is a body; 202 ("accepted, not ready yet" — Box answers it while a new
//!   upload is processed), 408, 425, 429 and 5xx are worth retrying; everything else is final;
//! - waits grow exponentially with jitter from the policy's first delay, never past its maximum;
//!   a server's `Retry-After` (seconds or an HTTP date) replaces the computed wait, capped at
//!   [`MAX_RETRY_AFTER`] so no server can park a job for hours.

use std::time::{Duration, SystemTime};

use backon::ExponentialBuilder;

/// The longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// What an HTTP status means for a retrying caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The answer is the result.
    Done,
    /// Not ready or overloaded: try again later.
    RetryLater,
    /// A final refusal.
    Fail,
}

/// Classifies a response status.
pub fn judge(status: u16) -> Verdict {
    match status {
        202 | 408 | 425 | 429 => Verdict::RetryLater,
        200..=299 => Verdict::Done,
        500..=599 => Verdict::RetryLater,
        _ => Verdict::Fail,
    }
}

/// A `Retry-After` header as a wait from `now`: delay-seconds or an HTTP date, capped at
/// [`MAX_RETRY_AFTER`]. A date in the past means "now".
pub fn retry_after(headers: &[(String, String)], now: SystemTime) -> Option<Duration> {
    let value = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("retry-after"))
        .map(|(_, v)| v.trim())?;
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = httpdate::parse_http_date(value).ok()?;
            at.duration_since(now).unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// Exponential backoff with jitter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first wait.
    pub first_delay: Duration,
    /// No computed wait is longer.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// A policy starting at `first_delay`.
    pub fn starting_at(first_delay: Duration) -> Self {
        Self {
            first_delay,
            ..Self::default()
        }
    }

    /// The backoff for at most `retries` retries.
    pub fn backoff(&self, retries: usize) -> ExponentialBuilder {
        ExponentialBuilder::new()
            .with_min_delay(self.first_delay)
            .with_max_delay(self.max_delay.max(self.first_delay))
            .with_factor(2.0)
            .with_max_times(retries)
            .with_jitter()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use backon::BackoffBuilder;

    use super::*;

    fn header(v: &str) -> Vec<(String, String)> {
        vec![("Retry-After".into(), v.into())]
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(retry_after(&header("7"), now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(42));
        assert_eq!(
            retry_after(&header(&later), now),
            Some(Duration::from_secs(42))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(42));
        assert_eq!(retry_after(&header(&past), now), Some(Duration::ZERO));
        assert_eq!(retry_after(&header("86400"), now), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after(&header("soon"), now), None);
        assert_eq!(retry_after(&[], now), None);
    }

    #[test]
    fn statuses_are_judged() {
        assert_eq!(judge(200), Verdict::Done);
        assert_eq!(judge(206), Verdict::Done);
        assert_eq!(judge(202), Verdict::RetryLater);
        assert_eq!(judge(429), Verdict::RetryLater);
        assert_eq!(judge(503), Verdict::RetryLater);
        assert_eq!(judge(404), Verdict::Fail);
        assert_eq!(judge(401), Verdict::Fail);
    }

    #[test]
    fn backoff_grows_with_jitter_and_stops() {
        let policy = RetryPolicy {
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
        };
        let waits: Vec<Duration> = policy.backoff(4).build().collect();
        assert_eq!(waits.len(), 4);
        for (i, wait) in waits.iter().enumerate() {
            let base = Duration::from_millis(100 * 2u64.pow(i as u32)).min(policy.max_delay);
            // Jitter adds up to one more base delay.
            assert!(*wait >= base && *wait <= base * 2, "{i}: {wait:?}");
        }
    }
}
