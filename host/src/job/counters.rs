//! Live counts of a running job, and their snapshot in reports.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

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
    /// Indexed before and kept although not produced: their part of the source could not be
    /// listed this time (`index.keep`).
    pub kept: AtomicU64,
}

/// A copy of [`Counters`] at one moment.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
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
    /// Kept although not listed this time (their part of the source could not be read).
    #[serde(default)]
    pub kept: u64,
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
            kept: get(&self.kept),
        }
    }

    /// Adds `n` to one counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}
