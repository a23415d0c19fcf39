//! Content downloads for the host (the pipeline's fetches, `extract.fetch-text`), retried by the
//! one [`RetryPolicy`] under one overall deadline.
//!
//! Invariants:
//! - the retry count, `Retry-After` and per-request time limit come from the plugin and the
//!   server, and a download can outlive the plugin's call, so the whole download — retries and
//!   waits included — finishes within twice the longest time limit of one request;
//! - a body over the size limit is "skipped" (on purpose), never "failed".

use std::time::{Duration, SystemTime};

use backon::Retryable;
use bytes::Bytes;

use super::retry::{RetryPolicy, Verdict, judge, retry_after};
use super::{Egress, Fetched};
use crate::bindings::http::HttpError;
use crate::bindings::index::ContentRequest;

/// Most retries a content request may ask for.
const MAX_RETRIES: u32 = 10;

/// Why a download produced no body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownloadError {
    /// Not fetched on purpose (too large).
    Skipped(String),
    /// Failed after its retries.
    Failed {
        /// The last HTTP status, if there was an answer.
        status: Option<u16>,
        /// What happened.
        message: String,
    },
}

/// One attempt's failure: worth another attempt (after the server's wait, if it named one), or final.
enum Attempt {
    Retry {
        status: Option<u16>,
        message: String,
        after: Option<Duration>,
    },
    Final(DownloadError),
}

/// Downloads `request`'s body (at most `max_bytes`), retrying by `policy`.
pub async fn download(
    egress: &Egress,
    request: &ContentRequest,
    max_bytes: u64,
    policy: &RetryPolicy,
) -> Result<Bytes, DownloadError> {
    let config = egress.engine().config();
    let deadline = Duration::from_secs(config.max_timeout_seconds.saturating_mul(2).max(1));
    // Guest-controlled: bounded.
    let retries = request.retries.min(MAX_RETRIES);
    let attempt = || once(egress, request, max_bytes);
    let retried = attempt
        .retry(policy.backoff(retries as usize))
        .sleep(tokio::time::sleep)
        .when(|e| matches!(e, Attempt::Retry { .. }))
        .adjust(|e, wait| match e {
            Attempt::Retry {
                after: Some(after), ..
            } => wait.map(|_| *after),
            _ => wait,
        });
    match tokio::time::timeout(deadline, retried).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(Attempt::Final(e))) => Err(e),
        Ok(Err(Attempt::Retry {
            status, message, ..
        })) => Err(DownloadError::Failed {
            status,
            message: format!(
                "download failed after {} attempt(s): {message}",
                retries + 1
            ),
        }),
        Err(_) => Err(DownloadError::Failed {
            status: None,
            message: format!(
                "download did not finish within {} s (retries included)",
                deadline.as_secs()
            ),
        }),
    }
}

async fn once(egress: &Egress, request: &ContentRequest, max_bytes: u64) -> Result<Bytes, Attempt> {
    match egress.send(&request.request, max_bytes).await {
        Ok(Fetched {
            status,
            headers,
            body,
        }) => match judge(status) {
            Verdict::Done => Ok(body),
            Verdict::RetryLater => Err(Attempt::Retry {
                status: Some(status),
                message: if status == 202 {
                    "HTTP 202: the file is not ready yet".into()
                } else {
                    format!("HTTP {status}")
                },
                after: retry_after(&headers, SystemTime::now()),
            }),
            Verdict::Fail => Err(Attempt::Final(DownloadError::Failed {
                status: Some(status),
                message: format!(
                    "download answered HTTP {status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ),
            })),
        },
        Err(HttpError::TooLarge(limit)) => Err(Attempt::Final(DownloadError::Skipped(format!(
            "larger than {limit} bytes"
        )))),
        Err(HttpError::Timeout(m)) | Err(HttpError::Connection(m)) => Err(Attempt::Retry {
            status: None,
            message: m,
            after: None,
        }),
        Err(HttpError::Denied(m))
        | Err(HttpError::InvalidRequest(m))
        | Err(HttpError::Refused(m)) => Err(Attempt::Final(DownloadError::Failed {
            status: None,
            message: m,
        })),
    }
}
