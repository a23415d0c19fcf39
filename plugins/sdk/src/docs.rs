//! Building documents: fields, the version marker the host compares, and content (text the
//! plugin has, or a download the host performs). [`crate::outbox::Outbox`] hands them to the
//! host's index.

use serde_json::{Map, Value};

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

    /// A document whose fields do not repeat its id (Elastic's access-control documents carry
    /// it only as the document id).
    pub fn bare(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            timestamp: None,
            fields: Map::new(),
            content: None,
        }
    }

    /// The document id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The version marker, if any.
    pub fn version_marker(&self) -> Option<&str> {
        self.timestamp.as_deref()
    }

    /// The fields as the JSON object the host receives (e.g. to digest them into a version).
    pub fn fields_json(&self) -> String {
        serde_json::to_string(&self.fields).unwrap_or_default()
    }

    /// The version marker the host compares to skip unchanged documents (downloads included),
    /// without a `_timestamp` field: for versions that are not a time, e.g. a digest.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.timestamp = Some(version.into());
        self
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
    /// The file name, which picks the extractor (by extension).
    pub file_name: String,
    /// The MIME type when the source states one.
    pub mime_type: Option<String>,
    /// The size the source declares, if any.
    pub size: Option<u64>,
    /// Downloads above this many bytes are refused.
    pub max_bytes: u64,
    /// Retries of this download.
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

/// Sets how many content downloads the host runs at once.
pub fn set_download_concurrency(limit: u32) {
    index::set_download_concurrency(limit);
}
