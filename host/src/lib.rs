//! tributary-host: the engine of tributary, a WebAssembly plugin host that syncs content sources
//! (Dropbox, Box, anything a plugin can list) into a search index.
//!
//! Every source is a wasm component implementing the `tributary:connector` WIT world (`wit/`).
//! The host loads components at runtime, runs each call in a sandboxed store with memory and CPU
//! limits, and offers them capabilities ([`capabilities`]): allowlisted HTTP, durable key/value
//! state, an index pipeline that downloads and extracts content in the host, and logging.
//! Documents land in a [`sink`]: the embedded tantivy index by default.
//!
//! This crate is a library only: the `tributary` binary (command line, progress line, demo,
//! plugin scaffolding) is the `tributary` package in `cli/`.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use tributary_host::{Host, HostConfig, SyncKind, SyncOptions};
//! let config = HostConfig::load(std::path::Path::new("tributary.toml"))?;
//! let host = Host::open(config).await?;
//! let report = host.sync(None, "team-dropbox", SyncKind::Full, SyncOptions::default()).await?;
//! println!("{} documents indexed", report.counts.indexed);
//! # Ok(()) }
//! ```

// Module docs name the private steps they describe (a pipeline's stages, a module's helpers):
// they are written for the people working on the host, who read them with
// `cargo doc --document-private-items`.
#![allow(rustdoc::private_intra_doc_links)]

pub mod allocator;
pub mod atomic_file;
pub mod bindings;
pub mod bundled;
pub mod capabilities;
pub mod clock;
pub mod config;
pub mod connector;
pub mod db;
pub mod elastic_compat;
pub mod extraction;
pub mod host;
pub mod job;
pub mod kv;
pub mod limits;
pub mod net;
pub mod pipeline;
pub mod plugin;
pub mod serve;
pub mod sink;
pub mod text;

pub use config::HostConfig;
pub use connector::ConnectorSpec;
pub use host::{Host, OpenOptions, PluginLoading, SyncOptions};
pub use job::{CountsSnapshot, JobReport, JobStatus, SyncKind};

/// The version of the `tributary:connector` WIT package this host implements.
pub const WIT_VERSION: &str = "0.1.0";
