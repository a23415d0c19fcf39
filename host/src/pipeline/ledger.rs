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
//! - with the ids, a service job saves its counts at each checkpoint (`job_counts`), and a run of
//!   the same job after a crash starts from them, so the report of a resumed job totals all its
//!   attempts (what the interrupted run did after its last checkpoint is done, and counted, again).

use rusqlite::OptionalExtension;

use crate::db::Db;
use crate::job::{CountsSnapshot, SyncKind};
use crate::sink::Versions;

const TABLE: &str = "CREATE TABLE IF NOT EXISTS job_progress (
    job_id TEXT NOT NULL,
    id TEXT NOT NULL,
    PRIMARY KEY (job_id, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS job_counts (
    job_id TEXT PRIMARY KEY,
    counts TEXT NOT NULL
)";

/// The ids of one job.
#[derive(Debug)]
pub(crate) struct Ledger {
    kind: SyncKind,
    /// Ids indexed before this sync (main index, or ACL index for ACL syncs) with their
    /// versions, compact ([`Versions`]). Only these ids can vanish, so ids the sync produces
    /// that are not here are not kept (the resume record has them): a first sync of a million
    /// entries holds no set of a million ids.
    known: Versions,
    /// Whether this sync produced each entry of `known` (by entry number).
    seen: Vec<bool>,
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
    pub(crate) fn new(kind: SyncKind, known: Versions) -> Self {
        Self {
            kind,
            seen: vec![false; known.len()],
            known,
            progress: None,
        }
    }

    /// The seen flag of `id`, when it was indexed before the sync.
    fn seen_flag(&mut self, id: &str) -> Option<&mut bool> {
        let at = self.known.position(id)?;
        self.seen.get_mut(at)
    }

    /// Marks `id` seen; whether it was not before (an id not indexed before counts as new
    /// every time: the resume record ignores repeats).
    fn mark(&mut self, id: &str) -> bool {
        match self.seen_flag(id) {
            Some(seen) => !std::mem::replace(seen, true),
            None => true,
        }
    }

    /// Records that the plugin produced `id` (a main-index document of a full sync).
    pub(crate) fn saw(&mut self, id: &str) {
        if self.kind == SyncKind::Full
            && self.mark(id)
            && let Some(p) = self.progress.as_mut()
        {
            p.unsaved.push(id.to_string());
        }
    }

    /// Records an access-control document of an access-control sync (never part of the
    /// crash-resume record).
    pub(crate) fn saw_acl(&mut self, id: &str) {
        if self.kind == SyncKind::AccessControl {
            self.mark(id);
        }
    }

    /// Keeps `id`, indexed before this full sync, from deletion as vanished although the plugin
    /// did not produce it (its part of the source could not be listed). Whether it was kept:
    /// unknown ids and other kinds of sync change nothing.
    pub(crate) fn keep(&mut self, id: &str) -> bool {
        if self.kind != SyncKind::Full || self.seen_flag(id).is_none_or(|seen| *seen) {
            return false;
        }
        self.saw(id);
        true
    }

    /// Records that the plugin deleted `id`.
    pub(crate) fn forget(&mut self, id: &str) {
        if let Some(seen) = self.seen_flag(id) {
            *seen = false;
        }
    }

    /// Whether a full sync finds `id` indexed at exactly `version` already.
    pub(crate) fn is_unchanged(&self, id: &str, version: &Option<String>) -> bool {
        self.kind == SyncKind::Full && self.known.is_at(id, version.as_deref())
    }

    /// Ids indexed before this sync that it did not produce.
    pub(crate) fn vanished(&self) -> Vec<String> {
        self.known
            .ids()
            .zip(&self.seen)
            .filter(|(_, seen)| !**seen)
            .map(|(id, _)| id.to_string())
            .collect()
    }

    /// For job `job`: records its counts (and, for a full sync, its produced ids) at every
    /// checkpoint, so a run of the same job after a crash (`resume`) starts from them. Returns
    /// how many ids a resumed run restored, and the counts it starts from.
    pub(crate) async fn track(
        &mut self,
        db: Db,
        job: String,
        resume: bool,
    ) -> anyhow::Result<(usize, Option<CountsSnapshot>)> {
        let key = job.clone();
        let (restored, counts): (Vec<String>, Option<String>) = db
            .call(move |conn| {
                conn.execute_batch(TABLE)?;
                if resume {
                    let mut stmt = conn.prepare("SELECT id FROM job_progress WHERE job_id = ?1")?;
                    let rows = stmt.query_map([&key], |r| r.get::<_, String>(0))?;
                    let ids = rows.collect::<Result<Vec<_>, _>>()?;
                    let counts = conn
                        .query_row(
                            "SELECT counts FROM job_counts WHERE job_id = ?1",
                            [&key],
                            |r| r.get::<_, String>(0),
                        )
                        .optional()?;
                    Ok((ids, counts))
                } else {
                    conn.execute("DELETE FROM job_progress WHERE job_id = ?1", [&key])?;
                    conn.execute("DELETE FROM job_counts WHERE job_id = ?1", [&key])?;
                    Ok((Vec::new(), None))
                }
            })
            .await?;
        // Written only by `save`; an unreadable record restores no counts.
        let counts = counts.and_then(|c| serde_json::from_str(&c).ok());
        if self.kind != SyncKind::Full {
            // Only a full sync's produced ids matter to a resumed run; its counts always do.
            self.progress = Some(Progress {
                db,
                job,
                unsaved: Vec::new(),
            });
            return Ok((0, counts));
        }
        let n = restored.len();
        for id in &restored {
            self.mark(id);
        }
        self.progress = Some(Progress {
            db,
            job,
            unsaved: Vec::new(),
        });
        Ok((n, counts))
    }

    /// Writes the ids produced since the last save, and the job's `counts` so far.
    pub(crate) async fn save(&mut self, counts: &CountsSnapshot) -> anyhow::Result<()> {
        let Some(p) = self.progress.as_mut() else {
            return Ok(());
        };
        let ids = std::mem::take(&mut p.unsaved);
        let job = p.job.clone();
        let counts = serde_json::to_string(counts)?;
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
            tx.execute(
                "INSERT INTO job_counts (job_id, counts) VALUES (?1, ?2)
                 ON CONFLICT (job_id) DO UPDATE SET counts = excluded.counts",
                [&job, &counts],
            )?;
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
                    conn.execute("DELETE FROM job_progress WHERE job_id = ?1", [&job])?;
                    conn.execute("DELETE FROM job_counts WHERE job_id = ?1", [&job])?;
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
    conn.execute_batch(TABLE)?;
    let live = serde_json::to_string(live)?;
    for table in ["job_progress", "job_counts"] {
        conn.execute(
            &format!("DELETE FROM {table} WHERE job_id NOT IN (SELECT value FROM json_each(?1))"),
            [&live],
        )?;
    }
    Ok(())
}

/// Drops the records of the jobs of `tenant` (of its `connector` only, when given) — in the
/// caller's transaction, before the job and queue rows they are found by are deleted.
pub fn forget_progress_of(
    conn: &rusqlite::Connection,
    tenant: &str,
    connector: Option<&str>,
) -> anyhow::Result<()> {
    conn.execute_batch(TABLE)?;
    for table in ["job_progress", "job_counts"] {
        conn.execute(
            &format!(
                "DELETE FROM {table} WHERE job_id IN (
                 SELECT id FROM jobs WHERE tenant = ?1 AND (?2 IS NULL OR connector = ?2)
                 UNION SELECT job_id FROM queue WHERE tenant = ?1 AND (?2 IS NULL OR connector = ?2))"
            ),
            rusqlite::params![tenant, connector],
        )?;
    }
    Ok(())
}
