//! The host's SQLite database: plugin key/value state and job records, in one file under the
//! data directory.
//!
//! SQLite runs in WAL mode with `synchronous=FULL`, so a write is durable when its call returns
//! and a crash never leaves half a transaction. Calls run on the blocking pool, off the async
//! runtime threads.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use rusqlite::Connection;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kv (
    tenant TEXT NOT NULL,
    connector TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, connector, key)
) WITHOUT ROWID;
-- Running totals per connector, so quota checks do not rescan every key on every write.
CREATE TABLE IF NOT EXISTS kv_usage (
    tenant TEXT NOT NULL,
    connector TEXT NOT NULL,
    keys INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    PRIMARY KEY (tenant, connector)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    connector TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    plugin TEXT NOT NULL,
    plugin_version TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    report TEXT NOT NULL DEFAULT '{}',
    error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_connector ON jobs (tenant, connector, created_at);
CREATE INDEX IF NOT EXISTS jobs_by_tenant ON jobs (tenant, created_at);
-- The service's control plane (`tributary serve`).
CREATE TABLE IF NOT EXISTS tenants (
    id TEXT PRIMARY KEY,
    token_hash TEXT,
    quotas TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS tenants_by_token ON tenants (token_hash);
CREATE TABLE IF NOT EXISTS connectors (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    spec TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, id)
);
-- Jobs waiting for (or holding) a slot; a row outlives a crash, so the job is resumed.
CREATE TABLE IF NOT EXISTS queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL,
    connector TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    reason TEXT NOT NULL,
    enqueued_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS schedule_runs (
    tenant TEXT NOT NULL,
    connector TEXT NOT NULL,
    kind TEXT NOT NULL,
    last_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, connector, kind)
) WITHOUT ROWID;
-- Uploaded plugin versions (files under <data_dir>/plugins) and the active choice per name.
CREATE TABLE IF NOT EXISTS plugin_uploads (
    digest TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    path TEXT NOT NULL,
    uploaded_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS plugin_active (
    name TEXT PRIMARY KEY,
    digest TEXT NOT NULL
);
";

/// A shared handle on the database.
#[derive(Clone, Debug)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

impl Db {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let conn = Connection::open(path)
            .with_context(|| format!("opening the state database {}", path.display()))?;
        Self::init(conn).with_context(|| format!("preparing {}", path.display()))
    }

    /// An in-memory database (tests).
    pub fn in_memory() -> anyhow::Result<Self> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> anyhow::Result<Self> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the connection on the blocking pool.
    pub async fn call<R, F>(&self, f: F) -> anyhow::Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> anyhow::Result<R> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| anyhow::anyhow!("the state database lock is poisoned"))?;
            f(&mut guard)
        })
        .await
        .context("state database task failed")?
    }

    /// Runs `f` with the connection on the current thread (for synchronous callers).
    pub fn call_blocking<R>(
        &self,
        f: impl FnOnce(&mut Connection) -> anyhow::Result<R>,
    ) -> anyhow::Result<R> {
        let mut guard = self
            .conn
            .lock()
            .map_err(|_| anyhow::anyhow!("the state database lock is poisoned"))?;
        f(&mut guard)
    }
}
