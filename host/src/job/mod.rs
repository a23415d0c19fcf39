//! The job vocabulary shared by every layer: what kind of sync a job runs. It sits below
//! `connector` (schedules are per kind) and the pipeline, so neither imports the other for it.

use serde::{Deserialize, Serialize};

/// What kind of sync a job runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncKind {
    /// Everything; vanished documents are deleted at the end.
    Full,
    /// Changes since the last checkpoint.
    Incremental,
    /// Access-control documents.
    AccessControl,
}

impl std::fmt::Display for SyncKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SyncKind::Full => "full",
            SyncKind::Incremental => "incremental",
            SyncKind::AccessControl => "access_control",
        })
    }
}
