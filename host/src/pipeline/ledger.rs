//! Which documents a sync has produced, against what was indexed before it — the basis of
//! "skip unchanged" and "delete vanished" — and its durable record for crash resume.
//!
//! Invariants:
//! - `known` (ids and versions indexed before a full or access-control sync) is read once, when
//!   the job starts; an incremental sync knows nothing and deletes nothing by absence;
//! - an id is `seen` once the plugin produced it in this job (even when filtered as unchanged)
//!   and unseen again when the plugin deletes it; the vanished set is `known − seen`;
//! - a service job's full sync writes its seen ids to `job_progress` at each checkpoint,
//!   *before* the plugin's own checkpoint state, so a run of the same job after a crash starts
//!   knowing them and deletes none of them as vanished. The table and every query of it live here.

use std::collections::{HashMap, HashSet};

use crate::db::Db;
use crate::job::SyncKind;

const TABLE: &str = "CREATE TABLE IF NOT EXISTS job_progress (
    job_id TEXT NOT NULL,
    id TEXT NOT NULL,
    PRIMARY KEY (job_id, id)
) WITHOUT ROWID";

/// The ids of one job.
#[derive(Debug)]
pub(crate) struct Ledger {
    kind: SyncKind,
    /// Ids and versions indexed before this sync (main index, or ACL index for ACL syncs).
    known: HashMap<String, Option<String>>,
    seen: HashSet<String>,
    progress: Option<Progress>,
}

/// The durable record of a full sync's produced ids, for a resumed run of the same job.
#[derive(Debug)]
struct Progress {
    db: Db,
    job: String,
    unsaved: Vec<String>,
}

impl Ledger {
    /// A ledger for a sync of `kind` that starts with `known` indexed.
    pub(crate) fn new(kind: SyncKind, known: HashMap<String, Option<String>>) -> Self {
        Self {
            kind,
            known,
            seen: HashSet::new(),
            progress: None,
        }
    }

    /// Records that the plugin produced `id` (a main-index document of a full sync).
    pub(crate) fn saw(&mut self, id: &str) {
        if self.kind == SyncKind::Full
            && self.seen.insert(id.to_string())
            && let Some(p) = self.progress.as_mut()
        {
            p.unsaved.push(id.to_string());
        }
    }

    /// Records an access-control document of an access-control sync (never part of the
    /// crash-resume record).
    pub(crate) fn saw_acl(&mut self, id: &str) {
        if self.kind == SyncKind::AccessControl {
            self.seen.insert(id.to_string());
        }
    }

    /// Keeps `id`, indexed before this full sync, from deletion as vanished although the plugin
    /// did not produce it (its part of the source could not be listed). Whether it was kept:
    /// unknown ids and other kinds of sync change nothing.
    pub(crate) fn keep(&mut self, id: &str) -> bool {
        if self.kind != SyncKind::Full || !self.known.contains_key(id) || self.seen.contains(id) {
            return false;
        }
        self.saw(id);
        true
    }

    /// Records that the plugin deleted `id`.
    pub(crate) fn forget(&mut self, id: &str) {
        self.seen.remove(id);
    }

    /// Whether a full sync finds `id` indexed at exactly `version` already.
    pub(crate) fn is_unchanged(&self, id: &str, version: &Option<String>) -> bool {
        self.kind == SyncKind::Full && version.is_some() && self.known.get(id) == Some(version)
    }

    /// Ids indexed before this sync that it did not produce.
    pub(crate) fn vanished(&self) -> Vec<String> {
        self.known
            .keys()
            .filter(|id| !self.seen.contains(*id))
            .cloned()
            .collect()
    }

    /// For a full sync of job `job`: records its produced ids at every checkpoint, so a run of
    /// the same job after a crash (`resume`) starts knowing them. Returns how many ids a resumed
    /// run restored.
    pub(crate) async fn track(
        &mut self,
        db: Db,
        job: String,
        resume: bool,
    ) -> anyhow::Result<usize> {
        let key = job.clone();
        let restored: Vec<String> = db
            .call(move |conn| {
                conn.execute(TABLE, [])?;
                if resume {
                    let mut stmt = conn.prepare("SELECT id FROM job_progress WHERE job_id = ?1")?;
                    let rows = stmt.query_map([&key], |r| r.get::<_, String>(0))?;
                    Ok(rows.collect::<Result<Vec<_>, _>>()?)
                } else {
                    conn.execute("DELETE FROM job_progress WHERE job_id = ?1", [&key])?;
                    Ok(Vec::new())
                }
            })
            .await?;
        let n = restored.len();
        self.seen.extend(restored);
        self.progress = Some(Progress {
            db,
            job,
            unsaved: Vec::new(),
        });
        Ok(n)
    }

    /// Writes the ids produced since the last save.
    pub(crate) async fn save(&mut self) -> anyhow::Result<()> {
        let Some(p) = self.progress.as_mut() else {
            return Ok(());
        };
        if p.unsaved.is_empty() {
            return Ok(());
        }
        let ids = std::mem::take(&mut p.unsaved);
        let job = p.job.clone();
        p.db.call(move |conn| {
            let tx = conn.transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT OR IGNORE INTO job_progress (job_id, id) VALUES (?1, ?2)",
                )?;
                for id in &ids {
                    stmt.execute([&job, id])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Drops the job's record: it ended, and an ended job never runs again under its id.
    pub(crate) async fn clear(&mut self) {
        if let Some(p) = self.progress.take() {
            let job = p.job.clone();
            let cleared =
                p.db.call(move |conn| {
                    conn.execute("DELETE FROM job_progress WHERE job_id = ?1", [job])?;
                    Ok(())
                })
                .await;
            if let Err(err) = cleared {
                tracing::warn!("clearing the progress of job {}: {err:#}", p.job);
            }
        }
    }
}

/// Drops the records of every job but `live` (those that may still run again), e.g. after a
/// restart, when ended jobs and CLI runs left records behind.
pub fn forget_progress_except(conn: &rusqlite::Connection, live: &[String]) -> anyhow::Result<()> {
    conn.execute(TABLE, [])?;
    let live = serde_json::to_string(live)?;
    conn.execute(
        "DELETE FROM job_progress WHERE job_id NOT IN (SELECT value FROM json_each(?1))",
        [live],
    )?;
    Ok(())
}
