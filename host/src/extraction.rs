//! Text extraction by the host, natively (`tributary-extract`: PDF, Office, OpenDocument, HTML,
//! e-mail, text…) or through an external extraction service speaking Elastic's
//! `PUT /extract_text/` protocol, for connectors with `use_text_extraction_service`.
//!
//! Invariants: extraction runs on dedicated threads with a time limit and a concurrency bound; a
//! failing or panicking parser yields an error for that one document, never a crashed host.
//! Used by the pipeline's downloads and by the `extract` capability.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use tributary_extract::service::ServiceClient;
use tributary_extract::stream::{Begin, HEAD_BYTES};
use tributary_extract::{ExtractError, Extractor, Limits as ExtractLimits};

use crate::bindings::extract::ExtractError as WitExtractError;
use crate::bindings::http::HttpError;
use futures::future::BoxFuture;

use crate::bindings::index::ContentRequest;
use crate::net::{Body, DownloadError, Egress, RetryPolicy, download, download_with};

/// Operator settings for extraction.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExtractConfig {
    /// Extractions running at once (0 = number of CPUs).
    pub max_parallel: usize,
    /// Time limit per file, in seconds.
    pub timeout_seconds: u64,
    /// Largest text kept per file, in bytes.
    pub max_output_bytes: usize,
    /// Largest body accepted by default, in bytes (a content request can ask for less or more,
    /// up to the pipeline's download limit).
    pub max_input_bytes: u64,
    /// Base URL of an external extraction service (Elastic's data-extraction-service), used by
    /// connectors that set `use_text_extraction_service`.
    pub service_url: Option<String>,
}

impl Default for ExtractConfig {
    fn default() -> Self {
        Self {
            max_parallel: 0,
            timeout_seconds: 30,
            max_output_bytes: 4 * 1024 * 1024,
            max_input_bytes: 10 * 1024 * 1024,
            service_url: None,
        }
    }
}

/// Why a body produced no text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExtractFailure {
    /// Not a text-bearing format we read.
    Unsupported(String),
    /// Over the size limit (bytes).
    TooLarge(u64),
    /// Malformed, truncated, a bomb, a parser panic, a service error.
    Failed(String),
    /// Over the time limit.
    TimedOut,
}

impl From<ExtractError> for ExtractFailure {
    fn from(e: ExtractError) -> Self {
        match e {
            ExtractError::Unsupported(m) => ExtractFailure::Unsupported(m),
            ExtractError::TooLarge { limit, .. } => ExtractFailure::TooLarge(limit),
            ExtractError::Failed(m) => ExtractFailure::Failed(m),
            ExtractError::TimedOut(_) => ExtractFailure::TimedOut,
        }
    }
}

impl From<ExtractFailure> for WitExtractError {
    fn from(e: ExtractFailure) -> Self {
        match e {
            ExtractFailure::Unsupported(m) => WitExtractError::Unsupported(m),
            ExtractFailure::TooLarge(l) => WitExtractError::TooLarge(l),
            ExtractFailure::Failed(m) => WitExtractError::Failed(m),
            ExtractFailure::TimedOut => WitExtractError::TimedOut,
        }
    }
}

/// The host's extraction engine, shared by every job.
#[derive(Debug)]
pub struct Extractors {
    local: Extractor,
    service: Option<ServiceClient>,
}

impl Extractors {
    /// Builds the engine from operator settings.
    pub fn new(config: &ExtractConfig) -> anyhow::Result<Self> {
        let limits = ExtractLimits {
            max_input_bytes: config.max_input_bytes,
            max_output_bytes: config.max_output_bytes,
            timeout: Duration::from_secs(config.timeout_seconds.max(1)),
            ..ExtractLimits::default()
        };
        let service = match &config.service_url {
            Some(url) => Some(
                ServiceClient::new(url)
                    .map_err(|e| anyhow::anyhow!("extraction service `{url}`: {e}"))?,
            ),
            None => None,
        };
        Ok(Self {
            local: Extractor::new(limits, config.max_parallel),
            service,
        })
    }

    /// Whether an external service is configured.
    pub fn has_service(&self) -> bool {
        self.service.is_some()
    }
}

/// Extraction as one job sees it: local or through the service, with the job's size limit.
#[derive(Clone, Debug)]
pub struct Extraction {
    engines: Arc<Extractors>,
    use_service: bool,
}

impl Extraction {
    /// Extraction for a job; `use_service` routes bodies to the external service.
    pub fn new(engines: Arc<Extractors>, use_service: bool) -> Self {
        Self {
            engines,
            use_service,
        }
    }

    /// The largest body extracted by default, in bytes.
    pub fn max_input_bytes(&self) -> u64 {
        self.engines.local.limits().max_input_bytes
    }

    /// Whether bodies go to the external service (which takes them whole).
    pub fn uses_service(&self) -> bool {
        self.use_service && self.engines.service.is_some()
    }

    /// The most text kept from one body, in bytes.
    pub fn max_output_bytes(&self) -> usize {
        self.engines.local.limits().max_output_bytes
    }

    /// Starts extracting a body that arrives in pieces from its first bytes (see
    /// [`tributary_extract::stream`]), with at most `max_output_bytes` of text and at most
    /// `max_input_bytes` of input. Local extraction only: the service takes bodies whole.
    pub fn begin(
        &self,
        head: &[u8],
        complete: bool,
        file_name: &str,
        mime: Option<&str>,
        max_input_bytes: u64,
        max_output_bytes: usize,
    ) -> Result<Begin, ExtractFailure> {
        let limits = self
            .engines
            .local
            .limits()
            .clone()
            .with_max_input_bytes(max_input_bytes)
            .with_max_output_bytes(max_output_bytes.min(self.max_output_bytes()));
        tributary_extract::stream::begin(head, complete, file_name, mime, &limits)
            .map_err(ExtractFailure::from)
    }

    /// Downloads `request` (at most `max_input_bytes`, retried as `retry` says) and extracts its
    /// text: sent whole to the extraction service when one is configured, else read as it
    /// arrives ([`Extraction::read_text`], `before_whole` made afresh for every attempt). The
    /// one path of the pipeline's downloads and of `extract.fetch-text`. `Err` is the download's
    /// failure, `Ok(Err)` the extraction's verdict.
    pub async fn download_text<'a, W, F>(
        &'a self,
        egress: &'a Egress,
        request: &'a ContentRequest,
        max_input_bytes: u64,
        retry: &'a RetryPolicy,
        max_output_bytes: usize,
        before_whole: W,
    ) -> Result<Result<String, ExtractFailure>, DownloadError>
    where
        W: Fn() -> F + Send + Sync + 'a,
        F: Future<Output = ()> + Send + 'a,
    {
        let (name, mime) = (&request.file_name, request.mime_type.as_deref());
        if self.uses_service() {
            let body = download(egress, request, max_input_bytes, retry).await?;
            return Ok(self.extract(body, name, mime).await);
        }
        // A boxed future per attempt: the spawned download needs it `Send`, which a borrowing
        // async closure is not for every lifetime.
        let read = |body: Body| -> BoxFuture<'a, _> {
            Box::pin(self.read_text(
                body,
                name,
                mime,
                max_input_bytes,
                max_output_bytes,
                before_whole(),
            ))
        };
        download_with(egress, request, max_input_bytes, retry, read).await
    }

    /// Reads a downloaded body into text (local extraction): its head decides
    /// ([`Extraction::begin`]); text, Markdown, CSV, TSV, JSON, XML and HTML are then fed piece by
    /// piece, each piece dropped once scanned, and reading stops once the text is full; any other
    /// format is read whole once `before_whole` has finished (a caller holding a memory share
    /// grows it there) and extracted off the async runtime. `Err` is a transfer failure (worth another
    /// attempt), `Ok(Err)` the extraction's verdict.
    pub async fn read_text(
        &self,
        mut body: Body,
        file_name: &str,
        mime: Option<&str>,
        max_input_bytes: u64,
        max_output_bytes: usize,
        before_whole: impl Future<Output = ()>,
    ) -> Result<Result<String, ExtractFailure>, HttpError> {
        // The head is HEAD_BYTES at most (one heap block, never regrown); what the piece that
        // filled it had beyond that is fed first.
        let mut head = Vec::with_capacity(HEAD_BYTES);
        let mut beyond = Bytes::new();
        let complete = loop {
            if head.len() >= HEAD_BYTES {
                break false;
            }
            match body.chunk().await? {
                Some(mut piece) => {
                    let room = HEAD_BYTES - head.len();
                    if piece.len() > room {
                        beyond = piece.split_off(room);
                    }
                    head.extend_from_slice(&piece);
                }
                None => break true,
            }
        };
        let begun = self.begin(
            &head,
            complete,
            file_name,
            mime,
            max_input_bytes,
            max_output_bytes,
        );
        match begun {
            Err(e) => Ok(Err(e)),
            Ok(Begin::Streaming(mut stream)) => {
                drop(head);
                if let Some(declared) = body.declared_len() {
                    stream.expect_len(declared);
                }
                let mut piece = beyond;
                loop {
                    let fed = stream.feed(&piece);
                    // Released before waiting: while a piece lives, the connection cannot
                    // reuse the buffer it was cut from and allocates another.
                    drop(std::mem::take(&mut piece));
                    match fed {
                        Ok(true) => {}
                        // the text is full: the rest would be cut anyway
                        Ok(false) => break,
                        Err(e) => return Ok(Err(e.into())),
                    }
                    match body.chunk().await? {
                        Some(next) => piece = next,
                        None => break,
                    }
                }
                Ok(stream
                    .finish()
                    .map(|e| e.text)
                    .map_err(ExtractFailure::from))
            }
            Ok(Begin::Whole(_)) => {
                before_whole.await;
                let declared = body.declared_len().unwrap_or(0).min(max_input_bytes);
                let mut all = BytesMut::with_capacity(usize::try_from(declared).unwrap_or(0));
                all.extend_from_slice(&head);
                all.extend_from_slice(&beyond);
                drop((head, beyond));
                while let Some(piece) = body.chunk().await? {
                    all.extend_from_slice(&piece);
                }
                Ok(self.extract(all.freeze(), file_name, mime).await)
            }
        }
    }

    /// Extracts text from `body`.
    pub async fn extract(
        &self,
        body: Bytes,
        file_name: &str,
        mime: Option<&str>,
    ) -> Result<String, ExtractFailure> {
        let limits = self.engines.local.limits().clone().with_max_input_bytes(
            (body.len() as u64).max(self.engines.local.limits().max_input_bytes),
        );
        let result = match (&self.engines.service, self.use_service) {
            (Some(service), true) => service.extract(body, file_name, mime, &limits).await,
            _ => {
                self.engines
                    .local
                    .extract_with(body, file_name, mime, &limits)
                    .await
            }
        };
        result.map(|e| e.text).map_err(ExtractFailure::from)
    }
}
