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
use futures::future::BoxFuture;

use super::retry::{RetryPolicy, Verdict, judge, retry_after};
use super::{Body, Egress, Streamed};
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
    download_with(egress, request, max_bytes, policy, |body| {
        Box::pin(body.bytes())
    })
    .await
}

/// Downloads `request`'s body (at most `max_bytes`) into `read`, retrying by `policy`: `read`
/// gets the body of a successful answer to consume piece by piece (an attempt that fails while
/// reading starts over with a new call of `read`).
pub async fn download_with<'a, T>(
    egress: &Egress,
    request: &ContentRequest,
    max_bytes: u64,
    policy: &RetryPolicy,
    read: impl Fn(Body) -> BoxFuture<'a, Result<T, HttpError>>,
) -> Result<T, DownloadError> {
    let config = egress.engine().config();
    let deadline = Duration::from_secs(config.max_timeout_seconds.saturating_mul(2).max(1));
    // Guest-controlled: bounded.
    let retries = request.retries.min(MAX_RETRIES);
    let attempt = || once(egress, request, max_bytes, &read);
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

async fn once<'a, T>(
    egress: &Egress,
    request: &ContentRequest,
    max_bytes: u64,
    read: &impl Fn(Body) -> BoxFuture<'a, Result<T, HttpError>>,
) -> Result<T, Attempt> {
    let Streamed {
        status,
        headers,
        body,
    } = egress
        .open(&request.request, max_bytes)
        .await
        .map_err(failed)?;
    match judge(status) {
        Verdict::Done => read(body).await.map_err(failed),
        Verdict::RetryLater => Err(Attempt::Retry {
            status: Some(status),
            message: if status == 202 {
                "HTTP 202: the file is not ready yet".into()
            } else {
                format!("HTTP {status}")
            },
            after: retry_after(&headers, SystemTime::now()),
        }),
        Verdict::Fail => {
            let start = body.prefix(200).await;
            Err(Attempt::Final(DownloadError::Failed {
                status: Some(status),
                message: format!(
                    "download answered HTTP {status}: {}",
                    String::from_utf8_lossy(&start)
                ),
            }))
        }
    }
}

/// What an HTTP error means for the download: over the limit is skipped on purpose, a timeout or
/// a broken connection is worth another attempt, the rest is final.
fn failed(error: HttpError) -> Attempt {
    match error {
        HttpError::TooLarge(limit) => {
            Attempt::Final(DownloadError::Skipped(format!("larger than {limit} bytes")))
        }
        HttpError::Timeout(m) | HttpError::Connection(m) => Attempt::Retry {
            status: None,
            message: m,
            after: None,
        },
        HttpError::Denied(m) | HttpError::InvalidRequest(m) | HttpError::Refused(m) => {
            Attempt::Final(DownloadError::Failed {
                status: None,
                message: m,
            })
        }
    }
}
