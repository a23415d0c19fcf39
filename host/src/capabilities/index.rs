//! `index`: the document pipeline of a running sync job.
//!
//! One document's path: the plugin upserts it → the connector's sync rules decide whether it is
//! indexed → during a full sync, a document whose id and version are already indexed is skipped
//! (no download) → text content is attached, or a content request is downloaded and extracted by
//! the host, many at once → the document is written to the sink in batches. Deletions, commits
//! and checkpoints keep their order relative to the upserts before them.
//!
//! A full sync remembers every id it produced; when the plugin returns successfully, documents
//! of the connector it did not produce are deleted. When the sync fails, nothing is deleted.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::task::JoinSet;
use wasmtime::component::{HasSelf, Linker};

use super::extract::{ExtractFailure, Extraction};
use super::http::{Allowlist, HttpEngine};
use super::storage::StorageCtx;
use crate::bindings::http::HttpError;
use crate::bindings::index::{self, Content, ContentFailure, ContentRequest, Document, IndexError};
use crate::connector::rules::Rules;
use crate::limits::HostCalls;
use crate::sink::{IndexRef, Sink, SinkDocument};

pub use crate::job::SyncKind;

/// Operator limits for the pipeline.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineConfig {
    /// Documents per sink write.
    pub batch_documents: usize,
    /// Largest `fields` JSON of one document, in bytes.
    pub max_fields_bytes: usize,
    /// Longest body kept per document, in bytes (longer text is cut).
    pub max_body_bytes: usize,
    /// Upper bound on any content download, in bytes.
    pub max_download_bytes: u64,
    /// Upper bound on concurrent downloads per job.
    pub max_download_concurrency: u32,
    /// Concurrent downloads until the plugin asks for another number.
    pub default_download_concurrency: u32,
    /// First retry delay of a content download, in milliseconds (doubles per retry).
    pub download_backoff_ms: u64,
    /// Most documents (and access-control documents) one job may write.
    pub max_documents: u64,
    /// Most bytes one job may write: ids, versions, fields, text and extracted bodies.
    pub max_bytes: u64,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            batch_documents: 500,
            max_fields_bytes: 1024 * 1024,
            max_body_bytes: 8 * 1024 * 1024,
            max_download_bytes: 100 * 1024 * 1024,
            max_download_concurrency: 256,
            default_download_concurrency: 10,
            download_backoff_ms: 500,
            max_documents: 50_000_000,
            max_bytes: 512 * 1024 * 1024 * 1024,
        }
    }
}

/// Live counts of a job, shared with whoever reports progress.
#[derive(Debug, Default)]
pub struct Counters {
    /// Documents the plugin produced.
    pub received: AtomicU64,
    /// Documents written to the sink.
    pub indexed: AtomicU64,
    /// Skipped because id and version were already indexed.
    pub unchanged: AtomicU64,
    /// Excluded by sync rules.
    pub filtered: AtomicU64,
    /// Deleted from the index.
    pub deleted: AtomicU64,
    /// Content bodies downloaded and extracted.
    pub content_extracted: AtomicU64,
    /// Content not fetched on purpose (too large, unsupported format).
    pub content_skipped: AtomicU64,
    /// Content downloads or extractions that failed.
    pub content_failed: AtomicU64,
    /// Access-control documents written.
    pub access_control: AtomicU64,
}

/// A copy of [`Counters`] at one moment.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CountsSnapshot {
    /// Documents the plugin produced.
    pub received: u64,
    /// Documents written to the sink.
    pub indexed: u64,
    /// Skipped because unchanged.
    pub unchanged: u64,
    /// Excluded by sync rules.
    pub filtered: u64,
    /// Deleted from the index.
    pub deleted: u64,
    /// Bodies downloaded and extracted.
    pub content_extracted: u64,
    /// Bodies skipped on purpose.
    pub content_skipped: u64,
    /// Bodies that failed.
    pub content_failed: u64,
    /// Access-control documents written.
    pub access_control: u64,
}

impl Counters {
    /// The current values.
    pub fn snapshot(&self) -> CountsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CountsSnapshot {
            received: get(&self.received),
            indexed: get(&self.indexed),
            unchanged: get(&self.unchanged),
            filtered: get(&self.filtered),
            deleted: get(&self.deleted),
            content_extracted: get(&self.content_extracted),
            content_skipped: get(&self.content_skipped),
            content_failed: get(&self.content_failed),
            access_control: get(&self.access_control),
        }
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// What a finished download task hands back.
struct Downloaded {
    seq: u64,
    doc: SinkDocument,
    failure: Option<ContentFailure>,
    skipped: bool,
}

/// Everything a job's pipeline needs from the host.
#[derive(Clone)]
pub struct PipelineDeps {
    /// Where documents go.
    pub sink: Arc<dyn Sink>,
    /// HTTP engine for content downloads.
    pub http: Arc<HttpEngine>,
    /// Text extraction.
    pub extract: Arc<Extraction>,
    /// Limits.
    pub config: PipelineConfig,
}

/// The document pipeline of one job.
pub struct Pipeline {
    deps: PipelineDeps,
    kind: SyncKind,
    index: IndexRef,
    connector: String,
    rules: Rules,
    allowlist: Arc<Allowlist>,
    storage: StorageCtx,
    counters: Arc<Counters>,
    cancelled: Arc<AtomicBool>,
    /// Ids and versions indexed before this full sync (main index, or ACL index for ACL syncs).
    known: HashMap<String, Option<String>>,
    seen: HashSet<String>,
    batch: Vec<SinkDocument>,
    acl_batch: Vec<SinkDocument>,
    downloads: JoinSet<Downloaded>,
    /// Latest operation number per id with a download in flight: a result is kept only if no
    /// later upsert or delete of the same id happened meanwhile.
    in_flight: HashMap<String, u64>,
    next_seq: u64,
    concurrency: usize,
    failures: Vec<ContentFailure>,
    /// Documents and bytes written so far, against the job's quotas.
    written_documents: u64,
    written_bytes: u64,
    /// Set once a quota is exceeded: every later call is refused and the job fails.
    quota_breach: Option<String>,
    /// Where a full sync records the ids it produced (see [`Pipeline::track_progress`]).
    progress: Option<Progress>,
}

/// The durable record of a full sync's produced ids, for a resumed run of the same job.
struct Progress {
    db: crate::db::Db,
    job: String,
    unsaved: Vec<String>,
}

impl Pipeline {
    /// Starts a pipeline; a full (or access-control) sync first reads what is indexed.
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        deps: PipelineDeps,
        kind: SyncKind,
        index: IndexRef,
        connector: String,
        rules: Rules,
        allowlist: Arc<Allowlist>,
        storage: StorageCtx,
        cancelled: Arc<AtomicBool>,
    ) -> anyhow::Result<Self> {
        let known = match kind {
            SyncKind::Full => deps.sink.versions(index.clone(), connector.clone()).await?,
            SyncKind::AccessControl => deps.sink.versions(index.acl(), connector.clone()).await?,
            SyncKind::Incremental => HashMap::new(),
        };
        let concurrency = deps.config.default_download_concurrency.max(1) as usize;
        Ok(Self {
            deps,
            kind,
            index,
            connector,
            rules,
            allowlist,
            storage,
            counters: Arc::default(),
            cancelled,
            known,
            seen: HashSet::new(),
            batch: Vec::new(),
            acl_batch: Vec::new(),
            downloads: JoinSet::new(),
            in_flight: HashMap::new(),
            next_seq: 0,
            concurrency,
            failures: Vec::new(),
            written_documents: 0,
            written_bytes: 0,
            quota_breach: None,
            progress: None,
        })
    }

    /// For a full sync of job `job`: records the ids it produces at every checkpoint, so that a
    /// run of the same job after a crash (`resume`) starts knowing them — the plugin may then
    /// continue its listing where it checkpointed instead of from the start, and the documents of
    /// the first run are not deleted as vanished. Returns how many ids a resumed run restored.
    pub async fn track_progress(
        &mut self,
        db: crate::db::Db,
        job: String,
        resume: bool,
    ) -> anyhow::Result<usize> {
        if self.kind != SyncKind::Full {
            return Ok(0);
        }
        let key = job.clone();
        let restored: Vec<String> = db
            .call(move |conn| {
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

    async fn save_progress(&mut self) -> anyhow::Result<()> {
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

    async fn clear_progress(&mut self) {
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

    /// Live counters.
    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    fn check_cancelled(&self) -> Result<(), IndexError> {
        if self.cancelled.load(Ordering::Relaxed) {
            Err(IndexError::Cancelled)
        } else if let Some(breach) = &self.quota_breach {
            Err(IndexError::QuotaExceeded(breach.clone()))
        } else {
            Ok(())
        }
    }

    /// Charges `documents` / `bytes` to the job's quotas; on a breach nothing is charged, the
    /// breach is remembered (the job fails even if the plugin ignores the error) and returned.
    fn charge(&mut self, documents: u64, bytes: u64) -> Result<(), IndexError> {
        let config = &self.deps.config;
        let total_documents = self.written_documents.saturating_add(documents);
        let total_bytes = self.written_bytes.saturating_add(bytes);
        let breach = if total_documents > config.max_documents {
            Some(format!(
                "the job would write {total_documents} documents; its quota is {}",
                config.max_documents
            ))
        } else if total_bytes > config.max_bytes {
            Some(format!(
                "the job would write {total_bytes} bytes of documents; its quota is {} bytes",
                config.max_bytes
            ))
        } else {
            None
        };
        if let Some(breach) = breach {
            tracing::warn!(connector = %self.connector, "index quota exceeded: {breach}");
            self.quota_breach = Some(breach.clone());
            return Err(IndexError::QuotaExceeded(breach));
        }
        self.written_documents = total_documents;
        self.written_bytes = total_bytes;
        Ok(())
    }

    /// Bytes a guest document costs against the job's byte quota.
    fn cost(doc: &Document) -> u64 {
        let text = match &doc.content {
            Some(Content::Text(t)) => t.len(),
            _ => 0,
        };
        (doc.id.len() + doc.timestamp.as_ref().map_or(0, String::len) + doc.fields.len() + text)
            as u64
    }

    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Parses and checks one guest document (guest-controlled: everything is bounded).
    fn validate(&self, doc: &Document, position: usize) -> Result<Map<String, Value>, IndexError> {
        let bad = |m: String| {
            IndexError::InvalidDocument(format!(
                "document {position} ({:?}): {m}",
                crate::text::truncate(&doc.id, 80)
            ))
        };
        if let Err(m) = check_id(&doc.id) {
            return Err(bad(m));
        }
        if doc.timestamp.as_ref().is_some_and(|t| t.len() > 256) {
            return Err(bad("timestamp longer than 256 bytes".into()));
        }
        if doc.fields.len() > self.deps.config.max_fields_bytes {
            return Err(bad(format!(
                "fields are {} bytes; the limit is {}",
                doc.fields.len(),
                self.deps.config.max_fields_bytes
            )));
        }
        match serde_json::from_str::<Value>(&doc.fields) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(bad("fields must be a JSON object".into())),
            Err(e) => Err(bad(format!("fields are not valid JSON: {e}"))),
        }
    }

    /// Handles an `upsert` call.
    pub async fn upsert(&mut self, docs: Vec<Document>) -> anyhow::Result<Result<(), IndexError>> {
        if let Err(e) = self.check_cancelled() {
            return Ok(Err(e));
        }
        // Validate the whole call first: a bad document rejects the call and nothing of it is used.
        let mut parsed = Vec::with_capacity(docs.len());
        for (i, doc) in docs.iter().enumerate() {
            match self.validate(doc, i) {
                Ok(fields) => parsed.push(fields),
                Err(e) => return Ok(Err(e)),
            }
        }
        let bytes = docs.iter().map(Self::cost).sum();
        if let Err(e) = self.charge(docs.len() as u64, bytes) {
            return Ok(Err(e));
        }
        let mut excluded = Vec::new();
        for (doc, fields) in docs.into_iter().zip(parsed) {
            Counters::add(&self.counters.received, 1);
            if !self.rules.includes(&fields) {
                Counters::add(&self.counters.filtered, 1);
                // Incremental: a change can move a document out of scope; drop it now.
                if self.kind == SyncKind::Incremental {
                    excluded.push(doc.id);
                }
                continue;
            }
            if self.kind == SyncKind::Full {
                if self.seen.insert(doc.id.clone())
                    && let Some(p) = self.progress.as_mut()
                {
                    p.unsaved.push(doc.id.clone());
                }
                if doc.timestamp.is_some() && self.known.get(&doc.id) == Some(&doc.timestamp) {
                    Counters::add(&self.counters.unchanged, 1);
                    continue;
                }
            }
            let seq = self.seq();
            if let Some(s) = self.in_flight.get_mut(&doc.id) {
                *s = seq; // supersedes the pending download
            }
            let mut sink_doc = SinkDocument {
                id: doc.id,
                connector: self.connector.clone(),
                version: doc.timestamp,
                fields,
                body: None,
            };
            match doc.content {
                None => self.batch.push(sink_doc),
                Some(Content::Text(text)) => {
                    sink_doc.body = Some(
                        crate::text::truncate(&text, self.deps.config.max_body_bytes).to_string(),
                    );
                    self.batch.push(sink_doc);
                }
                Some(Content::Fetch(request)) => {
                    if request.size.is_some_and(|s| s > request.max_bytes) {
                        Counters::add(&self.counters.content_skipped, 1);
                        self.batch.push(sink_doc);
                    } else {
                        self.spawn_download(seq, sink_doc, request).await?;
                    }
                }
            }
        }
        self.collect_finished();
        self.flush_if_full().await?;
        if !excluded.is_empty() {
            return self.delete(excluded).await;
        }
        Ok(Ok(()))
    }

    async fn spawn_download(
        &mut self,
        seq: u64,
        doc: SinkDocument,
        request: ContentRequest,
    ) -> anyhow::Result<()> {
        // Backpressure: the plugin waits while `concurrency` downloads are running.
        while self.downloads.len() >= self.concurrency {
            if let Some(done) = self.downloads.join_next().await {
                self.accept(done.context("content download task")?);
            }
        }
        self.in_flight.insert(doc.id.clone(), seq);
        let http = self.deps.http.clone();
        let extract = self.deps.extract.clone();
        let allowlist = self.allowlist.clone();
        let max_download = self.deps.config.max_download_bytes;
        let backoff = Duration::from_millis(self.deps.config.download_backoff_ms);
        let max_body = self.deps.config.max_body_bytes;
        self.downloads.spawn(async move {
            let mut doc = doc;
            let outcome =
                fetch_and_extract(&http, &extract, &allowlist, &request, max_download, backoff)
                    .await;
            let (failure, skipped) = match outcome {
                Ok(text) => {
                    doc.body = Some(crate::text::truncate(&text, max_body).to_string());
                    (None, false)
                }
                Err(FetchOutcome::Skipped(reason)) => {
                    tracing::debug!(id = %doc.id, "content not indexed: {reason}");
                    (None, true)
                }
                Err(FetchOutcome::Failed { status, message }) => {
                    // No version: the next full sync tries this document again.
                    doc.version = None;
                    (
                        Some(ContentFailure {
                            id: doc.id.clone(),
                            status,
                            message,
                        }),
                        false,
                    )
                }
            };
            Downloaded {
                seq,
                doc,
                failure,
                skipped,
            }
        });
        Ok(())
    }

    fn accept(&mut self, done: Downloaded) {
        if self.in_flight.get(&done.doc.id) != Some(&done.seq) {
            return; // superseded by a later upsert or delete of the same id
        }
        self.in_flight.remove(&done.doc.id);
        // Extracted bodies count against the byte quota too; a breach fails the job at the
        // plugin's next call (or when it returns).
        let body = done.doc.body.as_ref().map_or(0, String::len) as u64;
        if body > 0 && self.quota_breach.is_none() {
            let _ = self.charge(0, body);
        }
        if let Some(failure) = done.failure {
            Counters::add(&self.counters.content_failed, 1);
            tracing::warn!(connector = %self.connector, id = %failure.id, "content not indexed: {}", failure.message);
            self.failures.push(failure);
        } else if done.skipped {
            Counters::add(&self.counters.content_skipped, 1);
        } else {
            Counters::add(&self.counters.content_extracted, 1);
        }
        self.batch.push(done.doc);
    }

    fn collect_finished(&mut self) {
        while let Some(done) = self.downloads.try_join_next() {
            match done {
                Ok(d) => self.accept(d),
                Err(e) => tracing::error!("content download task failed: {e}"),
            }
        }
    }

    async fn flush_if_full(&mut self) -> anyhow::Result<()> {
        if self.batch.len() >= self.deps.config.batch_documents {
            self.flush().await?;
        }
        if self.acl_batch.len() >= self.deps.config.batch_documents {
            self.flush_acl().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let n = batch.len() as u64;
        self.deps.sink.upsert(self.index.clone(), batch).await?;
        Counters::add(&self.counters.indexed, n);
        Ok(())
    }

    async fn flush_acl(&mut self) -> anyhow::Result<()> {
        if self.acl_batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.acl_batch);
        let n = batch.len() as u64;
        self.deps.sink.upsert(self.index.acl(), batch).await?;
        Counters::add(&self.counters.access_control, n);
        Ok(())
    }

    /// Handles a `delete` call.
    pub async fn delete(&mut self, ids: Vec<String>) -> anyhow::Result<Result<(), IndexError>> {
        if let Err(e) = self.check_cancelled() {
            return Ok(Err(e));
        }
        if let Err(e) = check_ids(&ids) {
            return Ok(Err(e));
        }
        for id in &ids {
            let seq = self.seq();
            if let Some(s) = self.in_flight.get_mut(id) {
                *s = seq;
            }
            self.seen.remove(id);
        }
        self.collect_finished();
        // Upserts queued before this delete must land first.
        self.batch.retain(|d| !ids.contains(&d.id));
        self.flush().await?;
        let n = ids.len() as u64;
        self.deps
            .sink
            .delete(self.index.clone(), self.connector.clone(), ids)
            .await?;
        Counters::add(&self.counters.deleted, n);
        Ok(Ok(()))
    }

    /// Handles `upsert-access-control`.
    pub async fn upsert_acl(
        &mut self,
        docs: Vec<Document>,
    ) -> anyhow::Result<Result<(), IndexError>> {
        if let Err(e) = self.check_cancelled() {
            return Ok(Err(e));
        }
        let mut parsed = Vec::with_capacity(docs.len());
        for (i, doc) in docs.iter().enumerate() {
            match self.validate(doc, i) {
                Ok(fields) => parsed.push(fields),
                Err(e) => return Ok(Err(e)),
            }
        }
        let bytes = docs.iter().map(Self::cost).sum();
        if let Err(e) = self.charge(docs.len() as u64, bytes) {
            return Ok(Err(e));
        }
        for (doc, fields) in docs.into_iter().zip(parsed) {
            if self.kind == SyncKind::AccessControl {
                self.seen.insert(doc.id.clone());
            }
            self.acl_batch.push(SinkDocument {
                id: doc.id,
                connector: self.connector.clone(),
                version: doc.timestamp,
                fields,
                body: None,
            });
        }
        self.flush_if_full().await?;
        Ok(Ok(()))
    }

    /// Handles `delete-access-control`.
    pub async fn delete_acl(&mut self, ids: Vec<String>) -> anyhow::Result<Result<(), IndexError>> {
        if let Err(e) = self.check_cancelled() {
            return Ok(Err(e));
        }
        if let Err(e) = check_ids(&ids) {
            return Ok(Err(e));
        }
        for id in &ids {
            self.seen.remove(id);
        }
        self.acl_batch.retain(|d| !ids.contains(&d.id));
        self.flush_acl().await?;
        self.deps
            .sink
            .delete(self.index.acl(), self.connector.clone(), ids)
            .await?;
        Ok(Ok(()))
    }

    /// Waits for downloads and writes everything out (without committing).
    async fn drain(&mut self) -> anyhow::Result<()> {
        while let Some(done) = self.downloads.join_next().await {
            self.accept(done.context("content download task")?);
        }
        self.flush().await?;
        self.flush_acl().await
    }

    async fn commit(&mut self) -> anyhow::Result<()> {
        self.deps.sink.commit(self.index.clone()).await?;
        self.deps.sink.commit(self.index.acl()).await
    }

    /// Handles `checkpoint`: everything so far becomes durable, then the state is stored.
    pub async fn checkpoint(
        &mut self,
        state: Vec<(String, Option<Vec<u8>>)>,
    ) -> anyhow::Result<Result<Vec<ContentFailure>, IndexError>> {
        if let Err(e) = self.check_cancelled() {
            return Ok(Err(e));
        }
        self.drain().await?;
        self.commit().await?;
        // The ids before the plugin's state: a crash in between makes the plugin re-list a little.
        self.save_progress().await?;
        if !state.is_empty()
            && let Err(e) = self.storage.apply(state).await
        {
            return Ok(Err(IndexError::Sink(format!(
                "storing checkpoint state: {e:?}"
            ))));
        }
        Ok(Ok(std::mem::take(&mut self.failures)))
    }

    /// Sets the download concurrency (guest-controlled: clamped).
    pub fn set_concurrency(&mut self, limit: u32) {
        self.concurrency = limit.clamp(1, self.deps.config.max_download_concurrency) as usize;
    }

    /// After the plugin returned successfully: write out, delete what a full sync did not
    /// produce, commit.
    pub async fn finish(&mut self) -> anyhow::Result<CountsSnapshot> {
        self.drain().await?;
        if let Some(breach) = self.quota_breach.clone() {
            // The plugin returned successfully although its documents were refused: the sync is
            // incomplete, so it fails and deletes nothing.
            self.abort().await?;
            anyhow::bail!("index quota exceeded: {breach}");
        }
        let target = match self.kind {
            SyncKind::Full => Some(self.index.clone()),
            SyncKind::AccessControl => Some(self.index.acl()),
            SyncKind::Incremental => None,
        };
        if let Some(target) = target {
            let vanished: Vec<String> = self
                .known
                .keys()
                .filter(|id| !self.seen.contains(*id))
                .cloned()
                .collect();
            for chunk in vanished.chunks(1000) {
                self.deps
                    .sink
                    .delete(target.clone(), self.connector.clone(), chunk.to_vec())
                    .await?;
                if self.kind == SyncKind::Full {
                    Counters::add(&self.counters.deleted, chunk.len() as u64);
                }
            }
        }
        self.commit().await?;
        self.clear_progress().await;
        Ok(self.counters.snapshot())
    }

    /// After the plugin failed: stop downloads, keep (commit) what was written, delete nothing.
    /// (A failed job is not run again under its id, so its progress record goes too.)
    pub async fn abort(&mut self) -> anyhow::Result<CountsSnapshot> {
        self.downloads.abort_all();
        while self.downloads.join_next().await.is_some() {}
        self.flush().await?;
        self.flush_acl().await?;
        self.commit().await?;
        self.clear_progress().await;
        Ok(self.counters.snapshot())
    }
}

/// Checks a document id from a plugin: 1 to 512 bytes, no control characters (the embedded
/// index keys documents by connector and id with a control character between them, and no source
/// has such ids).
fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 512 {
        return Err(format!("id must be 1 to 512 bytes, got {}", id.len()));
    }
    if id.chars().any(char::is_control) {
        return Err("id contains control characters".into());
    }
    Ok(())
}

fn check_ids(ids: &[String]) -> Result<(), IndexError> {
    for id in ids {
        if let Err(m) = check_id(id) {
            return Err(IndexError::InvalidDocument(format!(
                "invalid id to delete ({m}): {:?}",
                crate::text::truncate(id, 80)
            )));
        }
    }
    Ok(())
}

pub(crate) enum FetchOutcome {
    Skipped(String),
    Failed {
        status: Option<u16>,
        message: String,
    },
}

async fn fetch_and_extract(
    http: &HttpEngine,
    extract: &Extraction,
    allowlist: &Allowlist,
    request: &ContentRequest,
    max_download: u64,
    backoff: Duration,
) -> Result<String, FetchOutcome> {
    let max_bytes = request.max_bytes.min(max_download);
    let body = download(http, allowlist, request, max_bytes, backoff).await?;
    match extract
        .extract(body, &request.file_name, request.mime_type.as_deref())
        .await
    {
        Ok(text) => Ok(text),
        Err(ExtractFailure::Unsupported(m)) => Err(FetchOutcome::Skipped(m)),
        Err(ExtractFailure::TooLarge(limit)) => Err(FetchOutcome::Skipped(format!(
            "larger than the extraction limit of {limit} bytes"
        ))),
        Err(ExtractFailure::Failed(m)) => Err(FetchOutcome::Failed {
            status: None,
            message: format!("extraction failed: {m}"),
        }),
        Err(ExtractFailure::TimedOut) => Err(FetchOutcome::Failed {
            status: None,
            message: "extraction timed out".into(),
        }),
    }
}

/// Downloads a body with retries on 429 (Retry-After), 5xx and network errors, all within twice
/// the longest time limit of one request: the retry count, `Retry-After` and the time limit come
/// from the plugin and the server, and downloads finish after the plugin returned (outside its
/// wall-clock limit), so the whole download needs a deadline of its own.
pub(crate) async fn download(
    http: &HttpEngine,
    allowlist: &Allowlist,
    request: &ContentRequest,
    max_bytes: u64,
    backoff: Duration,
) -> Result<bytes::Bytes, FetchOutcome> {
    let deadline = Duration::from_secs(http.config().max_timeout_seconds.saturating_mul(2).max(1));
    match tokio::time::timeout(
        deadline,
        download_with_retries(http, allowlist, request, max_bytes, backoff),
    )
    .await
    {
        Ok(outcome) => outcome,
        Err(_) => Err(FetchOutcome::Failed {
            status: None,
            message: format!(
                "download did not finish within {} s (retries included)",
                deadline.as_secs()
            ),
        }),
    }
}

async fn download_with_retries(
    http: &HttpEngine,
    allowlist: &Allowlist,
    request: &ContentRequest,
    max_bytes: u64,
    backoff: Duration,
) -> Result<bytes::Bytes, FetchOutcome> {
    let attempts = request.retries.min(10) + 1;
    let mut last = String::new();
    let mut last_status = None;
    for attempt in 0..attempts {
        let delay = backoff.saturating_mul(2u32.saturating_pow(attempt.min(10)));
        match http.execute(allowlist, &request.request, max_bytes).await {
            // 202 is Box's "file not ready yet, come back after Retry-After" (not a body).
            Ok(f) if f.status == 202 => {
                last_status = Some(202);
                last = "HTTP 202: the file is not ready yet".into();
                if attempt + 1 < attempts {
                    tokio::time::sleep(retry_after(&f.headers).unwrap_or(delay)).await;
                }
            }
            Ok(f) if (200..300).contains(&f.status) => return Ok(f.body),
            Ok(f) if f.status == 429 || f.status == 503 || f.status >= 500 => {
                last_status = Some(f.status);
                last = format!("HTTP {}", f.status);
                if attempt + 1 < attempts {
                    tokio::time::sleep(retry_after(&f.headers).unwrap_or(delay)).await;
                }
            }
            Ok(f) => {
                return Err(FetchOutcome::Failed {
                    status: Some(f.status),
                    message: format!(
                        "download answered HTTP {}: {}",
                        f.status,
                        String::from_utf8_lossy(&f.body[..f.body.len().min(200)])
                    ),
                });
            }
            Err(HttpError::TooLarge(limit)) => {
                return Err(FetchOutcome::Skipped(format!("larger than {limit} bytes")));
            }
            Err(HttpError::Timeout(m)) | Err(HttpError::Connection(m)) => {
                last = m;
                last_status = None;
                if attempt + 1 < attempts {
                    tokio::time::sleep(delay).await;
                }
            }
            Err(HttpError::Denied(m))
            | Err(HttpError::InvalidRequest(m))
            | Err(HttpError::Refused(m)) => {
                return Err(FetchOutcome::Failed {
                    status: None,
                    message: m,
                });
            }
        }
    }
    Err(FetchOutcome::Failed {
        status: last_status,
        message: format!("download failed after {attempts} attempt(s): {last}"),
    })
}

/// A `Retry-After` in seconds (capped at five minutes: a server cannot park a job for hours).
fn retry_after(headers: &[(String, String)]) -> Option<Duration> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("retry-after"))
        .and_then(|(_, v)| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s.min(300)))
}

/// The `index` state of a plugin instance: a pipeline while a sync job runs, nothing otherwise.
#[derive(Default)]
pub struct IndexCtx {
    /// The job's pipeline.
    pub pipeline: Option<Pipeline>,
    /// Rate of capability calls (installed by the runtime).
    pub calls: HostCalls,
}

impl IndexCtx {
    fn pipeline(&mut self) -> wasmtime::Result<Result<&mut Pipeline, IndexError>> {
        self.calls.charge_or_trap()?;
        Ok(self.pipeline.as_mut().ok_or_else(|| {
            IndexError::Sink(
                "no sync job is running: documents can only be written during a sync".into(),
            )
        }))
    }
}

/// Sink failures trap: the job cannot continue and the host reports the cause. The cause stays
/// attached (not just its text), so the host can tell a typed refusal such as
/// [`crate::sink::quota::QuotaExceeded`] from a fault.
fn host_fault(err: anyhow::Error) -> wasmtime::Error {
    wasmtime::Error::from_anyhow(err.context("index sink failed"))
}

/// Links `index` into a linker whose store data exposes an [`IndexCtx`].
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut IndexCtx,
) -> wasmtime::Result<()> {
    index::add_to_linker::<T, HasSelf<IndexCtx>>(linker, get)
}

impl index::Host for IndexCtx {
    async fn upsert(
        &mut self,
        documents: Vec<Document>,
    ) -> wasmtime::Result<Result<(), IndexError>> {
        match self.pipeline()? {
            Ok(p) => p.upsert(documents).await.map_err(host_fault),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn delete(&mut self, ids: Vec<String>) -> wasmtime::Result<Result<(), IndexError>> {
        match self.pipeline()? {
            Ok(p) => p.delete(ids).await.map_err(host_fault),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn checkpoint(
        &mut self,
        state: Vec<(String, Option<Vec<u8>>)>,
    ) -> wasmtime::Result<Result<Vec<ContentFailure>, IndexError>> {
        match self.pipeline()? {
            Ok(p) => p.checkpoint(state).await.map_err(host_fault),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn upsert_access_control(
        &mut self,
        documents: Vec<Document>,
    ) -> wasmtime::Result<Result<(), IndexError>> {
        match self.pipeline()? {
            Ok(p) => p.upsert_acl(documents).await.map_err(host_fault),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn delete_access_control(
        &mut self,
        ids: Vec<String>,
    ) -> wasmtime::Result<Result<(), IndexError>> {
        match self.pipeline()? {
            Ok(p) => p.delete_acl(ids).await.map_err(host_fault),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn set_download_concurrency(&mut self, limit: u32) -> wasmtime::Result<()> {
        if let Ok(p) = self.pipeline()? {
            p.set_concurrency(limit);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use std::time::Duration;

    use axum::routing::get;
    use serde_json::json;

    use super::*;
    use crate::bindings::http::{Method, Request};
    use crate::capabilities::extract::{ExtractConfig, Extractors};
    use crate::capabilities::http::HttpConfig;
    use crate::capabilities::storage::{Namespace, StorageLimits};
    use crate::db::Db;
    use crate::sink::embedded::EmbeddedIndex;

    struct Fixture {
        _dir: tempfile::TempDir,
        sink: Arc<EmbeddedIndex>,
        deps: PipelineDeps,
        server: tributary_fakes::FakeServer,
        storage: StorageCtx,
    }

    async fn fixture() -> Fixture {
        use axum::response::IntoResponse;
        let later_calls = Arc::new(AtomicU64::new(0));
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(EmbeddedIndex::new(dir.path()));
        let server = tributary_fakes::FakeServer::start(
            axum::Router::new()
                .route(
                    "/slow.txt",
                    get(|| async {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        "slow body"
                    }),
                )
                .route("/fast.txt", get(|| async { "fast body" }))
                .route(
                    "/later.txt",
                    get(move || {
                        let calls = later_calls.clone();
                        async move {
                            // Box answers 202 + Retry-After while a new upload is processed.
                            if calls.fetch_add(1, Ordering::Relaxed) == 0 {
                                (axum::http::StatusCode::ACCEPTED, [("retry-after", "0")], "")
                                    .into_response()
                            } else {
                                "ready now".into_response()
                            }
                        }
                    }),
                ),
        )
        .await
        .unwrap();
        let deps = PipelineDeps {
            sink: sink.clone(),
            http: Arc::new(HttpEngine::new(HttpConfig::default()).unwrap()),
            extract: Arc::new(Extraction::new(
                Arc::new(Extractors::new(&ExtractConfig::default()).unwrap()),
                false,
            )),
            config: PipelineConfig::default(),
        };
        let storage = StorageCtx::new(
            Db::in_memory().unwrap(),
            Namespace {
                tenant: "t".into(),
                connector: "c".into(),
            },
            StorageLimits::default(),
        );
        Fixture {
            _dir: dir,
            sink,
            deps,
            server,
            storage,
        }
    }

    impl Fixture {
        async fn pipeline(&self, kind: SyncKind) -> Pipeline {
            let allow = Allowlist::parse(&[self.server.addr().to_string()]).unwrap();
            Pipeline::start(
                self.deps.clone(),
                kind,
                IndexRef::new("t", "docs"),
                "c".into(),
                Rules::default(),
                Arc::new(allow),
                self.storage.clone(),
                Arc::default(),
            )
            .await
            .unwrap()
        }

        fn fetch_doc(&self, id: &str, path: &str) -> Document {
            Document {
                id: id.into(),
                timestamp: Some("v1".into()),
                fields: json!({"name": id}).to_string(),
                content: Some(Content::Fetch(ContentRequest {
                    request: Request {
                        method: Method::Get,
                        url: format!("{}{path}", self.server.url()),
                        headers: vec![],
                        body: None,
                        timeout_ms: None,
                    },
                    file_name: "f.txt".into(),
                    mime_type: None,
                    size: None,
                    max_bytes: 1 << 20,
                    retries: 0,
                })),
            }
        }

        async fn bodies(&self) -> HashMap<String, Option<String>> {
            let ix = IndexRef::new("t", "docs");
            let ids: Vec<String> = self
                .sink
                .versions(ix.clone(), "c".into())
                .await
                .unwrap()
                .into_keys()
                .collect();
            self.sink
                .get(ix, "c".into(), ids)
                .await
                .unwrap()
                .into_iter()
                .map(|d| (d.id, d.body))
                .collect()
        }
    }

    fn text_doc(id: &str, version: &str, body: &str) -> Document {
        Document {
            id: id.into(),
            timestamp: Some(version.into()),
            fields: json!({"name": id}).to_string(),
            content: Some(Content::Text(body.into())),
        }
    }

    #[tokio::test]
    async fn full_sync_skips_unchanged_and_deletes_vanished() {
        let f = fixture().await;
        let mut first = f.pipeline(SyncKind::Full).await;
        first
            .upsert(vec![text_doc("a", "v1", "A"), text_doc("b", "v1", "B")])
            .await
            .unwrap()
            .unwrap();
        first.finish().await.unwrap();

        let mut second = f.pipeline(SyncKind::Full).await;
        second
            .upsert(vec![text_doc("a", "v1", "A"), text_doc("c", "v1", "C")])
            .await
            .unwrap()
            .unwrap();
        let counts = second.finish().await.unwrap();
        assert_eq!(
            (counts.unchanged, counts.indexed, counts.deleted),
            (1, 1, 1)
        );
        let bodies = f.bodies().await;
        assert_eq!(
            bodies
                .keys()
                .cloned()
                .collect::<std::collections::BTreeSet<_>>(),
            ["a", "c"].map(String::from).into()
        );

        // A failed sync deletes nothing.
        let mut failed = f.pipeline(SyncKind::Full).await;
        failed
            .upsert(vec![text_doc("d", "v1", "D")])
            .await
            .unwrap()
            .unwrap();
        failed.abort().await.unwrap();
        assert_eq!(f.bodies().await.len(), 3, "a, c kept and d written");
    }

    #[tokio::test]
    async fn later_operations_win_over_downloads_in_flight() {
        let f = fixture().await;
        let mut p = f.pipeline(SyncKind::Incremental).await;
        // Upsert with a slow download, then delete before it finishes: the document stays gone.
        p.upsert(vec![f.fetch_doc("gone", "/slow.txt")])
            .await
            .unwrap()
            .unwrap();
        p.delete(vec!["gone".into()]).await.unwrap().unwrap();
        // Upsert with a slow download, then replace with text: the text wins.
        p.upsert(vec![f.fetch_doc("replaced", "/slow.txt")])
            .await
            .unwrap()
            .unwrap();
        p.upsert(vec![text_doc("replaced", "v2", "newer")])
            .await
            .unwrap()
            .unwrap();
        p.upsert(vec![f.fetch_doc("fetched", "/fast.txt")])
            .await
            .unwrap()
            .unwrap();
        let mut later = f.fetch_doc("later", "/later.txt");
        if let Some(Content::Fetch(req)) = later.content.as_mut() {
            req.retries = 1;
        }
        p.upsert(vec![later]).await.unwrap().unwrap();
        let failures = p
            .checkpoint(vec![("cursor".into(), Some(b"42".to_vec()))])
            .await
            .unwrap()
            .unwrap();
        assert!(failures.is_empty());
        let bodies = f.bodies().await;
        assert!(!bodies.contains_key("gone"), "{bodies:?}");
        assert_eq!(bodies["replaced"].as_deref(), Some("newer"));
        assert_eq!(bodies["fetched"].as_deref(), Some("fast body"));
        assert_eq!(
            bodies["later"].as_deref(),
            Some("ready now"),
            "202 is retried, not indexed as empty"
        );
        assert_eq!(
            f.storage.get("cursor".into()).await.unwrap(),
            Some(b"42".to_vec())
        );
    }

    #[tokio::test]
    async fn bad_documents_and_cancellation_are_reported() {
        let f = fixture().await;
        let mut p = f.pipeline(SyncKind::Full).await;
        let bad = Document {
            id: "x".into(),
            timestamp: None,
            fields: "[1, 2]".into(),
            content: None,
        };
        let err = p
            .upsert(vec![text_doc("ok", "v1", "fine"), bad])
            .await
            .unwrap()
            .unwrap_err();
        match err {
            IndexError::InvalidDocument(m) => {
                assert!(m.contains("document 1") && m.contains("JSON object"), "{m}")
            }
            other => panic!("unexpected {other:?}"),
        }
        p.finish().await.unwrap();
        assert!(
            f.bodies().await.is_empty(),
            "nothing of a rejected call is indexed"
        );

        let cancel = Arc::new(AtomicBool::new(false));
        let allow = Allowlist::default();
        let mut p = Pipeline::start(
            f.deps.clone(),
            SyncKind::Full,
            IndexRef::new("t", "docs"),
            "c".into(),
            Rules::default(),
            Arc::new(allow),
            f.storage.clone(),
            cancel.clone(),
        )
        .await
        .unwrap();
        cancel.store(true, Ordering::Relaxed);
        assert!(matches!(
            p.upsert(vec![text_doc("a", "v", "b")]).await.unwrap(),
            Err(IndexError::Cancelled)
        ));
    }

    #[tokio::test]
    async fn content_failures_come_back_at_checkpoint() {
        let f = fixture().await;
        let mut p = f.pipeline(SyncKind::Full).await;
        p.upsert(vec![f.fetch_doc("missing", "/nope.txt")])
            .await
            .unwrap()
            .unwrap();
        let failures = p.checkpoint(vec![]).await.unwrap().unwrap();
        assert_eq!(failures.len(), 1);
        assert_eq!(
            (failures[0].id.as_str(), failures[0].status),
            ("missing", Some(404))
        );
        let counts = p.finish().await.unwrap();
        assert_eq!(counts.content_failed, 1);
        // Indexed without body and without version, so the next full sync fetches it again.
        let versions = f
            .sink
            .versions(IndexRef::new("t", "docs"), "c".into())
            .await
            .unwrap();
        assert_eq!(versions["missing"], None);
    }

    /// Property tests: document ids come from plugins.
    mod props {
        use proptest::prelude::*;

        use super::super::check_id;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// An accepted id is 1 to 512 bytes without control characters (so it can never
            /// contain the embedded index's connector/id separator); anything else is refused.
            #[test]
            fn ids_are_checked(id in prop_oneof![".{0,10}", "[a\\x00\\x1f\\n\\u{85}]{0,4}", "i{505,520}"]) {
                let ok = check_id(&id).is_ok();
                prop_assert_eq!(ok, !id.is_empty() && id.len() <= 512 && !id.chars().any(char::is_control));
                if ok {
                    prop_assert!(!id.contains(char::from(0x1f_u8)), "separator in {:?}", id);
                }
            }
        }
    }
}
