//! Content downloads of one job, many at once: download → extract → a body for the document.
//!
//! Invariants:
//! - at most `concurrency` downloads run (the plugin waits for a slot: backpressure), and the
//!   plugin's wish is clamped to the operator's maximum;
//! - the bodies they hold are bounded in bytes too: a download reserves its declared size (its
//!   download limit when the source declared none) from the job's in-flight budget before it
//!   starts and keeps it until its text is extracted, so concurrency × body size never exceeds
//!   the budget (a body larger than the whole budget reserves all of it and runs alone); it
//!   then reserves the same from the host's budget, shared by every job (always in that order,
//!   job then host, so two downloads never wait on each other's reservations);
//! - every download carries the operation number of its upsert; a result is handed back only
//!   when no later upsert or delete of the same id happened meanwhile, so a later operation
//!   always wins over a download still in flight;
//! - a failed download leaves the document without body *and without version*, so the next
//!   full sync fetches it again; a skipped one (too large, unsupported) keeps its version.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::bindings::index::{ContentFailure, ContentRequest};
use crate::extraction::{ExtractFailure, Extraction};
use crate::net::{DownloadError, Egress, RetryPolicy, download};
use crate::sink::SinkDocument;

/// A finished download.
pub(crate) struct Downloaded {
    pub(crate) doc: SinkDocument,
    pub(crate) outcome: Outcome,
}

/// How a download ended.
pub(crate) enum Outcome {
    /// The body was extracted.
    Extracted,
    /// Not fetched or not extracted on purpose.
    Skipped,
    /// Failed: reported to the plugin at its next checkpoint.
    Failed(ContentFailure),
}

/// What every download of a job shares.
#[derive(Clone)]
pub(crate) struct Fetcher {
    pub(crate) egress: Egress,
    pub(crate) extraction: Arc<Extraction>,
    pub(crate) retry: RetryPolicy,
    /// Upper bound on any download, whatever the plugin asks.
    pub(crate) max_download_bytes: u64,
    /// Longest body kept.
    pub(crate) max_body_bytes: usize,
}

/// A budget of download bytes in flight (a permit per byte): a job's, or the host's shared by
/// every job. Clones share the budget.
#[derive(Clone, Debug)]
pub struct DownloadBudget {
    bytes: Arc<Semaphore>,
    total: u32,
}

impl DownloadBudget {
    /// A budget of `total` bytes (at most 4 GiB).
    pub fn new(total: u64) -> Self {
        // A semaphore counts in u32 for a multi-permit acquire; 4 GiB is plenty for a budget.
        let total = u32::try_from(total).unwrap_or(u32::MAX).max(1);
        Self {
            bytes: Arc::new(Semaphore::new(total as usize)),
            total,
        }
    }

    /// Reserves `bytes` (all of the budget when it is larger), waiting until they are free.
    async fn reserve(&self, bytes: u64) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let share = u32::try_from(bytes)
            .unwrap_or(u32::MAX)
            .clamp(1, self.total);
        // Never closed, so this waits rather than failing.
        self.bytes.clone().acquire_many_owned(share).await.ok()
    }

    /// Bytes not reserved now.
    pub fn available(&self) -> usize {
        self.bytes.available_permits()
    }
}

/// The downloads in flight.
pub(crate) struct Downloads {
    fetcher: Fetcher,
    budget: DownloadBudget,
    host_budget: DownloadBudget,
    tasks: JoinSet<(u64, Downloaded)>,
    /// Latest operation number per id with a download in flight.
    in_flight: HashMap<String, u64>,
    concurrency: usize,
    max_concurrency: u32,
}

impl Downloads {
    pub(crate) fn new(
        fetcher: Fetcher,
        concurrency: u32,
        max_concurrency: u32,
        max_bytes_in_flight: u64,
        host_budget: DownloadBudget,
    ) -> Self {
        Self {
            fetcher,
            budget: DownloadBudget::new(max_bytes_in_flight),
            host_budget,
            tasks: JoinSet::new(),
            in_flight: HashMap::new(),
            concurrency: concurrency.clamp(1, max_concurrency.max(1)) as usize,
            max_concurrency: max_concurrency.max(1),
        }
    }

    /// Sets the concurrency (guest-controlled: clamped).
    pub(crate) fn set_concurrency(&mut self, limit: u32) {
        self.concurrency = limit.clamp(1, self.max_concurrency) as usize;
    }

    /// Operation `seq` on `id` supersedes any download of it in flight.
    pub(crate) fn supersede(&mut self, id: &str, seq: u64) {
        if let Some(s) = self.in_flight.get_mut(id) {
            *s = seq;
        }
    }

    /// Starts a download for `doc` (operation `seq`), after waiting for a free slot; returns the
    /// downloads that finished while waiting.
    pub(crate) async fn start(
        &mut self,
        seq: u64,
        doc: SinkDocument,
        request: ContentRequest,
    ) -> anyhow::Result<Vec<Downloaded>> {
        let mut finished = Vec::new();
        while self.tasks.len() >= self.concurrency {
            if let Some(done) = self.tasks.join_next().await {
                let (seq, done) = done.context("content download task")?;
                finished.extend(self.current(seq, done));
            }
        }
        self.in_flight.insert(doc.id.clone(), seq);
        let fetcher = self.fetcher.clone();
        let (budget, host_budget) = (self.budget.clone(), self.host_budget.clone());
        self.tasks.spawn(async move {
            // The declared size (guest- and source-controlled: capped by the download limit).
            let max_bytes = fetcher.max_bytes(&request);
            let bytes = request.size.unwrap_or(max_bytes).min(max_bytes);
            let _job = budget.reserve(bytes).await;
            let _host = host_budget.reserve(bytes).await;
            (seq, fetcher.fetch(doc, request).await)
        });
        Ok(finished)
    }

    /// The job's in-flight byte budget.
    #[cfg(test)]
    pub(crate) fn budget(&self) -> &DownloadBudget {
        &self.budget
    }

    /// The downloads that have finished, without waiting.
    pub(crate) fn finished(&mut self) -> Vec<Downloaded> {
        let mut finished = Vec::new();
        while let Some(done) = self.tasks.try_join_next() {
            match done {
                Ok((seq, d)) => finished.extend(self.current(seq, d)),
                Err(e) => tracing::error!("content download task failed: {e}"),
            }
        }
        finished
    }

    /// Waits for every download.
    pub(crate) async fn drain(&mut self) -> anyhow::Result<Vec<Downloaded>> {
        let mut finished = Vec::new();
        while let Some(done) = self.tasks.join_next().await {
            let (seq, d) = done.context("content download task")?;
            finished.extend(self.current(seq, d));
        }
        Ok(finished)
    }

    /// Stops every download.
    pub(crate) async fn abort(&mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        self.in_flight.clear();
    }

    /// `done` unless a later operation superseded it.
    fn current(&mut self, seq: u64, done: Downloaded) -> Option<Downloaded> {
        if self.in_flight.get(&done.doc.id) != Some(&seq) {
            return None;
        }
        self.in_flight.remove(&done.doc.id);
        Some(done)
    }
}

impl Fetcher {
    /// The most bytes a download of `request` may read.
    fn max_bytes(&self, request: &ContentRequest) -> u64 {
        request.max_bytes.min(self.max_download_bytes)
    }

    /// Downloads and extracts one document's content.
    async fn fetch(&self, mut doc: SinkDocument, request: ContentRequest) -> Downloaded {
        let outcome = match self.fetch_text(&request).await {
            Ok(text) => {
                doc.body = Some(crate::text::truncate_owned(text, self.max_body_bytes));
                Outcome::Extracted
            }
            Err(Failure::Skipped(reason)) => {
                tracing::debug!(id = %doc.id, "content not indexed: {reason}");
                Outcome::Skipped
            }
            Err(Failure::Failed { status, message }) => {
                // No version: the next full sync tries this document again.
                doc.version = None;
                Outcome::Failed(ContentFailure {
                    id: doc.id.clone(),
                    status,
                    message,
                })
            }
        };
        Downloaded { doc, outcome }
    }

    async fn fetch_text(&self, request: &ContentRequest) -> Result<String, Failure> {
        let max_bytes = self.max_bytes(request);
        let body = download(&self.egress, request, max_bytes, &self.retry)
            .await
            .map_err(|e| match e {
                DownloadError::Skipped(m) => Failure::Skipped(m),
                DownloadError::Failed { status, message } => Failure::Failed { status, message },
            })?;
        self.extraction
            .extract(body, &request.file_name, request.mime_type.as_deref())
            .await
            .map_err(|e| match e {
                ExtractFailure::Unsupported(m) => Failure::Skipped(m),
                ExtractFailure::TooLarge(limit) => {
                    Failure::Skipped(format!("larger than the extraction limit of {limit} bytes"))
                }
                ExtractFailure::Failed(m) => Failure::Failed {
                    status: None,
                    message: format!("extraction failed: {m}"),
                },
                ExtractFailure::TimedOut => Failure::Failed {
                    status: None,
                    message: "extraction timed out".into(),
                },
            })
    }
}

enum Failure {
    Skipped(String),
    Failed {
        status: Option<u16>,
        message: String,
    },
}
