//! Sync job records: what ran, on which plugin version, how it ended, with its counts.

use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};

use crate::capabilities::index::{CountsSnapshot, SyncKind};
use crate::db::Db;

/// How a job ended (or that it has not).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

    fn parse(s: &str) -> Self {
        match s {
            "queued" => JobStatus::Queued,
            "cancelled" => JobStatus::Cancelled,
            "succeeded" => JobStatus::Succeeded,
            "running" => JobStatus::Running,
            _ => JobStatus::Failed,
        }
    }
}

/// A typed failure: `kind` is the plugin's error case (`auth`, `config`, `transient`, …) or a
/// host verdict (`limit`, `trap`, `timeout`, `host`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobError {
    /// Category.
    pub kind: String,
    /// What happened, in words.
    pub message: String,
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} error: {}", self.kind, self.message)
    }
}

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

/// A short human summary: kind, connector, outcome, duration and plugin version on the first
/// line; the counts on the second; then the error and at most five warnings, one per line.
impl std::fmt::Display for JobReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.counts;
        let status = match self.status {
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "FAILED",
            JobStatus::Running => "running",
            JobStatus::Queued => "queued",
            JobStatus::Cancelled => "cancelled",
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
        if let Some(e) = &self.error {
            write!(f, "\n  error: {e}")?;
        }
        for w in self.warnings.iter().take(5) {
            write!(f, "\n  warning: {w}")?;
        }
        Ok(())
    }
}

/// Job records in the host database.
#[derive(Clone, Debug)]
pub struct Jobs {
    db: Db,
}

impl Jobs {
    /// Records live in `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Writes (inserts or replaces) a job record.
    pub async fn save(&self, report: &JobReport) -> anyhow::Result<()> {
        let r = report.clone();
        let body = serde_json::to_string(&r)?;
        self.db
            .call(move |conn| {
                conn.execute(
                    "INSERT INTO jobs (id, tenant, connector, kind, status, plugin, plugin_version, created_at, started_at, finished_at, report, error)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?10, ?11)
                     ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, status = excluded.status, plugin_version = excluded.plugin_version, started_at = excluded.started_at, finished_at = excluded.finished_at, report = excluded.report, error = excluded.error",
                    rusqlite::params![
                        r.id, r.tenant, r.connector, r.kind.to_string(), r.status.as_str(), r.plugin, r.plugin_version,
                        r.started_at, r.finished_at, body, r.error.as_ref().map(|e| e.to_string())
                    ],
                )?;
                Ok(())
            })
            .await
    }

    /// The most recent jobs of a connector, newest first.
    pub async fn recent(
        &self,
        tenant: &str,
        connector: &str,
        limit: usize,
    ) -> anyhow::Result<Vec<JobReport>> {
        self.list(tenant, Some(connector), None, limit).await
    }

    /// One job of a tenant.
    pub async fn get(&self, tenant: &str, id: &str) -> anyhow::Result<Option<JobReport>> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        self.db
            .call(move |conn| {
                let row = conn
                    .query_row(
                        "SELECT report, status FROM jobs WHERE tenant = ?1 AND id = ?2",
                        rusqlite::params![tenant, id],
                        |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
                    )
                    .optional()?;
                match row {
                    Some((body, status)) => {
                        let mut report: JobReport = serde_json::from_str(&body)?;
                        report.status = JobStatus::parse(&status);
                        Ok(Some(report))
                    }
                    None => Ok(None),
                }
            })
            .await
    }

    /// A tenant's most recent jobs, newest first, optionally of one connector or status.
    pub async fn list(
        &self,
        tenant: &str,
        connector: Option<&str>,
        status: Option<JobStatus>,
        limit: usize,
    ) -> anyhow::Result<Vec<JobReport>> {
        let tenant = tenant.to_string();
        let connector = connector.map(str::to_string);
        let status = status.map(|s| s.as_str().to_string());
        self.db
            .call(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT report, status FROM jobs WHERE tenant = ?1
                       AND (?2 IS NULL OR connector = ?2) AND (?3 IS NULL OR status = ?3)
                     ORDER BY created_at DESC, rowid DESC LIMIT ?4",
                )?;
                let rows = stmt.query_map(
                    rusqlite::params![tenant, connector, status, limit as i64],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
                )?;
                let mut out = Vec::new();
                for row in rows {
                    let (body, status) = row?;
                    let mut report: JobReport = serde_json::from_str(&body)?;
                    report.status = JobStatus::parse(&status);
                    out.push(report);
                }
                Ok(out)
            })
            .await
    }

    /// Changes only the status of a recorded job (queued → running, or back after a restart).
    pub async fn set_status(&self, id: &str, status: JobStatus) -> anyhow::Result<()> {
        let id = id.to_string();
        self.db
            .call(move |conn| {
                conn.execute(
                    "UPDATE jobs SET status = ?2 WHERE id = ?1",
                    rusqlite::params![id, status.as_str()],
                )?;
                Ok(())
            })
            .await
    }

    /// Whether a `kind` sync of the connector has ever succeeded.
    pub async fn has_succeeded(
        &self,
        tenant: &str,
        connector: &str,
        kind: SyncKind,
    ) -> anyhow::Result<bool> {
        let args = (tenant.to_string(), connector.to_string(), kind.to_string());
        self.db
            .call(move |conn| {
                Ok(conn
                    .query_row(
                        "SELECT 1 FROM jobs WHERE tenant = ?1 AND connector = ?2 AND kind = ?3 AND status = 'succeeded' LIMIT 1",
                        [args.0, args.1, args.2],
                        |_| Ok(()),
                    )
                    .optional()?
                    .is_some())
            })
            .await
    }

    /// Whether a job exists.
    pub async fn exists(&self, id: &str) -> anyhow::Result<bool> {
        let id = id.to_string();
        self.db
            .call(move |conn| {
                Ok(conn
                    .query_row("SELECT 1 FROM jobs WHERE id = ?1", [id], |_| Ok(()))
                    .optional()?
                    .is_some())
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn report(id: &str, kind: SyncKind, status: JobStatus) -> JobReport {
        JobReport {
            id: id.into(),
            tenant: "t".into(),
            connector: "c".into(),
            kind,
            plugin: "feed".into(),
            plugin_version: String::new(),
            status,
            counts: CountsSnapshot::default(),
            error: None,
            warnings: Vec::new(),
            started_at: 1,
            finished_at: None,
            duration_ms: 0,
        }
    }

    #[test]
    fn a_report_displays_as_a_summary() {
        let mut r = report("j1", SyncKind::Full, JobStatus::Failed);
        r.plugin_version = "0.1.0".into();
        r.duration_ms = 1500;
        r.counts.received = 3;
        r.counts.indexed = 2;
        r.counts.access_control = 4;
        r.warnings = (0..7).map(|i| format!("w{i}")).collect();
        let text = r.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "full sync of t/c FAILED in 1.5s (feed@0.1.0)");
        assert_eq!(
            lines[1],
            "  received 3, indexed 2, unchanged 0, filtered 0, deleted 0; content: 0 extracted, 0 skipped, 0 failed; 4 access-control documents"
        );
        assert_eq!(
            &lines[2..],
            [
                "  warning: w0",
                "  warning: w1",
                "  warning: w2",
                "  warning: w3",
                "  warning: w4"
            ]
        );
    }

    #[tokio::test]
    async fn a_queued_job_saved_again_takes_the_kind_and_status_it_ran_with() {
        let jobs = Jobs::new(Db::in_memory().unwrap());
        // Queued as incremental; ran as a full sync (no full had succeeded yet).
        jobs.save(&report("j1", SyncKind::Incremental, JobStatus::Queued))
            .await
            .unwrap();
        jobs.set_status("j1", JobStatus::Running).await.unwrap();
        assert_eq!(
            jobs.list("t", None, Some(JobStatus::Running), 10)
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(!jobs.has_succeeded("t", "c", SyncKind::Full).await.unwrap());
        let mut done = report("j1", SyncKind::Full, JobStatus::Succeeded);
        done.plugin_version = "0.1.0".into();
        jobs.save(&done).await.unwrap();
        assert!(jobs.has_succeeded("t", "c", SyncKind::Full).await.unwrap());
        assert!(
            !jobs
                .has_succeeded("t", "c", SyncKind::Incremental)
                .await
                .unwrap()
        );
        let got = jobs.get("t", "j1").await.unwrap().unwrap();
        assert_eq!(
            (got.kind, got.status),
            (SyncKind::Full, JobStatus::Succeeded)
        );
        assert!(jobs.get("other", "j1").await.unwrap().is_none());
        assert_eq!(jobs.list("t", Some("c"), None, 10).await.unwrap().len(), 1);
    }
}
