//! `extract`: the guest adapter over [`crate::extraction`] and [`crate::net::download`].
//!
//! Guest-controlled sizes are clamped here: a body handed in is at most the extraction input
//! limit, and a fetched body at most what the host hands to plugins at all.

use bytes::Bytes;
use wasmtime::component::{HasSelf, Linker};

use crate::bindings::extract::{self, ExtractError as WitExtractError};
use crate::bindings::index::ContentRequest;
use crate::extraction::Extraction;
use crate::limits::HostCalls;
use crate::net::{DownloadError, Egress, RetryPolicy};

/// The `extract` state of a plugin instance.
#[derive(Clone, Debug)]
pub struct ExtractCtx {
    extraction: Extraction,
    egress: Egress,
    retry: RetryPolicy,
    /// Rate of capability calls (installed by the runtime).
    pub calls: HostCalls,
}

impl ExtractCtx {
    /// A context extracting with `extraction`, downloading through `egress` by `retry`.
    pub fn new(extraction: Extraction, egress: Egress, retry: RetryPolicy) -> Self {
        Self {
            extraction,
            egress,
            retry,
            calls: HostCalls::default(),
        }
    }
}

/// Links `extract` into a linker whose store data exposes an [`ExtractCtx`].
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut ExtractCtx,
) -> wasmtime::Result<()> {
    extract::add_to_linker::<T, HasSelf<ExtractCtx>>(linker, get)
}

impl extract::Host for ExtractCtx {
    async fn extract_text(
        &mut self,
        body: Vec<u8>,
        file_name: String,
        mime_type: Option<String>,
    ) -> wasmtime::Result<Result<String, WitExtractError>> {
        self.calls.charge_or_trap()?;
        let max_input = self.extraction.max_input_bytes();
        if body.len() as u64 > max_input {
            return Ok(Err(WitExtractError::TooLarge(max_input)));
        }
        Ok(self
            .extraction
            .extract(Bytes::from(body), &file_name, mime_type.as_deref())
            .await
            .map_err(Into::into))
    }

    async fn fetch_text(
        &mut self,
        request: ContentRequest,
    ) -> wasmtime::Result<Result<String, WitExtractError>> {
        self.calls.charge_or_trap()?;
        if request.size.is_some_and(|s| s > request.max_bytes) {
            return Ok(Err(WitExtractError::TooLarge(request.max_bytes)));
        }
        // Guest-controlled: a request may ask for more than the default input size, but never
        // for more than the host hands to plugins at all (the body is held in host memory).
        let ceiling = self
            .extraction
            .max_input_bytes()
            .max(self.egress.engine().config().max_response_bytes);
        let max = request.max_bytes.min(ceiling);
        let max_output = self.extraction.max_output_bytes();
        let text = self
            .extraction
            .download_text(
                &self.egress,
                &request,
                max,
                &self.retry,
                max_output,
                || async {},
            )
            .await;
        let text = match text {
            Ok(text) => text,
            Err(DownloadError::Skipped(reason)) => {
                tracing::debug!(file = %request.file_name, "not extracted: {reason}");
                return Ok(Err(WitExtractError::TooLarge(max)));
            }
            Err(DownloadError::Failed { message, .. }) => {
                return Ok(Err(WitExtractError::Failed(message)));
            }
        };
        Ok(text.map_err(Into::into))
    }
}
