//! Guest SDK for tributary connector plugins.
//!
//! It owns the generated bindings of the `tributary:connector` world (the only `generate!` on the
//! guest side) and the pieces every source needs once: typed configuration ([`config`]), an HTTP
//! client with retries, `Retry-After`, token refresh and JSON helpers ([`http`]), document
//! building ([`docs`]), batched emission with checkpoints that re-sign expired downloads
//! ([`outbox`]), durable state ([`state`], [`checkpoint`]), and logging ([`log`]). A plugin
//! implements [`Plugin`] (the exported interface) and registers itself with
//! [`export_connector!`]:
//!
//! ```ignore
//! struct Feed;
//! impl tributary_sdk::Plugin for Feed { /* manifest, full_sync, … */ }
//! tributary_sdk::export_connector!(Feed);
//! ```

#![warn(missing_docs)]

pub mod bindings;
pub use bindings::{export_connector, exports, tributary};

pub mod batch;
pub mod budget;
pub mod checkpoint;
pub mod config;
pub mod docs;
pub mod extract;
pub mod http;
pub mod log;
pub mod oauth;
pub mod outbox;
pub mod page;
pub mod schema;
pub mod seen;
pub mod state;

pub use exports::tributary::connector::plugin::{
    ConfigField, Features, FieldDependency, FieldKind, Guest as Plugin, PluginManifest as Manifest,
    RuleError, SelectOption, SyncRequest,
};
pub use tributary::connector::types::{Error, Json};

/// Result type of plugin code.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A human-readable description (`"not found: /Reports"`).
    pub fn describe(&self) -> String {
        let (kind, message) = match self {
            Error::Auth(m) => ("authentication failed", m),
            Error::NotFound(m) => ("not found", m),
            Error::RateLimited(m) => ("rate limited", m),
            Error::Config(m) => ("invalid configuration", m),
            Error::Transient(m) => ("temporary failure", m),
            Error::Protocol(m) => ("unexpected response", m),
            Error::Host(m) => ("refused by host", m),
            Error::Other(m) => ("error", m),
        };
        format!("{kind}: {message}")
    }

    /// Prefixes the message with `context` (`"listing /Reports: …"`), keeping the kind.
    pub fn context(self, context: impl std::fmt::Display) -> Self {
        let wrap = |m: String| format!("{context}: {m}");
        match self {
            Error::Auth(m) => Error::Auth(wrap(m)),
            Error::NotFound(m) => Error::NotFound(wrap(m)),
            Error::RateLimited(m) => Error::RateLimited(wrap(m)),
            Error::Config(m) => Error::Config(wrap(m)),
            Error::Transient(m) => Error::Transient(wrap(m)),
            Error::Protocol(m) => Error::Protocol(wrap(m)),
            Error::Host(m) => Error::Host(wrap(m)),
            Error::Other(m) => Error::Other(wrap(m)),
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Error::Protocol(format!("invalid JSON: {err}"))
    }
}

impl From<tributary::connector::index::IndexError> for Error {
    fn from(err: tributary::connector::index::IndexError) -> Self {
        use tributary::connector::index::IndexError;
        match err {
            IndexError::InvalidDocument(m) => Error::Other(format!("invalid document: {m}")),
            IndexError::QuotaExceeded(m) => Error::Host(format!("index quota exceeded: {m}")),
            IndexError::Sink(m) => Error::Host(format!("index sink failed: {m}")),
            IndexError::Cancelled => Error::Host("job cancelled".into()),
        }
    }
}

impl From<tributary::connector::storage::StorageError> for Error {
    fn from(err: tributary::connector::storage::StorageError) -> Self {
        use tributary::connector::storage::StorageError;
        match err {
            StorageError::InvalidKey(m) => Error::Other(format!("invalid storage key: {m}")),
            StorageError::TooLarge(m) => Error::Host(format!("storage value too large: {m}")),
            StorageError::QuotaExceeded(m) => Error::Host(format!("storage quota exceeded: {m}")),
            StorageError::Unavailable(m) => Error::Host(format!("storage unavailable: {m}")),
        }
    }
}
