//! Documents on their way to the sink: a batch for the main index and one for the
//! access-control index, each written when full, before a delete, at a checkpoint and at the end.
//!
//! Invariants: operations keep their order — a delete first drops queued upserts of the same ids
//! and writes out the rest, so nothing queued before a delete can land after it; counters count
//! what the sink accepted; a batch is full at `max_documents` documents *or* `max_bytes` bytes
//! (ids, versions, fields and bodies), so what a job holds in batches is bounded in bytes
//! whatever the size of its documents (one document over the budget is a batch of its own).

use std::sync::Arc;

use crate::job::Counters;
use crate::sink::{IndexRef, Sink, SinkDocument};

/// The batches of one job.
pub(crate) struct Batcher {
    sink: Arc<dyn Sink>,
    index: IndexRef,
    connector: String,
    counters: Arc<Counters>,
    max_documents: usize,
    max_bytes: usize,
    docs: Vec<SinkDocument>,
    docs_bytes: usize,
    acl: Vec<SinkDocument>,
    acl_bytes: usize,
}

/// Bytes a queued document holds (an estimate of its heap size: strings, not their capacity).
pub(crate) fn weight(doc: &SinkDocument) -> usize {
    fn json(v: &serde_json::Value) -> usize {
        match v {
            serde_json::Value::String(s) => s.len() + 8,
            serde_json::Value::Array(a) => a.iter().map(json).sum::<usize>() + 8,
            serde_json::Value::Object(m) => {
                m.iter().map(|(k, v)| k.len() + json(v)).sum::<usize>() + 8
            }
            _ => 8,
        }
    }
    doc.id.len()
        + doc.connector.len()
        + doc.version.as_ref().map_or(0, String::len)
        + doc.body.as_ref().map_or(0, String::len)
        + doc
            .fields
            .iter()
            .map(|(k, v)| k.len() + json(v))
            .sum::<usize>()
}

impl Batcher {
    pub(crate) fn new(
        sink: Arc<dyn Sink>,
        index: IndexRef,
        connector: String,
        counters: Arc<Counters>,
        max_documents: usize,
        max_bytes: usize,
    ) -> Self {
        Self {
            sink,
            index,
            connector,
            counters,
            max_documents: max_documents.max(1),
            max_bytes: max_bytes.max(1),
            docs: Vec::new(),
            docs_bytes: 0,
            acl: Vec::new(),
            acl_bytes: 0,
        }
    }

    /// The connector every document is written for.
    pub(crate) fn connector(&self) -> &str {
        &self.connector
    }

    /// Queues a main-index document.
    pub(crate) fn push(&mut self, doc: SinkDocument) {
        self.docs_bytes += weight(&doc);
        self.docs.push(doc);
    }

    /// Queues an access-control document.
    pub(crate) fn push_acl(&mut self, doc: SinkDocument) {
        self.acl_bytes += weight(&doc);
        self.acl.push(doc);
    }

    /// Writes out whichever batch is full (by count or by bytes).
    pub(crate) async fn flush_if_full(&mut self) -> anyhow::Result<()> {
        if self.docs.len() >= self.max_documents || self.docs_bytes >= self.max_bytes {
            self.flush().await?;
        }
        if self.acl.len() >= self.max_documents || self.acl_bytes >= self.max_bytes {
            self.flush_acl().await?;
        }
        Ok(())
    }

    /// Writes out the main-index batch.
    pub(crate) async fn flush(&mut self) -> anyhow::Result<()> {
        let batch = std::mem::take(&mut self.docs);
        self.docs_bytes = 0;
        if batch.is_empty() {
            return Ok(());
        }
        let n = batch.len() as u64;
        self.sink.upsert(self.index.clone(), batch).await?;
        Counters::add(&self.counters.indexed, n);
        Ok(())
    }

    /// Writes out the access-control batch.
    pub(crate) async fn flush_acl(&mut self) -> anyhow::Result<()> {
        let batch = std::mem::take(&mut self.acl);
        self.acl_bytes = 0;
        if batch.is_empty() {
            return Ok(());
        }
        let n = batch.len() as u64;
        self.sink.upsert(self.index.acl(), batch).await?;
        Counters::add(&self.counters.access_control, n);
        Ok(())
    }

    /// Writes out both batches.
    pub(crate) async fn flush_all(&mut self) -> anyhow::Result<()> {
        self.flush().await?;
        self.flush_acl().await
    }

    /// Deletes main-index documents, after the upserts queued before them.
    pub(crate) async fn delete(&mut self, ids: Vec<String>) -> anyhow::Result<()> {
        self.docs.retain(|d| !ids.contains(&d.id));
        // `flush` writes what is left and resets the byte count.
        self.flush().await?;
        let n = ids.len() as u64;
        self.sink
            .delete(self.index.clone(), self.connector.clone(), ids)
            .await?;
        Counters::add(&self.counters.deleted, n);
        Ok(())
    }

    /// Deletes access-control documents, after those queued before them.
    pub(crate) async fn delete_acl(&mut self, ids: Vec<String>) -> anyhow::Result<()> {
        self.acl.retain(|d| !ids.contains(&d.id));
        // `flush_acl` writes what is left and resets the byte count.
        self.flush_acl().await?;
        self.sink
            .delete(self.index.acl(), self.connector.clone(), ids)
            .await
    }

    /// Deletes what a full (or access-control) sync did not produce, in chunks; only main-index
    /// deletions are counted.
    pub(crate) async fn delete_vanished(
        &mut self,
        acl: bool,
        ids: Vec<String>,
    ) -> anyhow::Result<()> {
        let target = if acl {
            self.index.acl()
        } else {
            self.index.clone()
        };
        for chunk in ids.chunks(1000) {
            self.sink
                .delete(target.clone(), self.connector.clone(), chunk.to_vec())
                .await?;
            if !acl {
                Counters::add(&self.counters.deleted, chunk.len() as u64);
            }
        }
        Ok(())
    }

    /// Makes everything written so far durable (both indexes).
    pub(crate) async fn commit(&mut self) -> anyhow::Result<()> {
        self.sink.commit(self.index.clone()).await?;
        self.sink.commit(self.index.acl()).await
    }
}
