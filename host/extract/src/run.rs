//! Running extractions: the synchronous entry points with panic containment, and the
//! async ones that move the work off the async runtime under a time limit and a
//! concurrency bound.
//!
//! Each async extraction runs on a dedicated, named OS thread (`tributary-extract`)
//! with a 16 MiB stack rather than on tokio's blocking pool: the work is still off the
//! async worker threads, but the stack size is ours to choose (third-party parsers
//! recurse, and a stack overflow aborts the process — it cannot be caught) instead of
//! whatever the embedding runtime configured. The result comes back over a oneshot
//! channel.
//!
//! **Time limit.** The async call returns [`ExtractError::TimedOut`] when the limit
//! passes. A thread cannot be killed, so the abandoned work goes on until the parser
//! returns; it stays bounded by the size limits, loops this crate owns stop at the
//! same deadline (checked cooperatively), and with [`Extractor`] the abandoned thread
//! keeps its concurrency permit until it really ends, so runaway parses cannot pile
//! up beyond `max_parallel`.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::detect::{Detection, Format, detect_inner};
use crate::error::{ExtractError, Result};
use crate::formats;
use crate::limits::{Budget, Limits};
use crate::text::Sink;

/// Text extracted from one body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// The text, whitespace-normalised (see the crate docs), at most
    /// `max_output_bytes` long.
    pub text: String,
    /// The format the body was read as.
    pub format: Format,
    /// `true` when the text was cut at `max_output_bytes`.
    pub truncated: bool,
}

/// Extract text from a body, synchronously, on the calling thread.
///
/// Detects the format ([`crate::detect`] with the whole body as `head`), refuses bodies
/// over `limits.max_input_bytes` before looking at them, and contains parser panics:
/// a panic becomes [`ExtractError::Failed`] ("… parser panicked: …"). The time limit
/// is enforced cooperatively here (loops this crate owns check the deadline); use
/// [`Extractor`] or [`extract_blocking`] for a hard limit.
pub fn extract(
    bytes: &[u8],
    file_name: &str,
    mime: Option<&str>,
    limits: &Limits,
) -> Result<Extracted> {
    check_size(bytes, limits)?;
    match detect_inner(file_name, mime, bytes) {
        Detection::Format(format) => extract_as(bytes, format, limits),
        Detection::Unsupported(what) => Err(ExtractError::Unsupported(what)),
    }
}

/// Extract text from a body whose format the caller already knows (no detection).
/// Same limits and panic containment as [`extract`].
pub fn extract_as(bytes: &[u8], format: Format, limits: &Limits) -> Result<Extracted> {
    check_size(bytes, limits)?;
    contain(format, || {
        let mut sink = Sink::new(limits.max_output_bytes, Budget::new(limits));
        formats::run(bytes, format, &mut sink)?;
        let (text, truncated) = sink.finish();
        Ok(Extracted {
            text,
            format,
            truncated,
        })
    })
}

fn check_size(bytes: &[u8], limits: &Limits) -> Result<()> {
    let size = bytes.len() as u64;
    if size > limits.max_input_bytes {
        return Err(ExtractError::TooLarge {
            size,
            limit: limits.max_input_bytes,
        });
    }
    Ok(())
}

/// Run `f`, turning a panic into `Failed("<format>: parser panicked: <message>")`.
pub(crate) fn contain<T>(format: Format, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let message = panic_message(payload.as_ref());
            tracing::warn!(%format, %message, "text extraction parser panicked; contained");
            Err(ExtractError::failed(
                format,
                format!("parser panicked: {message}"),
            ))
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// Stack size of extraction threads.
const STACK_SIZE: usize = 16 * 1024 * 1024;

/// Run `job` on a dedicated thread and wait for it at most `timeout`. `permit` (if
/// any) is released when the thread ends, not when the wait gives up.
pub(crate) async fn off_thread<T: Send + 'static>(
    timeout: Duration,
    permit: Option<OwnedSemaphorePermit>,
    job: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("tributary-extract".into())
        .stack_size(STACK_SIZE)
        .spawn(move || {
            let result = job();
            drop(permit);
            let _ = tx.send(result);
        })
        .map_err(|e| ExtractError::Failed(format!("could not start an extraction thread: {e}")))?;
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(ExtractError::Failed(
            "extraction thread ended without a result".into(),
        )),
        Err(_) => Err(ExtractError::TimedOut(timeout)),
    }
}

/// [`extract`] off the async runtime threads, with `limits.timeout` as a hard limit on
/// how long the caller waits. No concurrency bound: prefer [`Extractor`] in the host.
pub async fn extract_blocking(
    bytes: Bytes,
    file_name: String,
    mime: Option<String>,
    limits: Limits,
) -> Result<Extracted> {
    check_size(&bytes, &limits)?;
    let timeout = limits.timeout;
    off_thread(timeout, None, move || {
        extract(&bytes, &file_name, mime.as_deref(), &limits)
    })
    .await
}

/// Runs extractions off the async runtime with a time limit and at most
/// `max_parallel` at once. Cheap to clone (shares the bound).
#[derive(Debug, Clone)]
pub struct Extractor {
    limits: Limits,
    permits: Arc<Semaphore>,
    max_parallel: usize,
}

impl Extractor {
    /// An extractor with these default limits and at most `max_parallel` extractions
    /// running at once (`0` means the number of CPUs).
    pub fn new(limits: Limits, max_parallel: usize) -> Self {
        let max_parallel = if max_parallel == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            max_parallel
        };
        Extractor {
            limits,
            permits: Arc::new(Semaphore::new(max_parallel)),
            max_parallel,
        }
    }

    /// The default limits of this extractor.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The concurrency bound.
    pub fn max_parallel(&self) -> usize {
        self.max_parallel
    }

    /// Extract with this extractor's limits.
    pub async fn extract(
        &self,
        bytes: Bytes,
        file_name: &str,
        mime: Option<&str>,
    ) -> Result<Extracted> {
        self.extract_with(bytes, file_name, mime, &self.limits)
            .await
    }

    /// Extract with per-call limits (e.g. a connector's own `max_input_bytes`). The time
    /// limit counts from when the extraction starts running, not while it waits for a
    /// free slot.
    pub async fn extract_with(
        &self,
        bytes: Bytes,
        file_name: &str,
        mime: Option<&str>,
        limits: &Limits,
    ) -> Result<Extracted> {
        // refuse oversized bodies without waiting for a slot
        check_size(&bytes, limits)?;
        let (file_name, mime, limits) = (
            file_name.to_owned(),
            mime.map(str::to_owned),
            limits.clone(),
        );
        self.run(limits.timeout, move || {
            extract(&bytes, &file_name, mime.as_deref(), &limits)
        })
        .await
    }

    /// Run any extraction job under this extractor's bound and a time limit.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        timeout: Duration,
        job: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| ExtractError::Failed("extractor closed".into()))?;
        off_thread(timeout, Some(permit), job).await
    }

    /// Extractions currently allowed to start (for tests and metrics).
    pub fn available_slots(&self) -> usize {
        self.permits.available_permits()
    }
}
