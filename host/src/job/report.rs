//! The record of one job, and its one-paragraph summary.

use serde::{Deserialize, Serialize};

use super::{CountsSnapshot, JobError, JobStatus, SyncKind};

/// The record of one job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobReport {
    /// Job id.
    pub id: String,
    /// Tenant.
    pub tenant: String,
    /// Connector.
    pub connector: String,
    /// Sync kind.
    pub kind: SyncKind,
    /// Plugin name.
    pub plugin: String,
    /// Plugin version it ran on.
    pub plugin_version: String,
    /// Outcome.
    pub status: JobStatus,
    /// Counts.
    pub counts: CountsSnapshot,
    /// Why it failed.
    pub error: Option<JobError>,
    /// Warnings the plugin logged.
    pub warnings: Vec<String>,
    /// Start, Unix seconds.
    pub started_at: i64,
    /// End, Unix seconds.
    pub finished_at: Option<i64>,
    /// Duration in milliseconds.
    pub duration_ms: u64,
}

impl std::fmt::Display for JobReport {
    /// A summary for logs and terminals: outcome, counts, error and the first warnings.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.counts;
        let status = match self.status {
            JobStatus::Failed => "FAILED",
            other => other.as_str(),
        };
        write!(
            f,
            "{} sync of {}/{} {status} in {:.1}s ({}@{})\n  received {}, indexed {}, unchanged {}, filtered {}, deleted {}; content: {} extracted, {} skipped, {} failed",
            self.kind,
            self.tenant,
            self.connector,
            self.duration_ms as f64 / 1000.0,
            self.plugin,
            self.plugin_version,
            c.received,
            c.indexed,
            c.unchanged,
            c.filtered,
            c.deleted,
            c.content_extracted,
            c.content_skipped,
            c.content_failed,
        )?;
        if c.access_control > 0 {
            write!(f, "; {} access-control documents", c.access_control)?;
        }
        if c.kept > 0 {
            write!(
                f,
                "; {} kept unlisted (their part of the source could not be read)",
                c.kept
            )?;
        }
        if let Some(e) = &self.error {
            write!(f, "\n  error: {e}")?;
        }
        for w in self.warnings.iter().take(5) {
            write!(f, "\n  warning: {w}")?;
        }
        Ok(())
    }
}
