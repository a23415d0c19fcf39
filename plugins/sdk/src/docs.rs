//! Building documents and handing them to the host's index in batches.

use serde_json::{Map, Value};

use crate::Result;
use crate::http::Request;
use crate::tributary::connector::index::{self, Content, ContentRequest};

/// One document under construction.
#[derive(Clone, Debug)]
pub struct Document {
    id: String,
    timestamp: Option<String>,
    fields: Map<String, Value>,
    content: Option<Content>,
}

impl Document {
    /// A document with this id; `id` is also stored as the `id` field.
    pub fn new(id: impl Into<String>) -> Self {
        let id = id.into();
        let mut fields = Map::new();
        fields.insert("id".into(), Value::String(id.clone()));
        Self {
            id,
            timestamp: None,
            fields,
            content: None,
        }
    }

    /// The document id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The version marker, also stored as the `_timestamp` field.
    pub fn timestamp(mut self, timestamp: impl Into<String>) -> Self {
        let ts = timestamp.into();
        self.fields
            .insert("_timestamp".into(), Value::String(ts.clone()));
        self.timestamp = Some(ts);
        self
    }

    /// Sets a field (anything serialisable to JSON).
    pub fn field(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(name.to_string(), value.into());
        self
    }

    /// Sets a field only when `value` is `Some`.
    pub fn field_opt(self, name: &str, value: Option<impl Into<Value>>) -> Self {
        match value {
            Some(v) => self.field(name, v),
            None => self,
        }
    }

    /// Copies every key of a JSON object into the fields.
    pub fn fields_from(mut self, object: Map<String, Value>) -> Self {
        self.fields.extend(object);
        self
    }

    /// Text content the plugin already has (indexed as `body`).
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.content = Some(Content::Text(text.into()));
        self
    }

    /// Content the host downloads with `request`, extracts and indexes as `body`.
    pub fn fetch(mut self, request: &Request, fetch: Fetch) -> Self {
        self.content = Some(Content::Fetch(fetch.content_request(request)));
        self
    }

    /// The WIT form.
    pub fn into_wit(self) -> index::Document {
        index::Document {
            id: self.id,
            timestamp: self.timestamp,
            fields: Value::Object(self.fields).to_string(),
            content: self.content,
        }
    }
}

/// How the host should treat a content download.
#[derive(Clone, Debug)]
pub struct Fetch {
    pub file_name: String,
    pub mime_type: Option<String>,
    pub size: Option<u64>,
    pub max_bytes: u64,
    pub retries: u32,
}

impl Fetch {
    /// A download of `file_name`, declared `size` bytes, refused above `max_bytes`.
    pub fn new(file_name: impl Into<String>, size: Option<u64>, max_bytes: u64) -> Self {
        Self {
            file_name: file_name.into(),
            mime_type: None,
            size,
            max_bytes,
            retries: 3,
        }
    }

    /// Retries for this download.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// The WIT content request downloading `request` with these settings.
    pub fn content_request(self, request: &Request) -> ContentRequest {
        ContentRequest {
            request: request.to_wit(),
            file_name: self.file_name,
            mime_type: self.mime_type,
            size: self.size,
            max_bytes: self.max_bytes,
            retries: self.retries,
        }
    }
}

/// Buffers documents and upserts them in batches, so a listing of 100 000 entries costs a few
/// thousand host calls rather than 100 000.
#[derive(Debug)]
pub struct Emitter {
    batch: Vec<index::Document>,
    batch_size: usize,
    emitted: u64,
    acl: bool,
}

impl Default for Emitter {
    fn default() -> Self {
        Self::new(100)
    }
}

impl Emitter {
    /// An emitter for the connector's index.
    pub fn new(batch_size: usize) -> Self {
        Self {
            batch: Vec::new(),
            batch_size: batch_size.max(1),
            emitted: 0,
            acl: false,
        }
    }

    /// An emitter for the connector's access-control index.
    pub fn access_control(batch_size: usize) -> Self {
        Self {
            acl: true,
            ..Self::new(batch_size)
        }
    }

    /// Queues a document, sending the batch when full.
    pub fn emit(&mut self, document: Document) -> Result<()> {
        self.batch.push(document.into_wit());
        self.emitted += 1;
        if self.batch.len() >= self.batch_size {
            self.flush()?;
        }
        Ok(())
    }

    /// Sends what is queued.
    pub fn flush(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        if self.acl {
            index::upsert_access_control(&batch)?;
        } else {
            index::upsert(&batch)?;
        }
        Ok(())
    }

    /// Documents emitted so far.
    pub fn emitted(&self) -> u64 {
        self.emitted
    }
}

/// Deletes documents by id (flushes nothing; call after the emitter's flush when order matters).
pub fn delete(ids: &[String]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    Ok(index::delete(ids)?)
}

/// Sets how many content downloads the host runs at once.
pub fn set_download_concurrency(limit: u32) {
    index::set_download_concurrency(limit);
}
