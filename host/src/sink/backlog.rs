//! The bytes an index writer has been handed and not yet indexed.
//!
//! Invariants: a writer's queue holds at most `limit` bytes of documents plus one document — an
//! upsert stops handing documents over once the queue is [`Backlog::full`] and waits (on its
//! blocking thread, outside the writer lock) until the indexing thread has caught up; a
//! document's bytes are released when the writer drops it (indexed, or thrown
//! away by a rollback), so the count never drifts.
//!
//! Why: tantivy queues up to 10,000 documents ahead of its indexing thread whatever their size,
//! so with 1 MB bodies a writer slower than the downloads holds gigabytes; the pipeline's batches
//! are bounded in bytes, and this keeps that bound past the sink.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tantivy::schema::document::Document;

use super::embedded::IndexDoc;

/// How long an upsert waits for the indexing thread at most: past it (a stalled or failed
/// writer), the writer's own 10,000-document bound still applies and its error surfaces at commit.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// Queued bytes of one writer.
#[derive(Debug)]
pub(crate) struct Backlog {
    bytes: Mutex<usize>,
    drained: Condvar,
    limit: usize,
    /// The most bytes ever queued at once.
    #[cfg(test)]
    most: std::sync::atomic::AtomicUsize,
}

impl Backlog {
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            bytes: Mutex::new(0),
            drained: Condvar::new(),
            limit,
            #[cfg(test)]
            most: Default::default(),
        })
    }

    /// `doc`, counted as `bytes` until the writer drops it.
    pub(crate) fn queue(self: &Arc<Self>, doc: IndexDoc, bytes: usize) -> Queued {
        let mut queued = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
        *queued += bytes;
        #[cfg(test)]
        self.most
            .fetch_max(*queued, std::sync::atomic::Ordering::Relaxed);
        drop(queued);
        Queued(Box::new(Held {
            doc,
            bytes,
            backlog: self.clone(),
        }))
    }

    /// Bytes queued now.
    #[cfg(test)]
    fn queued(&self) -> usize {
        *self.bytes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The most bytes ever queued at once.
    #[cfg(test)]
    pub(crate) fn most(&self) -> usize {
        self.most.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the queue is over its limit: hand nothing more over before [`Backlog::wait`].
    pub(crate) fn full(&self) -> bool {
        *self.bytes.lock().unwrap_or_else(|p| p.into_inner()) > self.limit
    }

    /// Blocks until the queue is back under its limit (or [`MAX_WAIT`] passed).
    pub(crate) fn wait(&self) {
        let deadline = Instant::now() + MAX_WAIT;
        let mut bytes = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
        while *bytes > self.limit {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::warn!(
                    queued = *bytes,
                    "the index writer is not keeping up; going on over the queue limit"
                );
                return;
            }
            bytes = match self.drained.wait_timeout(bytes, left) {
                Ok((guard, _)) => guard,
                Err(p) => p.into_inner().0,
            };
        }
    }

    fn release(&self, n: usize) {
        let mut bytes = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
        *bytes = bytes.saturating_sub(n);
        if *bytes <= self.limit {
            self.drained.notify_all();
        }
    }
}

/// A document in a writer's queue: its bytes count until it is dropped.
///
/// One pointer wide, on purpose: tantivy's writer takes documents through a channel of 10,000
/// slots holding up to four documents each, allocated and touched whole when the writer opens
/// and again at every commit (the old one lives until its indexing thread ends). With the
/// document inline (64 bytes) that was ~3 MB resident per channel; boxed, under 1 MB.
pub(crate) struct Queued(Box<Held>);

struct Held {
    doc: IndexDoc,
    bytes: usize,
    backlog: Arc<Backlog>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.backlog.release(self.bytes);
    }
}

impl Document for Queued {
    type Value<'a> = <IndexDoc as Document>::Value<'a>;
    type FieldsValuesIter<'a> = <IndexDoc as Document>::FieldsValuesIter<'a>;

    fn iter_fields_and_values(&self) -> Self::FieldsValuesIter<'_> {
        self.0.doc.iter_fields_and_values()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_queued_document_is_one_pointer_wide() {
        // What tantivy's writer channel holds per slot (see `Queued`); the inline document
        // made it 64 bytes.
        assert_eq!(
            std::mem::size_of::<Queued>(),
            std::mem::size_of::<usize>(),
            "IndexDoc alone is {} bytes",
            std::mem::size_of::<IndexDoc>()
        );
    }

    #[test]
    fn bytes_count_until_the_document_is_dropped_and_wait_returns_once_under_the_limit() {
        let backlog = Backlog::new(100);
        let a = backlog.queue(IndexDoc::empty(), 80);
        let b = backlog.queue(IndexDoc::empty(), 80);
        assert_eq!(backlog.queued(), 160);
        let waiter = {
            let backlog = backlog.clone();
            std::thread::spawn(move || {
                backlog.wait();
                backlog.queued()
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished(), "over the limit: the upsert waits");
        drop(a);
        assert_eq!(waiter.join().unwrap(), 80);
        drop(b);
        assert_eq!(backlog.queued(), 0);
        backlog.wait();
    }
}
