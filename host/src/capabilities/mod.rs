//! Host capabilities: what a plugin can ask the host to do.
//!
//! Each module owns one WIT interface end to end: its configuration and limits, a context that
//! lives in the plugin's store, the generated `Host` trait implemented on that context, and an
//! `add_to_linker` that wires it up. Host functions stay short and hand off to the shared engine
//! of the capability (the HTTP client, the SQLite store, the job pipeline, the extractor).

pub mod extract;
pub mod http;
pub mod index;
pub mod log;
pub mod storage;
