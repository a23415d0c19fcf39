//! The job vocabulary: what a sync job is, how it ends, and the typed reasons it fails.
//!
//! Invariants:
//! - a job has exactly one [`SyncKind`] and ends in exactly one terminal [`JobStatus`]
//!   (`succeeded`, `failed`, `cancelled`); `queued` and `running` are the only other states;
//! - every failure carries a [`JobErrorKind`], spelled in snake case the same way in reports,
//!   the service API and the database, so callers match on the enum, never on message text;
//! - the service's OpenAPI schemas of these types are derived from them (`ToSchema`), so the
//!   document's enums are these serde spellings.

mod counters;
mod records;
mod report;

use serde::{Deserialize, Serialize};

pub use counters::{Counters, CountsSnapshot};
pub use records::Jobs;
pub use report::JobReport;

/// What kind of sync a job runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncKind {
    /// Everything; vanished documents are deleted at the end.
    Full,
    /// Changes since the last checkpoint.
    Incremental,
    /// Access-control documents.
    AccessControl,
}

impl SyncKind {
    /// Every kind, in the order schedules and reports list them.
    pub const ALL: [SyncKind; 3] = [
        SyncKind::Full,
        SyncKind::Incremental,
        SyncKind::AccessControl,
    ];

    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncKind::Full => "full",
            SyncKind::Incremental => "incremental",
            SyncKind::AccessControl => "access_control",
        }
    }
}

impl std::fmt::Display for SyncKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a job ended (or that it has not).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for a free slot (the service's queue).
    Queued,
    /// Running now.
    Running,
    /// The plugin finished and everything was committed.
    Succeeded,
    /// The plugin or the host failed; nothing was deleted.
    Failed,
    /// Stopped on request; nothing was deleted.
    Cancelled,
}

impl JobStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Cancelled => "cancelled",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
        }
    }

    /// The status a stored name stands for; an unknown name reads as `failed`.
    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "queued" => JobStatus::Queued,
            "cancelled" => JobStatus::Cancelled,
            "succeeded" => JobStatus::Succeeded,
            "running" => JobStatus::Running,
            _ => JobStatus::Failed,
        }
    }

    /// Whether the job has ended.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a job failed: a plugin's own error case, or the host's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobErrorKind {
    /// The connector's configuration, rules or plugin choice is wrong (plugin or host).
    Config,
    /// Credentials were refused (plugin).
    Auth,
    /// Something the configuration names does not exist (plugin).
    NotFound,
    /// The source kept answering "too many requests" (plugin).
    RateLimited,
    /// A failure worth retrying later (plugin).
    Transient,
    /// The source answered something the plugin could not understand (plugin).
    Protocol,
    /// Any other plugin error.
    Other,
    /// The plugin trapped (a bug in the plugin, or a host call it misused).
    Trap,
    /// The plugin broke a sandbox limit (memory, CPU, host-call rate).
    Limit,
    /// A tenant quota (documents, bytes) would have been exceeded.
    Quota,
    /// An export did not return within the wall-clock limit.
    Timeout,
    /// The job was cancelled on request.
    Cancelled,
    /// The host itself failed (index, database).
    Host,
}

impl JobErrorKind {
    /// The snake-case name used in reports, the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            JobErrorKind::Config => "config",
            JobErrorKind::Auth => "auth",
            JobErrorKind::NotFound => "not_found",
            JobErrorKind::RateLimited => "rate_limited",
            JobErrorKind::Transient => "transient",
            JobErrorKind::Protocol => "protocol",
            JobErrorKind::Other => "other",
            JobErrorKind::Trap => "trap",
            JobErrorKind::Limit => "limit",
            JobErrorKind::Quota => "quota",
            JobErrorKind::Timeout => "timeout",
            JobErrorKind::Cancelled => "cancelled",
            JobErrorKind::Host => "host",
        }
    }
}

impl std::fmt::Display for JobErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for JobErrorKind {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for JobErrorKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A typed failure: its [`JobErrorKind`] and what happened, in words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobError {
    /// Category.
    pub kind: JobErrorKind,
    /// What happened, in words.
    pub message: String,
}

impl JobError {
    /// A failure of `kind`.
    pub fn new(kind: JobErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} error: {}", self.kind, self.message)
    }
}

impl std::error::Error for JobError {}

/// A new, unique job id.
pub fn new_job_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{nanos:x}-{:x}-{n}", std::process::id())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn error_kinds_keep_their_wire_names() {
        for kind in [
            JobErrorKind::Config,
            JobErrorKind::NotFound,
            JobErrorKind::RateLimited,
            JobErrorKind::Quota,
        ] {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<JobErrorKind>(&json).unwrap(), kind);
        }
        assert_eq!(JobErrorKind::Cancelled, "cancelled");
    }
}
