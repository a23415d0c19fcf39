//! An error budget for the parts of a sync that may fail on their own — one folder, one user's
//! view, one item — so that one bad part is skipped with a counted, named error instead of
//! failing the whole sync forever, while a source that fails everywhere still fails the sync.
//!
//! Invariants (the limits of Elastic's error monitor, so a migrated connector fails when
//! Elastic's would): the sync fails once more than [`ErrorBudget::MAX_TOTAL`] errors were
//! skipped, or more than [`ErrorBudget::MAX_CONSECUTIVE`] in a row, or when more than
//! [`ErrorBudget::MAX_RATE`] of the last [`ErrorBudget::WINDOW`] outcomes were errors (once that
//! many were recorded). The error that exhausts the budget is returned, with what was skipped
//! before it named. Errors from the host (cancellation, limits) are never skippable.

use std::collections::VecDeque;

use crate::{Error, Result};

/// Counts successes and skipped errors; see the module docs.
#[derive(Debug)]
pub struct ErrorBudget {
    total: u32,
    consecutive: u32,
    window: VecDeque<bool>,
    named: Vec<String>,
    max_total: u32,
    max_consecutive: u32,
}

impl Default for ErrorBudget {
    fn default() -> Self {
        Self::new(Self::MAX_TOTAL, Self::MAX_CONSECUTIVE)
    }
}

impl ErrorBudget {
    /// Skipped errors in a sync, at most.
    pub const MAX_TOTAL: u32 = 1000;
    /// Skipped errors in a row, at most.
    pub const MAX_CONSECUTIVE: u32 = 10;
    /// Largest share of errors in the window.
    pub const MAX_RATE: f64 = 0.15;
    /// Outcomes the rate is measured over.
    pub const WINDOW: usize = 100;
    /// Skipped errors named in the summary.
    const NAMED: usize = 10;

    /// A budget with other totals (tests, or a plugin setting); the rate rule is fixed.
    pub fn new(max_total: u32, max_consecutive: u32) -> Self {
        Self {
            total: 0,
            consecutive: 0,
            window: VecDeque::with_capacity(Self::WINDOW),
            named: Vec::new(),
            max_total,
            max_consecutive,
        }
    }

    fn record(&mut self, failed: bool) {
        if self.window.len() == Self::WINDOW {
            self.window.pop_front();
        }
        self.window.push_back(failed);
    }

    /// Records a part that worked.
    pub fn ok(&mut self) {
        self.consecutive = 0;
        self.record(false);
    }

    /// Records that `what` failed with `error`. `Ok` when it may be skipped (the caller logs
    /// nothing more: this logs a warning naming it); the error, with the budget's verdict,
    /// when the sync must fail instead. Host errors are returned as they are.
    pub fn skip(&mut self, what: &str, error: Error) -> Result<()> {
        if matches!(error, Error::Host(_)) {
            return Err(error);
        }
        self.total += 1;
        self.consecutive += 1;
        self.record(true);
        let line = format!("{what}: {}", error.describe());
        let errors = self.window.iter().filter(|f| **f).count();
        let rate = errors as f64 / self.window.len().max(1) as f64;
        let verdict = if self.total > self.max_total {
            Some(format!("more than {} errors in this sync", self.max_total))
        } else if self.consecutive > self.max_consecutive {
            Some(format!(
                "more than {} errors in a row",
                self.max_consecutive
            ))
        } else if self.window.len() == Self::WINDOW && rate > Self::MAX_RATE {
            Some(format!(
                "{errors} of the last {} parts failed (more than {:.0}%)",
                Self::WINDOW,
                Self::MAX_RATE * 100.0
            ))
        } else {
            None
        };
        if let Some(verdict) = verdict {
            let before = if self.named.is_empty() {
                String::new()
            } else {
                format!("; skipped before: {}", self.named.join("; "))
            };
            return Err(error.context(format!("{verdict}, the last: {what}{before}")));
        }
        crate::warn!("skipped {line}");
        if self.named.len() < Self::NAMED {
            self.named.push(line);
        }
        Ok(())
    }

    /// Errors skipped so far.
    pub fn skipped(&self) -> u32 {
        self.total
    }

    /// One line for the job report when anything was skipped.
    pub fn summary(&self) -> Option<String> {
        (self.total > 0).then(|| {
            let more = self.total as usize - self.named.len();
            let tail = if more > 0 {
                format!("; and {more} more")
            } else {
                String::new()
            };
            format!(
                "{} part(s) skipped under the error budget (their documents were kept): {}{tail}",
                self.total,
                self.named.join("; ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn err(n: u32) -> Error {
        Error::Transient(format!("failure {n}"))
    }

    #[test]
    fn a_few_errors_among_successes_are_skipped_and_named() {
        let mut budget = ErrorBudget::default();
        for i in 0..200 {
            if i % 20 == 0 {
                budget.skip(&format!("folder {i}"), err(i)).unwrap();
            } else {
                budget.ok();
            }
        }
        assert_eq!(budget.skipped(), 10);
        let summary = budget.summary().unwrap();
        assert!(summary.starts_with("10 part(s) skipped"), "{summary}");
        assert!(
            summary.contains("folder 0: temporary failure: failure 0"),
            "{summary}"
        );
    }

    #[test]
    fn too_many_in_a_row_fails_naming_the_last_and_the_earlier_ones() {
        let mut budget = ErrorBudget::default();
        for i in 0..ErrorBudget::MAX_CONSECUTIVE {
            budget.skip(&format!("folder {i}"), err(i)).unwrap();
        }
        let e = budget.skip("folder x", err(99)).unwrap_err().describe();
        assert!(e.contains("more than 10 errors in a row"), "{e}");
        assert!(e.contains("the last: folder x"), "{e}");
        assert!(e.contains("folder 0"), "{e}");
        // A success resets the run.
        let mut budget = ErrorBudget::default();
        for i in 0..30 {
            if i % 10 == 9 {
                budget.ok();
            } else {
                budget.skip("f", err(i)).unwrap();
            }
        }
    }

    #[test]
    fn the_error_rate_over_the_window_and_the_total_are_bounded() {
        let mut budget = ErrorBudget::default();
        // 1 error in 6: 16.7%, never 10 in a row; fails once the window is full.
        let mut failed_at = None;
        for i in 0..200u32 {
            if i % 6 == 0 {
                if let Err(e) = budget.skip("item", err(i)) {
                    assert!(e.describe().contains("of the last 100 parts failed"));
                    failed_at = Some(i);
                    break;
                }
            } else {
                budget.ok();
            }
        }
        assert!(failed_at.is_some_and(|i| i >= 99), "{failed_at:?}");
        let mut budget = ErrorBudget::new(3, 100);
        for i in 0..3 {
            budget.skip("x", err(i)).unwrap();
            budget.ok();
        }
        assert!(
            budget
                .skip("x", err(4))
                .unwrap_err()
                .describe()
                .contains("more than 3 errors in this sync")
        );
    }

    #[test]
    fn host_errors_are_never_skipped() {
        let mut budget = ErrorBudget::default();
        let e = budget
            .skip("folder", Error::Host("cancelled".into()))
            .unwrap_err();
        assert!(matches!(e, Error::Host(_)));
        assert_eq!(budget.skipped(), 0);
    }
}
