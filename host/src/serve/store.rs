//! The service's control-plane records in the host database: tenants (with hashed API tokens
//! and quotas), connectors, the durable job queue, schedule marks and uploaded plugin versions.
//!
//! Every write is one SQLite statement or transaction (WAL, `synchronous=FULL`), so a crash
//! leaves either the old or the new record, never half of one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::clock::unix_now;
use crate::connector::ConnectorSpec;
use crate::db::Db;
use crate::job::SyncKind;

/// Per-tenant limits; unset fields take the service's `[service.tenant_defaults]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TenantQuotas {
    /// Connectors the tenant may configure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connectors: Option<u32>,
    /// Syncs of this tenant running at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrent_syncs: Option<u32>,
    /// Documents across all of the tenant's indexes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_documents: Option<u64>,
    /// Plugin storage bytes across all of the tenant's connectors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_storage_bytes: Option<u64>,
    /// Sandbox memory per plugin instance, MiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
    /// Guest CPU time per export call, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<u64>,
    /// Wall-clock time per export call, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wall_seconds: Option<u64>,
}

impl TenantQuotas {
    /// Refuses values that would make every job of the tenant fail or overflow a clock: a
    /// `memory_mib`, `cpu_seconds`, `wall_seconds` or `max_concurrent_syncs` of 0, and times
    /// longer than 366 days. The error names the field. (`max_connectors`, `max_documents` and
    /// `max_storage_bytes` of 0 are meaningful: a tenant that may hold nothing.)
    pub fn check(&self) -> anyhow::Result<()> {
        const MAX_SECONDS: u64 = crate::connector::schedule::MAX_INTERVAL_SECS;
        for (name, value, max) in [
            ("memory_mib", self.memory_mib, u64::MAX),
            ("cpu_seconds", self.cpu_seconds, MAX_SECONDS),
            ("wall_seconds", self.wall_seconds, MAX_SECONDS),
            (
                "max_concurrent_syncs",
                self.max_concurrent_syncs.map(u64::from),
                u64::MAX,
            ),
        ] {
            match value {
                Some(0) => anyhow::bail!(
                    "quota `{name}` must be at least 1 (leave it out for the default)"
                ),
                Some(v) if v > max => {
                    anyhow::bail!("quota `{name}` {v} is more than {max} (366 days)")
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// `self`, with unset fields taken from `defaults`.
    pub fn over(&self, defaults: &TenantQuotas) -> TenantQuotas {
        TenantQuotas {
            max_connectors: self.max_connectors.or(defaults.max_connectors),
            max_concurrent_syncs: self.max_concurrent_syncs.or(defaults.max_concurrent_syncs),
            max_documents: self.max_documents.or(defaults.max_documents),
            max_storage_bytes: self.max_storage_bytes.or(defaults.max_storage_bytes),
            memory_mib: self.memory_mib.or(defaults.memory_mib),
            cpu_seconds: self.cpu_seconds.or(defaults.cpu_seconds),
            wall_seconds: self.wall_seconds.or(defaults.wall_seconds),
        }
    }
}

/// A tenant as stored (the token only as its hash).
#[derive(Clone, Debug, Serialize)]
pub struct Tenant {
    /// Tenant id.
    pub id: String,
    /// Its own quota overrides.
    pub quotas: TenantQuotas,
    /// Whether an API token is set.
    pub has_token: bool,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

/// A queued (or running) job.
#[derive(Clone, Debug, Serialize)]
pub struct QueuedJob {
    /// Queue order.
    pub seq: i64,
    /// Job id.
    pub job_id: String,
    /// Tenant.
    pub tenant: String,
    /// Connector.
    pub connector: String,
    /// Sync kind.
    pub kind: SyncKind,
    /// Waiting, or holding a slot.
    pub state: QueueState,
    /// Runs started so far (a job resumed after a crash has more than one).
    pub attempt: i64,
    /// Why it was queued.
    pub reason: QueueReason,
}

/// Where a queue entry stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueState {
    /// Waiting for a slot.
    Queued,
    /// Holding a slot: its job runs (or ran when the host stopped).
    Running,
}

impl QueueState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            QueueState::Queued => "queued",
            QueueState::Running => "running",
        }
    }

    fn parse(s: &str) -> Self {
        if s == "running" {
            QueueState::Running
        } else {
            QueueState::Queued
        }
    }
}

/// Why a job was queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueReason {
    /// A sync requested through the API.
    Api,
    /// A connector's schedule made it due.
    Schedule,
    /// It was running when the host stopped.
    Restart,
}

impl QueueReason {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            QueueReason::Api => "api",
            QueueReason::Schedule => "schedule",
            QueueReason::Restart => "restart",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "schedule" => QueueReason::Schedule,
            "restart" => QueueReason::Restart,
            _ => QueueReason::Api,
        }
    }
}

/// An uploaded plugin version.
#[derive(Clone, Debug)]
pub struct Upload {
    /// SHA-256 of the component.
    pub digest: String,
    /// Plugin name.
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// Where the component is kept.
    pub path: String,
}

/// The service's records.
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
    /// The database file's inode when the service opened it (health compares).
    file_id: Option<u64>,
    /// Bumped (and `connectors_changed` notified) by every write of the connectors table, so
    /// the scheduler re-reads it only when it changed.
    generation: Arc<AtomicU64>,
    connectors_changed: Arc<Notify>,
}

fn kind_from(s: &str) -> SyncKind {
    match s {
        "incremental" => SyncKind::Incremental,
        "access_control" => SyncKind::AccessControl,
        _ => SyncKind::Full,
    }
}

/// A file's identity (inode) on Unix; `None` elsewhere or when it cannot be read.
fn file_id(path: &std::path::Path) -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| m.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

impl Store {
    /// Records live in `db`.
    pub fn new(db: Db) -> Self {
        let file_id = db
            .call_blocking(|c| Ok(c.path().map(str::to_string)))
            .ok()
            .flatten()
            .filter(|p| !p.is_empty())
            .and_then(|p| file_id(std::path::Path::new(&p)));
        Self {
            db,
            file_id,
            generation: Arc::default(),
            connectors_changed: Arc::default(),
        }
    }

    /// How many times the connectors table was written since the service opened.
    pub fn connectors_generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Resolves after the connectors table is written (a write with nobody waiting is kept
    /// for the next waiter).
    pub async fn connectors_changed(&self) {
        self.connectors_changed.notified().await
    }

    fn touched_connectors(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.connectors_changed.notify_one();
    }

    // ---- tenants ----

    /// Creates a tenant; `false` if the id is taken.
    pub async fn create_tenant(
        &self,
        id: &str,
        token_hash: Option<String>,
        quotas: &TenantQuotas,
    ) -> anyhow::Result<bool> {
        let (id, quotas) = (id.to_string(), serde_json::to_string(quotas)?);
        self.db
            .call(move |c| {
                let n = c.execute(
                    "INSERT OR IGNORE INTO tenants (id, token_hash, quotas, created_at) VALUES (?1, ?2, ?3, ?4)",
                    rusqlite::params![id, token_hash, quotas, unix_now()],
                )?;
                Ok(n == 1)
            })
            .await
    }

    fn tenant_row(
        r: &rusqlite::Row<'_>,
    ) -> rusqlite::Result<(String, Option<String>, String, i64)> {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    }

    fn tenant_from(row: (String, Option<String>, String, i64)) -> Tenant {
        let (id, hash, quotas, created_at) = row;
        Tenant {
            id,
            // Quotas are written by this module only; an unreadable row falls back to defaults.
            quotas: serde_json::from_str(&quotas).unwrap_or_default(),
            has_token: hash.is_some(),
            created_at,
        }
    }

    /// One tenant.
    pub async fn tenant(&self, id: &str) -> anyhow::Result<Option<Tenant>> {
        let id = id.to_string();
        self.db
            .call(move |c| {
                Ok(c.query_row(
                    "SELECT id, token_hash, quotas, created_at FROM tenants WHERE id = ?1",
                    [id],
                    Self::tenant_row,
                )
                .optional()?
                .map(Self::tenant_from))
            })
            .await
    }

    /// Every tenant, by id.
    pub async fn tenants(&self) -> anyhow::Result<Vec<Tenant>> {
        self.db
            .call(|c| {
                let mut stmt = c.prepare_cached(
                    "SELECT id, token_hash, quotas, created_at FROM tenants ORDER BY id",
                )?;
                let rows = stmt.query_map([], Self::tenant_row)?;
                let mut out = Vec::new();
                for row in rows {
                    out.push(Self::tenant_from(row?));
                }
                Ok(out)
            })
            .await
    }

    /// The tenant whose token hashes to `hash`.
    pub async fn tenant_by_token(&self, hash: &str) -> anyhow::Result<Option<String>> {
        let hash = hash.to_string();
        self.db
            .call(move |c| {
                Ok(c.query_row(
                    "SELECT id FROM tenants WHERE token_hash = ?1",
                    [hash],
                    |r| r.get(0),
                )
                .optional()?)
            })
            .await
    }

    /// Replaces a tenant's token hash; `false` if there is no such tenant.
    pub async fn set_token(&self, id: &str, hash: String) -> anyhow::Result<bool> {
        let id = id.to_string();
        self.db
            .call(move |c| {
                Ok(c.execute(
                    "UPDATE tenants SET token_hash = ?2 WHERE id = ?1",
                    rusqlite::params![id, hash],
                )? == 1)
            })
            .await
    }

    /// Replaces a tenant's quotas; `false` if there is no such tenant.
    pub async fn set_quotas(&self, id: &str, quotas: &TenantQuotas) -> anyhow::Result<bool> {
        let (id, quotas) = (id.to_string(), serde_json::to_string(quotas)?);
        self.db
            .call(move |c| {
                Ok(c.execute(
                    "UPDATE tenants SET quotas = ?2 WHERE id = ?1",
                    rusqlite::params![id, quotas],
                )? == 1)
            })
            .await
    }

    /// Deletes a tenant with every record it owns, in one transaction: its token, connectors,
    /// queued jobs, schedule marks, plugin state, job records and their progress. `Ok(false)`
    /// if it does not exist. (Its jobs must have been stopped and its documents are the sink's:
    /// see `Service::delete_tenant`.)
    pub async fn delete_tenant(&self, id: &str) -> anyhow::Result<bool> {
        let id = id.to_string();
        let result = self
            .db
            .call(move |c| {
                let tx = c.transaction()?;
                crate::pipeline::ledger::forget_progress_of(&tx, &id, None)?;
                let n = tx.execute("DELETE FROM tenants WHERE id = ?1", [&id])?;
                for table in [
                    "connectors",
                    "queue",
                    "schedule_runs",
                    "kv",
                    "kv_usage",
                    "jobs",
                ] {
                    tx.execute(&format!("DELETE FROM {table} WHERE tenant = ?1"), [&id])?;
                }
                tx.commit()?;
                Ok(n == 1)
            })
            .await?;
        self.touched_connectors();
        Ok(result)
    }

    // ---- connectors ----

    /// A tenant's connectors, by id.
    pub async fn connectors(&self, tenant: &str) -> anyhow::Result<Vec<ConnectorSpec>> {
        let tenant = tenant.to_string();
        self.db
            .call(move |c| {
                let mut stmt =
                    c.prepare_cached("SELECT spec FROM connectors WHERE tenant = ?1 ORDER BY id")?;
                let rows = stmt.query_map([tenant], |r| r.get::<_, String>(0))?;
                let mut out = Vec::new();
                for row in rows {
                    out.push(serde_json::from_str(&row?)?);
                }
                Ok(out)
            })
            .await
    }

    /// Every connector of every tenant (the scheduler's view).
    pub async fn all_connectors(&self) -> anyhow::Result<Vec<ConnectorSpec>> {
        self.db
            .call(|c| {
                let mut stmt =
                    c.prepare_cached("SELECT spec FROM connectors ORDER BY tenant, id")?;
                let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
                let mut out = Vec::new();
                for row in rows {
                    out.push(serde_json::from_str(&row?)?);
                }
                Ok(out)
            })
            .await
    }

    /// One connector.
    pub async fn connector(&self, tenant: &str, id: &str) -> anyhow::Result<Option<ConnectorSpec>> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        self.db
            .call(move |c| {
                let spec: Option<String> = c
                    .query_row(
                        "SELECT spec FROM connectors WHERE tenant = ?1 AND id = ?2",
                        [tenant, id],
                        |r| r.get(0),
                    )
                    .optional()?;
                Ok(match spec {
                    Some(s) => Some(serde_json::from_str(&s)?),
                    None => None,
                })
            })
            .await
    }

    /// Creates or replaces a connector. With `max`, creating one more than `max` connectors
    /// of the tenant fails.
    pub async fn put_connector(
        &self,
        spec: &ConnectorSpec,
        max: Option<u32>,
    ) -> anyhow::Result<()> {
        let body = serde_json::to_string(spec)?;
        let (tenant, id) = (spec.tenant.clone(), spec.id.clone());
        self.db
            .call(move |c| {
                let tx = c.transaction()?;
                let exists: bool = tx
                    .query_row(
                        "SELECT 1 FROM connectors WHERE tenant = ?1 AND id = ?2",
                        [&tenant, &id],
                        |_| Ok(()),
                    )
                    .optional()?
                    .is_some();
                if !exists && let Some(max) = max {
                    let n: i64 = tx.query_row(
                        "SELECT COUNT(*) FROM connectors WHERE tenant = ?1",
                        [&tenant],
                        |r| r.get(0),
                    )?;
                    if n >= i64::from(max) {
                        anyhow::bail!(
                            "tenant `{tenant}` already has {n} connector(s), its quota is {max}"
                        );
                    }
                }
                tx.execute(
                    "INSERT INTO connectors (tenant, id, spec, updated_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (tenant, id) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at",
                    rusqlite::params![tenant, id, body, unix_now()],
                )?;
                tx.commit()?;
                Ok(())
            })
            .await?;
        self.touched_connectors();
        Ok(())
    }

    /// Deletes a connector with its queued jobs (and their progress), schedule marks and plugin
    /// state.
    pub async fn delete_connector(&self, tenant: &str, id: &str) -> anyhow::Result<bool> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        let result = self
            .db
            .call(move |c| {
                let tx = c.transaction()?;
                crate::pipeline::ledger::forget_progress_of(&tx, &tenant, Some(&id))?;
                let n = tx.execute(
                    "DELETE FROM connectors WHERE tenant = ?1 AND id = ?2",
                    [&tenant, &id],
                )?;
                for table in ["queue", "schedule_runs", "kv", "kv_usage"] {
                    tx.execute(
                        &format!("DELETE FROM {table} WHERE tenant = ?1 AND connector = ?2"),
                        [&tenant, &id],
                    )?;
                }
                tx.commit()?;
                Ok(n == 1)
            })
            .await?;
        self.touched_connectors();
        Ok(result)
    }

    /// Plugin storage used by each of a tenant's connectors: `(connector, keys, bytes)`.
    pub async fn storage_usage(&self, tenant: &str) -> anyhow::Result<Vec<(String, u64, u64)>> {
        let tenant = tenant.to_string();
        self.db
            .call(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT connector, keys, bytes FROM kv_usage WHERE tenant = ?1 ORDER BY connector",
                )?;
                let rows = stmt.query_map([tenant], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                })?;
                let mut out = Vec::new();
                for row in rows {
                    let (c, k, b) = row?;
                    out.push((c, k.max(0) as u64, b.max(0) as u64));
                }
                Ok(out)
            })
            .await
    }

    /// Key names and value sizes of a connector's plugin state (never the values: they hold
    /// cursors and rotated tokens).
    pub async fn storage_keys(
        &self,
        tenant: &str,
        connector: &str,
        limit: usize,
    ) -> anyhow::Result<Vec<(String, u64)>> {
        let (tenant, connector) = (tenant.to_string(), connector.to_string());
        self.db
            .call(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT key, length(value) FROM kv WHERE tenant = ?1 AND connector = ?2 ORDER BY key LIMIT ?3",
                )?;
                let rows = stmt.query_map(rusqlite::params![tenant, connector, limit as i64], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })?;
                let mut out = Vec::new();
                for row in rows {
                    let (k, n) = row?;
                    out.push((k, n.max(0) as u64));
                }
                Ok(out)
            })
            .await
    }

    /// Forgets a connector's plugin state (the next incremental sync starts with a full one).
    pub async fn clear_storage(&self, tenant: &str, connector: &str) -> anyhow::Result<u64> {
        let (tenant, connector) = (tenant.to_string(), connector.to_string());
        self.db
            .call(move |c| {
                let tx = c.transaction()?;
                let n = tx.execute(
                    "DELETE FROM kv WHERE tenant = ?1 AND connector = ?2",
                    [&tenant, &connector],
                )?;
                tx.execute(
                    "DELETE FROM kv_usage WHERE tenant = ?1 AND connector = ?2",
                    [&tenant, &connector],
                )?;
                tx.commit()?;
                Ok(n as u64)
            })
            .await
    }

    // ---- queue ----

    /// Appends a job to the queue.
    pub async fn enqueue(
        &self,
        job_id: &str,
        tenant: &str,
        connector: &str,
        kind: SyncKind,
        reason: QueueReason,
    ) -> anyhow::Result<()> {
        let args = (
            job_id.to_string(),
            tenant.to_string(),
            connector.to_string(),
            kind.to_string(),
            reason.as_str(),
        );
        self.db
            .call(move |c| {
                c.execute(
                    "INSERT INTO queue (job_id, tenant, connector, kind, state, reason, enqueued_at)
                     VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?6)",
                    rusqlite::params![args.0, args.1, args.2, args.3, args.4, unix_now()],
                )?;
                Ok(())
            })
            .await
    }

    /// For merging a trigger: the job already *queued* (not running) for this connector and
    /// kind, if any, and how many jobs the tenant has queued in all.
    pub async fn queued_for(
        &self,
        tenant: &str,
        connector: &str,
        kind: SyncKind,
    ) -> anyhow::Result<(Option<String>, usize)> {
        let args = (tenant.to_string(), connector.to_string(), kind.to_string());
        self.db
            .call(move |c| {
                let existing: Option<String> = c
                    .prepare_cached(
                        "SELECT job_id FROM queue WHERE tenant = ?1 AND connector = ?2 AND kind = ?3
                         AND state = 'queued' ORDER BY seq LIMIT 1",
                    )?
                    .query_map(rusqlite::params![args.0, args.1, args.2], |r| r.get(0))?
                    .next()
                    .transpose()?;
                let queued: i64 = c.query_row(
                    "SELECT count(*) FROM queue WHERE tenant = ?1 AND state = 'queued'",
                    [&args.0],
                    |r| r.get(0),
                )?;
                Ok((existing, queued.max(0) as usize))
            })
            .await
    }

    /// Health: a real query through the service's connection, and the database file on disk
    /// opened afresh and queried — a file deleted or replaced under a running service fails
    /// here even though the open connection still reads the old (unlinked) one.
    pub async fn check_health(&self) -> anyhow::Result<()> {
        let expected = self.file_id;
        self.db
            .call(move |c| {
                c.query_row("SELECT count(*) FROM tenants", [], |r| r.get::<_, i64>(0))?;
                c.query_row("SELECT count(*) FROM queue", [], |r| r.get::<_, i64>(0))?;
                let path = c.path().unwrap_or_default().to_string();
                if path.is_empty() {
                    return Ok(());
                }
                let fresh = rusqlite::Connection::open_with_flags(
                    &path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(|e| anyhow::anyhow!("the state database file cannot be opened: {e}"))?;
                fresh
                    .query_row("SELECT count(*) FROM tenants", [], |r| r.get::<_, i64>(0))
                    .map_err(|e| anyhow::anyhow!("the state database file cannot be read: {e}"))?;
                // Pages still in the write-ahead log can hide a main file overwritten in place.
                let mut header = [0u8; 16];
                std::io::Read::read_exact(&mut std::fs::File::open(&path)?, &mut header)
                    .map_err(|e| anyhow::anyhow!("the state database file cannot be read: {e}"))?;
                if &header != b"SQLite format 3\0" {
                    anyhow::bail!("the state database file is not an SQLite database any more");
                }
                if expected.is_some() && file_id(std::path::Path::new(&path)) != expected {
                    anyhow::bail!("the state database file was replaced under the service");
                }
                Ok(())
            })
            .await
    }

    /// Every queue entry (queued and running), oldest first.
    pub async fn queue(&self) -> anyhow::Result<Vec<QueuedJob>> {
        self.db
            .call(|c| {
                let mut stmt = c.prepare_cached(
                    "SELECT seq, job_id, tenant, connector, kind, state, attempt, reason FROM queue ORDER BY seq",
                )?;
                let rows = stmt.query_map([], |r| {
                    Ok(QueuedJob {
                        seq: r.get(0)?,
                        job_id: r.get(1)?,
                        tenant: r.get(2)?,
                        connector: r.get(3)?,
                        kind: kind_from(&r.get::<_, String>(4)?),
                        state: QueueState::parse(&r.get::<_, String>(5)?),
                        attempt: r.get(6)?,
                        reason: QueueReason::parse(&r.get::<_, String>(7)?),
                    })
                })?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
    }

    /// Marks a queued job running (one more attempt).
    pub async fn mark_running(&self, job_id: &str) -> anyhow::Result<()> {
        let job_id = job_id.to_string();
        self.db
            .call(move |c| {
                c.execute(
                    "UPDATE queue SET state = 'running', attempt = attempt + 1 WHERE job_id = ?1",
                    [job_id],
                )?;
                Ok(())
            })
            .await
    }

    /// Removes a job from the queue (it ended, or was cancelled while queued). `false` if it
    /// was not there.
    pub async fn dequeue(&self, job_id: &str) -> anyhow::Result<bool> {
        let job_id = job_id.to_string();
        self.db
            .call(move |c| Ok(c.execute("DELETE FROM queue WHERE job_id = ?1", [job_id])? == 1))
            .await
    }

    /// Removes a job only while it is still queued (not running). `false` otherwise.
    pub async fn dequeue_if_queued(&self, job_id: &str) -> anyhow::Result<bool> {
        let job_id = job_id.to_string();
        self.db
            .call(move |c| {
                Ok(c.execute(
                    "DELETE FROM queue WHERE job_id = ?1 AND state = 'queued'",
                    [job_id],
                )? == 1)
            })
            .await
    }

    /// After a restart: jobs that were running when the host stopped go back to the queue, in
    /// their original order. Returns them.
    pub async fn requeue_running(&self) -> anyhow::Result<Vec<QueuedJob>> {
        let interrupted: Vec<QueuedJob> = self
            .queue()
            .await?
            .into_iter()
            .filter(|j| j.state == QueueState::Running)
            .collect();
        self.db
            .call(|c| {
                c.execute(
                    "UPDATE queue SET state = 'queued', reason = 'restart' WHERE state = 'running'",
                    [],
                )?;
                // Progress records of jobs that will never run again (ended, or CLI jobs).
                let live = c
                    .prepare("SELECT job_id FROM queue")?
                    .query_map([], |r| r.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()?;
                crate::pipeline::ledger::forget_progress_except(c, &live)?;
                Ok(())
            })
            .await?;
        Ok(interrupted)
    }

    // ---- schedule ----

    /// When the scheduler last queued each kind of each connector: `(tenant, connector, kind)`
    /// → Unix seconds, read in one query per scheduler tick.
    pub async fn schedule_marks(
        &self,
    ) -> anyhow::Result<std::collections::HashMap<(String, String, String), i64>> {
        self.db
            .call(|c| {
                let mut stmt =
                    c.prepare_cached("SELECT tenant, connector, kind, last_at FROM schedule_runs")?;
                let rows =
                    stmt.query_map([], |r| Ok(((r.get(0)?, r.get(1)?, r.get(2)?), r.get(3)?)))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
    }

    /// Records that the scheduler queued `kind` for a connector at `at`.
    pub async fn mark_scheduled(
        &self,
        tenant: &str,
        connector: &str,
        kind: SyncKind,
        at: i64,
    ) -> anyhow::Result<()> {
        let args = (tenant.to_string(), connector.to_string(), kind.to_string());
        self.db
            .call(move |c| {
                c.execute(
                    "INSERT INTO schedule_runs (tenant, connector, kind, last_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (tenant, connector, kind) DO UPDATE SET last_at = excluded.last_at",
                    rusqlite::params![args.0, args.1, args.2, at],
                )?;
                Ok(())
            })
            .await
    }

    // ---- plugins ----

    /// Records an uploaded plugin version.
    pub async fn record_upload(&self, upload: &Upload) -> anyhow::Result<()> {
        let u = upload.clone();
        self.db
            .call(move |c| {
                c.execute(
                    "INSERT OR REPLACE INTO plugin_uploads (digest, name, version, path, uploaded_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    rusqlite::params![u.digest, u.name, u.version, u.path, unix_now()],
                )?;
                Ok(())
            })
            .await
    }

    /// Uploaded versions, oldest first.
    pub async fn uploads(&self) -> anyhow::Result<Vec<Upload>> {
        self.db
            .call(|c| {
                let mut stmt = c.prepare_cached(
                    "SELECT digest, name, version, path FROM plugin_uploads ORDER BY uploaded_at, rowid",
                )?;
                let rows = stmt.query_map([], |r| {
                    Ok(Upload {
                        digest: r.get(0)?,
                        name: r.get(1)?,
                        version: r.get(2)?,
                        path: r.get(3)?,
                    })
                })?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
    }

    /// Remembers which version of `name` is active, across restarts.
    pub async fn set_active_plugin(&self, name: &str, digest: &str) -> anyhow::Result<()> {
        let (name, digest) = (name.to_string(), digest.to_string());
        self.db
            .call(move |c| {
                c.execute(
                    "INSERT INTO plugin_active (name, digest) VALUES (?1, ?2)
                     ON CONFLICT (name) DO UPDATE SET digest = excluded.digest",
                    [name, digest],
                )?;
                Ok(())
            })
            .await
    }

    /// The remembered active versions: `(name, digest)`.
    pub async fn active_plugins(&self) -> anyhow::Result<Vec<(String, String)>> {
        self.db
            .call(|c| {
                let mut stmt = c.prepare_cached("SELECT name, digest FROM plugin_active")?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
    }
}
