//! The document pipeline of a running sync job: from a plugin's `upsert` to the sink.
//!
//! One document's path, a file per step:
//! 1. [`validate`]: the call is parsed and checked whole (a bad document rejects the call) and
//!    charged to the job's quotas ([`quota`]);
//! 2. the connector's sync rules decide whether it is indexed (an incremental sync deletes a
//!    document a change moved out of scope);
//! 3. [`ledger`]: a full sync records it as seen, and skips it (no download) when its id and
//!    version are indexed already;
//! 4. [`downloads`]: text content is attached, or a content request is downloaded and extracted
//!    by the host, many at once;
//! 5. [`batch`]: the document is written to the sink in batches.
//!
//! Invariants:
//! - deletions, commits and checkpoints keep their order relative to the upserts before them;
//! - a checkpoint makes everything before it durable (downloads included) before the plugin's
//!   state is stored, so stored state never runs ahead of the index;
//! - a full sync deletes the documents of the connector it did not produce only when the plugin
//!   returns successfully; a failed, cancelled or over-quota sync deletes nothing.

mod batch;
mod config;
mod downloads;
pub mod ledger;
mod quota;
mod validate;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use batch::Batcher;
pub use config::PipelineConfig;
pub use downloads::DownloadBudget;
use downloads::{Downloaded, Downloads, Fetcher, Outcome};
use ledger::Ledger;
use quota::JobQuota;

use crate::bindings::index::{Content, ContentFailure, Document, IndexError};
use crate::connector::rules::Rules;
use crate::extraction::Extraction;
use crate::job::{Counters, CountsSnapshot, SyncKind};
use crate::kv::ConnectorState;
use crate::net::Egress;
use crate::sink::{IndexRef, Sink, SinkDocument};

/// What every job's pipeline gets from the host.
#[derive(Clone)]
pub struct PipelineDeps {
    /// Where documents go.
    pub sink: Arc<dyn Sink>,
    /// Text extraction.
    pub extract: Arc<Extraction>,
    /// Limits.
    pub config: PipelineConfig,
    /// The host's budget of download bytes in flight, shared by every job.
    pub download_budget: DownloadBudget,
}

/// What one job's pipeline works on.
pub struct JobScope {
    /// The kind of sync.
    pub kind: SyncKind,
    /// The index documents go to.
    pub index: IndexRef,
    /// The connector they belong to.
    pub connector: String,
    /// Its sync rules.
    pub rules: Rules,
    /// Set to stop the job at the plugin's next call.
    pub cancelled: Arc<AtomicBool>,
}

/// The document pipeline of one job.
pub struct Pipeline {
    kind: SyncKind,
    rules: Rules,
    max_fields_bytes: usize,
    max_body_bytes: usize,
    state: ConnectorState,
    counters: Arc<Counters>,
    cancelled: Arc<AtomicBool>,
    ledger: Ledger,
    batches: Batcher,
    downloads: Downloads,
    quota: JobQuota,
    failures: Vec<ContentFailure>,
    next_seq: u64,
}

impl Pipeline {
    /// Starts a pipeline; a full (or access-control) sync first reads what is indexed.
    /// Downloads go through `egress` (the plugin instance's allowlist); checkpoint state is
    /// written to `state`.
    pub async fn start(
        deps: PipelineDeps,
        scope: JobScope,
        egress: Egress,
        state: ConnectorState,
    ) -> anyhow::Result<Self> {
        let JobScope {
            kind,
            index,
            connector,
            rules,
            cancelled,
        } = scope;
        let known = match kind {
            SyncKind::Full => deps.sink.versions(index.clone(), connector.clone()).await?,
            SyncKind::AccessControl => deps.sink.versions(index.acl(), connector.clone()).await?,
            SyncKind::Incremental => Default::default(),
        };
        let config = deps.config;
        let counters = Arc::<Counters>::default();
        let fetcher = Fetcher {
            egress,
            extraction: deps.extract,
            retry: config.download_retry(),
            max_download_bytes: config.max_download_bytes,
            max_body_bytes: config.max_body_bytes,
        };
        Ok(Self {
            kind,
            rules,
            max_fields_bytes: config.max_fields_bytes,
            max_body_bytes: config.max_body_bytes,
            state,
            counters: counters.clone(),
            cancelled,
            ledger: Ledger::new(kind, known),
            batches: Batcher::new(
                deps.sink,
                index,
                connector,
                counters,
                config.batch_documents,
                config.batch_bytes,
            ),
            downloads: Downloads::new(
                fetcher,
                config.default_download_concurrency,
                config.max_download_concurrency,
                config.max_download_bytes_in_flight,
                deps.download_budget,
            ),
            quota: JobQuota::new(config.max_documents, config.max_bytes),
            failures: Vec::new(),
            next_seq: 0,
        })
    }

    /// For job `job`: records its counts at every checkpoint, and for a full sync the ids it
    /// produces, so that a run of the same job after a crash (`resume`) starts from them — its
    /// counts total both runs, the plugin may continue its listing where it checkpointed instead
    /// of from the start, and the documents of the first run are not deleted as vanished.
    /// Returns how many ids a resumed run restored.
    pub async fn track_progress(
        &mut self,
        db: crate::db::Db,
        job: String,
        resume: bool,
    ) -> anyhow::Result<usize> {
        let (restored, counts) = self.ledger.track(db, job, resume).await?;
        if let Some(prior) = counts {
            // The interrupted run's counts at its last checkpoint: this run adds to them.
            let c = &self.counters;
            for (counter, n) in [
                (&c.received, prior.received),
                (&c.indexed, prior.indexed),
                (&c.unchanged, prior.unchanged),
                (&c.filtered, prior.filtered),
                (&c.deleted, prior.deleted),
                (&c.content_extracted, prior.content_extracted),
                (&c.content_skipped, prior.content_skipped),
                (&c.content_failed, prior.content_failed),
                (&c.access_control, prior.access_control),
            ] {
                Counters::add(counter, n);
            }
        }
        Ok(restored)
    }

    /// Live counters.
    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    fn check_cancelled(&self) -> Result<(), IndexError> {
        if self.cancelled.load(Ordering::Relaxed) {
            Err(IndexError::Cancelled)
        } else if let Some(breach) = self.quota.breach() {
            Err(IndexError::QuotaExceeded(breach.to_string()))
        } else {
            Ok(())
        }
    }

    /// Validates a whole call and charges it to the job's quotas.
    fn admit(
        &mut self,
        docs: &[Document],
    ) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, IndexError> {
        self.check_cancelled()?;
        let parsed = validate::documents(docs, self.max_fields_bytes)?;
        let bytes = docs.iter().map(validate::cost).sum();
        self.quota
            .charge(docs.len() as u64, bytes)
            .inspect_err(|e| {
                tracing::warn!(connector = %self.batches.connector(), "index quota exceeded: {e:?}")
            })?;
        Ok(parsed)
    }

    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn sink_document(
        &self,
        doc_id: String,
        version: Option<String>,
        fields: serde_json::Map<String, serde_json::Value>,
    ) -> SinkDocument {
        SinkDocument {
            id: doc_id,
            connector: self.batches.connector().to_string(),
            version,
            fields,
            body: None,
        }
    }

    /// Handles an `upsert` call.
    pub async fn upsert(&mut self, docs: Vec<Document>) -> anyhow::Result<Result<(), IndexError>> {
        let parsed = match self.admit(&docs) {
            Ok(parsed) => parsed,
            Err(e) => return Ok(Err(e)),
        };
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
            self.ledger.saw(&doc.id);
            if self.ledger.is_unchanged(&doc.id, &doc.timestamp) {
                Counters::add(&self.counters.unchanged, 1);
                continue;
            }
            let seq = self.seq();
            self.downloads.supersede(&doc.id, seq);
            let mut sink_doc = self.sink_document(doc.id, doc.timestamp, fields);
            match doc.content {
                None => self.batches.push(sink_doc),
                Some(Content::Text(text)) => {
                    sink_doc.body = Some(crate::text::truncate_owned(text, self.max_body_bytes));
                    self.batches.push(sink_doc);
                }
                Some(Content::Fetch(request)) => {
                    if request.size.is_some_and(|s| s > request.max_bytes) {
                        Counters::add(&self.counters.content_skipped, 1);
                        self.batches.push(sink_doc);
                    } else {
                        while self.downloads.is_full() {
                            if let Some(done) = self.downloads.next().await? {
                                self.accept(vec![done]).await?;
                            }
                        }
                        self.downloads.start(seq, sink_doc, request);
                    }
                }
            }
            self.batches.flush_if_full().await?;
        }
        let finished = self.downloads.finished();
        self.accept(finished).await?;
        if !excluded.is_empty() {
            return self.delete(excluded).await;
        }
        Ok(Ok(()))
    }

    /// Takes finished downloads into the batch, writing it out whenever it is full (so a call
    /// whose downloads finish together never holds more than one batch of bodies).
    async fn accept(&mut self, finished: Vec<Downloaded>) -> anyhow::Result<()> {
        for done in finished {
            // Extracted bodies count against the byte quota too; a breach fails the job at the
            // plugin's next call (or when it returns).
            let body = done.doc.body.as_ref().map_or(0, String::len) as u64;
            if body > 0 && self.quota.breach().is_none() {
                let _ = self.quota.charge(0, body);
            }
            match done.outcome {
                Outcome::Failed(failure) => {
                    Counters::add(&self.counters.content_failed, 1);
                    tracing::warn!(connector = %self.batches.connector(), id = %failure.id, "content not indexed: {}", failure.message);
                    self.failures.push(failure);
                }
                Outcome::Skipped => Counters::add(&self.counters.content_skipped, 1),
                Outcome::Extracted => Counters::add(&self.counters.content_extracted, 1),
            }
            self.batches.push(done.doc);
            self.batches.flush_if_full().await?;
        }
        Ok(())
    }

    /// Handles a `delete` call.
    pub async fn delete(&mut self, ids: Vec<String>) -> anyhow::Result<Result<(), IndexError>> {
        if let Err(e) = self
            .check_cancelled()
            .and_then(|()| validate::check_ids(&ids))
        {
            return Ok(Err(e));
        }
        for id in &ids {
            let seq = self.seq();
            self.downloads.supersede(id, seq);
            self.ledger.forget(id);
        }
        let finished = self.downloads.finished();
        self.accept(finished).await?;
        self.batches.delete(ids).await?;
        Ok(Ok(()))
    }

    /// Handles `keep`: spares documents of a part of the source the plugin could not list from
    /// deletion as vanished (full syncs only).
    pub fn keep(&mut self, ids: Vec<String>) -> Result<(), IndexError> {
        self.check_cancelled()?;
        validate::check_ids(&ids)?;
        let kept = ids.iter().filter(|id| self.ledger.keep(id)).count() as u64;
        Counters::add(&self.counters.kept, kept);
        Ok(())
    }

    /// Handles `upsert-access-control`.
    pub async fn upsert_acl(
        &mut self,
        docs: Vec<Document>,
    ) -> anyhow::Result<Result<(), IndexError>> {
        let parsed = match self.admit(&docs) {
            Ok(parsed) => parsed,
            Err(e) => return Ok(Err(e)),
        };
        for (doc, fields) in docs.into_iter().zip(parsed) {
            self.ledger.saw_acl(&doc.id);
            let acl_doc = self.sink_document(doc.id, doc.timestamp, fields);
            self.batches.push_acl(acl_doc);
            self.batches.flush_if_full().await?;
        }
        Ok(Ok(()))
    }

    /// Handles `delete-access-control`.
    pub async fn delete_acl(&mut self, ids: Vec<String>) -> anyhow::Result<Result<(), IndexError>> {
        if let Err(e) = self
            .check_cancelled()
            .and_then(|()| validate::check_ids(&ids))
        {
            return Ok(Err(e));
        }
        for id in &ids {
            self.ledger.forget(id);
        }
        self.batches.delete_acl(ids).await?;
        Ok(Ok(()))
    }

    /// Waits for downloads and writes everything out (without committing).
    async fn drain(&mut self) -> anyhow::Result<()> {
        while let Some(done) = self.downloads.next().await? {
            self.accept(vec![done]).await?;
        }
        self.batches.flush_all().await
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
        self.batches.commit().await?;
        // The ids before the plugin's state: a crash in between makes the plugin re-list a little.
        self.ledger.save(&self.counters.snapshot()).await?;
        if !state.is_empty()
            && let Err(e) = self.state.apply(state).await
        {
            return Ok(Err(IndexError::Sink(format!(
                "storing checkpoint state: {e:?}"
            ))));
        }
        Ok(Ok(std::mem::take(&mut self.failures)))
    }

    /// Sets the download concurrency (guest-controlled: clamped).
    pub fn set_concurrency(&mut self, limit: u32) {
        self.downloads.set_concurrency(limit);
    }

    /// After the plugin returned successfully: write out, delete what a full sync did not
    /// produce, commit.
    pub async fn finish(&mut self) -> anyhow::Result<CountsSnapshot> {
        self.drain().await?;
        if let Some(breach) = self.quota.breach().map(str::to_string) {
            // The plugin returned successfully although its documents were refused: the sync is
            // incomplete, so it fails and deletes nothing.
            self.abort().await?;
            anyhow::bail!("index quota exceeded: {breach}");
        }
        if self.kind != SyncKind::Incremental {
            let vanished = self.ledger.vanished();
            self.batches
                .delete_vanished(self.kind == SyncKind::AccessControl, vanished)
                .await?;
        }
        self.batches.commit().await?;
        self.ledger.clear().await;
        Ok(self.counters.snapshot())
    }

    /// After the plugin failed: stop downloads, keep (commit) what was written, delete nothing.
    /// (A failed job is not run again under its id, so its progress record goes too.)
    pub async fn abort(&mut self) -> anyhow::Result<CountsSnapshot> {
        self.downloads.abort().await;
        self.batches.flush_all().await?;
        self.batches.commit().await?;
        self.ledger.clear().await;
        Ok(self.counters.snapshot())
    }
}

#[cfg(test)]
mod tests;
