//! Job records in the host database: what ran, on which plugin version, how it ended, with its
//! counts. A record is written when a job is queued or starts and replaced when it ends.

use rusqlite::OptionalExtension;

use super::{JobReport, JobStatus, SyncKind};
use crate::db::Db;

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

    /// When each connector's most recent successful sync (any kind) finished, Unix seconds:
    /// `(tenant, connector, finished_at)`. One grouped query, for the metrics scrape.
    pub async fn last_successes(&self) -> anyhow::Result<Vec<(String, String, i64)>> {
        self.db
            .call(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT tenant, connector, MAX(finished_at) FROM jobs
                     WHERE status = 'succeeded' AND finished_at IS NOT NULL
                     GROUP BY tenant, connector",
                )?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
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
    use crate::job::CountsSnapshot;

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

    #[tokio::test]
    async fn last_successes_are_the_newest_succeeded_finish_per_connector() {
        let jobs = Jobs::new(Db::in_memory().unwrap());
        let ended = |id: &str, connector: &str, status: JobStatus, at: i64| {
            let mut r = report(id, SyncKind::Full, status);
            r.connector = connector.into();
            r.finished_at = Some(at);
            r
        };
        jobs.save(&ended("a1", "a", JobStatus::Succeeded, 100))
            .await
            .unwrap();
        jobs.save(&ended("a2", "a", JobStatus::Succeeded, 300))
            .await
            .unwrap();
        // A later failure does not move the last success.
        jobs.save(&ended("a3", "a", JobStatus::Failed, 500))
            .await
            .unwrap();
        jobs.save(&ended("b1", "b", JobStatus::Failed, 200))
            .await
            .unwrap();
        jobs.save(&report("c1", SyncKind::Full, JobStatus::Running))
            .await
            .unwrap();
        assert_eq!(
            jobs.last_successes().await.unwrap(),
            vec![("t".to_string(), "a".to_string(), 300)]
        );
    }
}
