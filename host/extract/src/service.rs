//! Client for an external text-extraction service, for connectors configured with
//! `use_text_extraction_service`: the body is sent to the service instead of being
//! parsed in-process.
//!
//! The protocol is the one Elastic's `data-extraction-service` (Tika behind
//! openresty) speaks:
//!
//! ```text
//! PUT <base>/extract_text/            body: the raw file bytes
//! 200 {"extracted_text": "...", "_meta": {...}}
//! 4xx/5xx {"error": "...", "message": "..."}
//! ```
//!
//! The returned text goes through the same whitespace normalisation and output cap as
//! local extraction. Input size and time limits come from [`Limits`].

use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;

use crate::detect::{Format, detect};
use crate::error::{ExtractError, Result};
use crate::limits::{Budget, Limits};
use crate::run::Extracted;
use crate::text::Sink;

/// A client for one extraction service.
#[derive(Debug, Clone)]
pub struct ServiceClient {
    http: reqwest::Client,
    endpoint: String,
}

#[derive(Deserialize)]
struct Reply {
    extracted_text: Option<String>,
    error: Option<String>,
    message: Option<String>,
}

impl ServiceClient {
    /// A client for the service at `base_url` (e.g. `http://localhost:8090`).
    pub fn new(base_url: &str) -> Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ExtractError::Failed(format!("extraction service: client setup: {e}")))?;
        Ok(Self::with_client(http, base_url))
    }

    /// A client sharing an existing `reqwest::Client` (connection pool, proxy settings).
    pub fn with_client(http: reqwest::Client, base_url: &str) -> Self {
        let endpoint = format!("{}/extract_text/", base_url.trim_end_matches('/'));
        ServiceClient { http, endpoint }
    }

    /// The URL bodies are sent to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Send `bytes` to the service and return its text. `limits.max_input_bytes` is
    /// checked before sending, `limits.timeout` bounds the whole request, and the
    /// reply may be at most four times `max_output_bytes` (plus 64 KiB) long.
    pub async fn extract(
        &self,
        bytes: Bytes,
        file_name: &str,
        mime: Option<&str>,
        limits: &Limits,
    ) -> Result<Extracted> {
        let size = bytes.len() as u64;
        if size > limits.max_input_bytes {
            return Err(ExtractError::TooLarge {
                size,
                limit: limits.max_input_bytes,
            });
        }
        let format =
            detect(file_name, mime, &bytes[..bytes.len().min(64 * 1024)]).unwrap_or(Format::Text);
        let timeout = limits.timeout;
        let request = async {
            let response = self
                .http
                .put(&self.endpoint)
                .header(reqwest::header::ACCEPT, "application/json")
                .header(
                    reqwest::header::CONTENT_TYPE,
                    mime.unwrap_or("application/octet-stream"),
                )
                .body(bytes)
                .send()
                .await
                .map_err(|e| fail(format!("request failed: {e}")))?;
            let status = response.status();
            let max_reply = limits
                .max_output_bytes
                .saturating_mul(4)
                .saturating_add(64 * 1024);
            let body = read_capped(response, max_reply).await?;
            Ok::<_, ExtractError>((status, body))
        };
        let (status, body) = tokio::time::timeout(timeout, request)
            .await
            .map_err(|_| ExtractError::TimedOut(timeout))??;
        let reply: std::result::Result<Reply, _> = serde_json::from_slice(&body);
        if !status.is_success() {
            let detail = match &reply {
                Ok(Reply {
                    error: Some(e),
                    message,
                    ..
                }) => {
                    format!(": {e}: {}", message.as_deref().unwrap_or("unknown cause"))
                }
                _ => format!(
                    ": {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)]).trim()
                ),
            };
            return Err(fail(format!("HTTP {status}{detail}")));
        }
        let reply = reply.map_err(|e| fail(format!("invalid JSON reply: {e}")))?;
        if let Some(e) = reply.error {
            return Err(fail(format!(
                "{e}: {}",
                reply.message.as_deref().unwrap_or("unknown cause")
            )));
        }
        let text = reply
            .extracted_text
            .ok_or_else(|| fail("reply has no extracted_text".into()))?;
        let mut sink = Sink::new(limits.max_output_bytes, Budget::new(limits));
        sink.push(&text);
        let (text, truncated) = sink.finish();
        Ok(Extracted {
            text,
            format,
            truncated,
        })
    }
}

fn fail(message: String) -> ExtractError {
    ExtractError::Failed(format!("extraction service: {message}"))
}

async fn read_capped(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| fail(format!("reading the reply: {e}")))?
    {
        if body.len() + chunk.len() > max {
            return Err(fail(format!("reply is larger than {max} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
