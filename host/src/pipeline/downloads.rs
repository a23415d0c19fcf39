//! Content downloads of one job, many at once: download → extract → a body for the document.
//!
//! Invariants:
//! - at most `concurrency` downloads run or wait to be taken (the plugin waits for a slot:
//!   backpressure), and the plugin's wish is clamped to the operator's maximum;
//! - the bytes they hold are bounded too: before it starts, a download reserves from the job's
//!   in-flight budget what it will hold at most — its declared size (its download limit when
//!   the source declared none), or for a body extracted as it arrives (text, Markdown, CSV,
//!   TSV, JSON, XML, HTML: read piece by piece, each piece dropped once scanned) its head and its
//!   text — and keeps it until its text is extracted, so concurrency × held bytes never exceed
//!   the budget (besides each connection's fixed 64 KiB read buffer, `net/client.rs`) (a body
//!   larger than the whole budget reserves all of it and runs alone); it then reserves the same
//!   from the host's budget, shared by every job (always job then host). A body whose head shows
//!   a format that needs it whole gives its share back and reserves the whole size before
//!   reading on: a download never waits for more while holding some, so no two downloads wait
//!   on each other's shares;
//! - a finished download keeps the share of its text (shrunk to the text's length) until the
//!   pipeline collects its document, so texts waiting to be batched count against both budgets
//!   too; the pipeline takes them one at a time and hands each to the batch before waiting for
//!   the next, so it never waits for a download while holding a finished one's share;
//! - a streamed body stops being read once its text reaches the body limit;
//! - every download carries the operation number of its upsert; a result is handed back only
//!   when no later upsert or delete of the same id happened meanwhile, so a later operation
//!   always wins over a download still in flight;
//! - a failed download leaves the document without body *and without version*, so the next
//!   full sync fetches it again; a skipped one (too large, unsupported) keeps its version.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tributary_extract::stream::{HEAD_BYTES, likely_streams};

use crate::bindings::index::{ContentFailure, ContentRequest};
use crate::extraction::{ExtractFailure, Extraction};
use crate::net::{DownloadError, Egress, RetryPolicy};
use crate::sink::SinkDocument;

/// A finished download.
pub(crate) struct Downloaded {
    pub(crate) doc: SinkDocument,
    pub(crate) outcome: Outcome,
    /// The budget share of its text, held until the pipeline takes the document (dropped with
    /// this): a finished download waiting to be collected is memory too.
    _held: Option<Reservation>,
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
    /// The largest share granted so far (tests read it: `available` alone cannot show a share
    /// that the next waiter starts filling at once, as tokio's semaphore hands freed permits to
    /// the first waiter piece by piece).
    #[cfg(test)]
    largest: Arc<std::sync::atomic::AtomicU32>,
}

impl DownloadBudget {
    /// A budget of `total` bytes (at most 4 GiB).
    pub fn new(total: u64) -> Self {
        // A semaphore counts in u32 for a multi-permit acquire; 4 GiB is plenty for a budget.
        let total = u32::try_from(total).unwrap_or(u32::MAX).max(1);
        Self {
            bytes: Arc::new(Semaphore::new(total as usize)),
            total,
            #[cfg(test)]
            largest: Arc::default(),
        }
    }

    /// Reserves `bytes` (all of the budget when it is larger), waiting until they are free.
    async fn reserve(&self, bytes: u64) -> Option<OwnedSemaphorePermit> {
        let share = u32::try_from(bytes)
            .unwrap_or(u32::MAX)
            .clamp(1, self.total);
        // Never closed, so this waits rather than failing.
        let permit = self.bytes.clone().acquire_many_owned(share).await.ok();
        #[cfg(test)]
        self.largest
            .fetch_max(share, std::sync::atomic::Ordering::SeqCst);
        permit
    }

    /// The largest share granted so far.
    #[cfg(test)]
    pub(crate) fn largest(&self) -> u32 {
        self.largest.load(std::sync::atomic::Ordering::SeqCst)
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

    /// Whether every slot is taken: the caller takes finished downloads ([`Downloads::next`])
    /// until one is free, accepting each as it comes, before [`Downloads::start`].
    pub(crate) fn is_full(&self) -> bool {
        self.tasks.len() >= self.concurrency
    }

    /// Starts a download for `doc` (operation `seq`); the caller made sure a slot is free.
    pub(crate) fn start(&mut self, seq: u64, doc: SinkDocument, request: ContentRequest) {
        self.in_flight.insert(doc.id.clone(), seq);
        let fetcher = self.fetcher.clone();
        let (budget, host_budget) = (self.budget.clone(), self.host_budget.clone());
        self.tasks.spawn(async move {
            // The declared size (guest- and source-controlled: capped by the download limit).
            let max_bytes = fetcher.max_bytes(&request);
            let whole = request.size.unwrap_or(max_bytes).min(max_bytes);
            let reservation = Reservation {
                budgets: (budget, host_budget),
                whole,
                held: Mutex::new(None),
            };
            reservation
                .hold(fetcher.expected_bytes(&request, whole))
                .await;
            let mut done = fetcher.fetch(doc, request, &reservation).await;
            // Until the pipeline takes it, the document holds its text: the share shrinks to
            // that and stays.
            reservation.keep(done.doc.body.as_ref().map_or(0, String::len) as u64);
            done._held = Some(reservation);
            (seq, done)
        });
    }

    /// The next download to finish (superseded ones are dropped), `None` when none is running.
    /// One at a time, so the caller hands each to the batch before waiting for the next: waiting
    /// while holding finished ones could keep the shares the running ones wait for.
    pub(crate) async fn next(&mut self) -> anyhow::Result<Option<Downloaded>> {
        while let Some(done) = self.tasks.join_next().await {
            let (seq, done) = done.context("content download task")?;
            if let Some(done) = self.current(seq, done) {
                return Ok(Some(done));
            }
        }
        Ok(None)
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

    /// What a download of `request` will hold at most, `whole` being its declared size: a body
    /// extracted as it arrives holds its head and its text, one read whole holds all of it.
    fn expected_bytes(&self, request: &ContentRequest, whole: u64) -> u64 {
        let streams = !self.extraction.uses_service()
            && likely_streams(&request.file_name, request.mime_type.as_deref());
        if streams {
            let held = HEAD_BYTES + self.max_body_bytes.min(self.extraction.max_output_bytes());
            whole.min(held as u64)
        } else {
            whole
        }
    }

    /// Downloads and extracts one document's content.
    async fn fetch(
        &self,
        mut doc: SinkDocument,
        request: ContentRequest,
        reservation: &Reservation,
    ) -> Downloaded {
        let outcome = match self.fetch_text(&request, reservation).await {
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
        Downloaded {
            doc,
            outcome,
            _held: None,
        }
    }

    /// Downloads and extracts `request`'s text: a body read whole first grows the reservation
    /// to its whole size.
    async fn fetch_text(
        &self,
        request: &ContentRequest,
        reservation: &Reservation,
    ) -> Result<String, Failure> {
        let whole = || reservation.hold(reservation.whole);
        self.extraction
            .download_text(
                &self.egress,
                request,
                self.max_bytes(request),
                &self.retry,
                self.max_body_bytes,
                whole,
            )
            .await
            .map_err(Failure::from)?
            .map_err(Failure::from)
    }
}

/// The share of the download budgets (the job's, then the host's) one download holds.
struct Reservation {
    budgets: (DownloadBudget, DownloadBudget),
    /// The body's declared size (or its download limit).
    whole: u64,
    held: Mutex<Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)>>,
}

impl Reservation {
    /// Holds `bytes` of both budgets instead of what it held: what it held is given back
    /// first, so a download never waits for more while keeping some (no two downloads can
    /// wait on each other's shares).
    async fn hold(&self, bytes: u64) {
        self.lock().take();
        let job = self.budgets.0.reserve(bytes).await;
        let host = self.budgets.1.reserve(bytes).await;
        *self.lock() = job.zip(host);
    }

    /// Keeps only `bytes` of what it holds (at least one byte: a share is never empty).
    fn keep(&self, bytes: u64) {
        let keep = usize::try_from(bytes).unwrap_or(usize::MAX).max(1);
        if let Some((job, host)) = self.lock().as_mut() {
            for permit in [job, host] {
                let extra = permit.num_permits().saturating_sub(keep);
                drop(permit.split(extra));
            }
        }
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl From<DownloadError> for Failure {
    fn from(e: DownloadError) -> Self {
        match e {
            DownloadError::Skipped(m) => Failure::Skipped(m),
            DownloadError::Failed { status, message } => Failure::Failed { status, message },
        }
    }
}

impl From<ExtractFailure> for Failure {
    fn from(e: ExtractFailure) -> Self {
        match e {
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
        }
    }
}

enum Failure {
    Skipped(String),
    Failed {
        status: Option<u16>,
        message: String,
    },
}
