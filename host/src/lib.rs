//! tributary: a WebAssembly plugin host that syncs content sources (Dropbox, Box, anything a
//! plugin can list) into a search index.
//!
//! Every source is a wasm component implementing the `tributary:connector` WIT world (`wit/`).
//! The host loads components at runtime, runs each call in a sandboxed store with memory and CPU
//! limits, and offers them capabilities ([`capabilities`]): allowlisted HTTP, durable key/value
//! state, an index pipeline that downloads and extracts content in the host, and logging.
//! Documents land in a [`sink`]: the embedded tantivy index by default.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use tributary::{Host, HostConfig, SyncKind, SyncOptions};
//! let config = HostConfig::load(std::path::Path::new("tributary.toml"))?;
//! let host = Host::open(config).await?;
//! let report = host.sync(None, "team-dropbox", SyncKind::Full, SyncOptions::default()).await?;
//! println!("{} documents indexed", report.counts.indexed);
//! # Ok(()) }
//! ```

pub mod bindings;
pub mod bundled;
pub mod capabilities;
pub mod config;
pub mod connectors_service;
pub mod cron;
pub mod db;
pub mod demo;
pub mod extraction;
pub mod fsutil;
pub mod host;
pub mod job;
pub mod kv;
pub mod limits;
pub mod net;
pub mod pipeline;
pub mod plugin;
pub mod report;
pub mod rules;
pub mod scaffold;
pub mod schema;
pub mod service;
pub mod sink;
pub mod util;

pub use config::{ConnectorSpec, HostConfig};
pub use host::{Host, SyncOptions};
pub use job::{CountsSnapshot, JobReport, JobStatus, SyncKind};

/// The version of the `tributary:connector` WIT package this host implements.
pub const WIT_VERSION: &str = "0.1.0";
