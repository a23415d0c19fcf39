//! Operator limits of the document pipeline (`[pipeline]` in the host configuration).

use std::time::Duration;

use serde::Deserialize;

use crate::net::RetryPolicy;

/// Operator limits for the pipeline.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineConfig {
    /// Most documents per sink write.
    pub batch_documents: usize,
    /// Most bytes (ids, fields, bodies) per sink write: a batch is written when it reaches
    /// `batch_documents` documents or this many bytes, whichever comes first. 2 MiB: a batch is
    /// held whole until written, and with 1 MB bodies 4 MiB cost the `sync_memory` bench's Box
    /// mix 3 MB of peak RSS at the same speed (Elasticsearch bulks stay under `bulk_max_bytes`).
    pub batch_bytes: usize,
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
    /// Most bytes of content one job downloads and extracts at once, counted by the sizes the
    /// source declared (the download limit when it declared none): a download waits until its
    /// size fits, so concurrency never multiplies body sizes past this. A larger download runs
    /// alone.
    pub max_download_bytes_in_flight: u64,
    /// The same for all jobs of the host together.
    pub max_host_download_bytes_in_flight: u64,
    /// First retry delay of a content download, in milliseconds (then exponential, with jitter).
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
            batch_bytes: 2 * 1024 * 1024,
            max_fields_bytes: 1024 * 1024,
            max_body_bytes: 8 * 1024 * 1024,
            max_download_bytes: 100 * 1024 * 1024,
            max_download_concurrency: 256,
            default_download_concurrency: 10,
            max_download_bytes_in_flight: 32 * 1024 * 1024,
            max_host_download_bytes_in_flight: 256 * 1024 * 1024,
            download_backoff_ms: 500,
            max_documents: 50_000_000,
            max_bytes: 512 * 1024 * 1024 * 1024,
        }
    }
}

impl PipelineConfig {
    /// The retry policy of every content download (the pipeline's and `extract.fetch-text`'s).
    pub fn download_retry(&self) -> RetryPolicy {
        RetryPolicy::starting_at(Duration::from_millis(self.download_backoff_ms))
    }
}
