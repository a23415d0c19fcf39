//! The one way to prepare a plugin instance: capability contexts, a sandboxed store, and the
//! component instantiated in it; then the export calls made on it.
//!
//! Invariants:
//! - every instance — a connector's job, a manifest read while loading, `plugin check` — is
//!   built by [`Engines::instantiate`], so all get the same capabilities and sandbox;
//! - a fresh instance may reach no host at all; [`Instance::allow_hosts`] installs the allowlist
//!   the plugin's `allowed-hosts` answer makes, once, into the instance's one [`Egress`], which
//!   its `http` and `extract` capabilities and its job's downloads share;
//! - every export call runs under the instance's wall-clock limit, and its outcome is settled
//!   into a typed [`JobError`]: a trap is `trap`, a breached sandbox limit `limit`, a tenant
//!   quota refusal `quota` (recognised by type, never by message text), a timeout `timeout`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use wasmtime::Store;

use super::registry::check_manifest;
use super::runtime::{Capabilities, Runtime, StoreState};
use crate::bindings::plugin::PluginManifest;
use crate::bindings::types::Error as PluginError;
use crate::bindings::{Connector, ConnectorPre};
use crate::capabilities::extract::ExtractCtx;
use crate::capabilities::http::HttpCtx;
use crate::capabilities::index::IndexCtx;
use crate::capabilities::log::LogCtx;
use crate::capabilities::storage::StorageCtx;
use crate::db::Db;
use crate::extraction::{ExtractConfig, Extraction, Extractors};
use crate::job::{JobError, JobErrorKind};
use crate::kv::{ConnectorState, Namespace, StorageLimits};
use crate::limits::SandboxLimits;
use crate::net::{Allowlist, Egress, HttpConfig, HttpEngine, RetryPolicy};
use crate::pipeline::{DownloadBudget, PipelineConfig};

/// Time a manifest read may take.
const MANIFEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The engines every instance of a host shares, built once.
#[derive(Clone)]
pub struct Engines {
    /// The wasm runtime.
    pub runtime: Arc<Runtime>,
    /// The HTTP client.
    pub http: Arc<HttpEngine>,
    /// Text extraction.
    pub extractors: Arc<Extractors>,
    /// Storage limits when a job names none.
    pub storage: StorageLimits,
    /// Retry policy of content downloads.
    pub retry: RetryPolicy,
    /// Download bytes in flight, all jobs together.
    pub download_budget: DownloadBudget,
}

impl Engines {
    /// Builds the HTTP and extraction engines from operator settings.
    pub fn new(
        runtime: Arc<Runtime>,
        http: &HttpConfig,
        extract: &ExtractConfig,
        storage: StorageLimits,
        retry: RetryPolicy,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            runtime,
            http: Arc::new(HttpEngine::new(http.clone())?),
            extractors: Arc::new(Extractors::new(extract)?),
            storage,
            retry,
            download_budget: DownloadBudget::new(
                PipelineConfig::default().max_host_download_bytes_in_flight,
            ),
        })
    }

    /// With a host-wide budget of `bytes` of downloads in flight.
    pub fn with_download_budget(mut self, bytes: u64) -> Self {
        self.download_budget = DownloadBudget::new(bytes);
        self
    }

    /// Instantiates `pre` in a fresh sandbox set up by `setup`, reaching no host yet.
    pub async fn instantiate(
        &self,
        pre: &ConnectorPre<StoreState>,
        setup: InstanceSetup<'_>,
    ) -> anyhow::Result<Instance> {
        let egress = Egress::new(self.http.clone());
        let storage = setup.storage.unwrap_or(&self.storage).clone();
        let caps = Capabilities {
            log: LogCtx::new(&setup.label),
            http: HttpCtx::new(egress.clone(), &setup.label),
            storage: StorageCtx::new(ConnectorState::new(
                setup.db.clone(),
                setup.namespace,
                storage,
            )),
            index: IndexCtx::default(),
            extract: ExtractCtx::new(
                Extraction::new(self.extractors.clone(), setup.use_service),
                egress.clone(),
                self.retry,
            ),
        };
        let limits = setup.limits.unwrap_or(self.runtime.limits());
        let mut store = self.runtime.store(caps, limits);
        let bindings = pre.instantiate_async(&mut store).await.map_err(|e| {
            anyhow::anyhow!(
                "instantiating {}: {}",
                setup.label,
                describe_trap(&store, e)
            )
        })?;
        Ok(Instance {
            store,
            bindings,
            label: setup.label,
            wall: limits.wall(),
            egress,
        })
    }

    /// Instantiates `pre` in an inert sandbox: no hosts, throwaway storage, no job.
    pub async fn inert(
        &self,
        pre: &ConnectorPre<StoreState>,
        label: &str,
    ) -> anyhow::Result<Instance> {
        let scratch = Db::in_memory()?;
        let setup = InstanceSetup {
            label: label.to_string(),
            namespace: Namespace {
                tenant: "_inspect".into(),
                connector: "_inspect".into(),
            },
            db: &scratch,
            use_service: false,
            storage: None,
            limits: None,
        };
        self.instantiate(pre, setup).await
    }
}

/// What one instance is for.
pub struct InstanceSetup<'a> {
    /// Names the plugin (and connector) in logs and errors.
    pub label: String,
    /// Whose state its `storage` reads and writes.
    pub namespace: Namespace,
    /// The database holding that state.
    pub db: &'a Db,
    /// Route extraction to the external service.
    pub use_service: bool,
    /// Storage quotas instead of the host's.
    pub storage: Option<&'a StorageLimits>,
    /// Sandbox limits instead of the host's.
    pub limits: Option<&'a SandboxLimits>,
}

/// A plugin instantiated in its own store.
pub struct Instance {
    /// The store (limits, capabilities).
    pub store: Store<StoreState>,
    /// Typed exports.
    pub bindings: Connector,
    /// Names the plugin in errors.
    pub label: String,
    /// Wall-clock limit per export call.
    pub wall: Duration,
    /// The instance's way out, shared by its capabilities and its job's downloads.
    pub egress: Egress,
}

/// Calls an export of an [`Instance`] under its wall-clock limit and settles the outcome into
/// `Result<_, JobError>` (traps and limit breaches become typed job errors).
#[macro_export]
#[doc(hidden)]
macro_rules! call_export {
    ($inst:expr, $name:literal, $method:ident ( $($arg:expr),* )) => {{
        let inst: &mut $crate::plugin::Instance = $inst;
        let outcome = tokio::time::timeout(
            inst.wall,
            inst.bindings.tributary_connector_plugin().$method(&mut inst.store $(, $arg)*),
        )
        .await;
        inst.settle($name, outcome)
    }};
}

impl Instance {
    /// Reads and checks the plugin's manifest.
    pub async fn manifest(&mut self) -> anyhow::Result<PluginManifest> {
        let label = self.label.clone();
        let calls = self.bindings.tributary_connector_plugin();
        let manifest = tokio::time::timeout(MANIFEST_TIMEOUT, calls.call_manifest(&mut self.store))
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "{label}: `manifest` did not return within {} s",
                    MANIFEST_TIMEOUT.as_secs()
                )
            })?
            .map_err(|e| {
                anyhow::anyhow!(
                    "{label}: `manifest` failed: {}",
                    describe_trap(&self.store, e)
                )
            })?;
        check_manifest(&manifest).with_context(|| format!("{label}: invalid manifest"))?;
        Ok(manifest)
    }

    /// Asks the plugin which hosts `config` needs and installs that allowlist.
    pub async fn allow_hosts(&mut self, config: &str) -> Result<Allowlist, JobError> {
        let hosts = crate::call_export!(
            self,
            "allowed-hosts",
            call_allowed_hosts(&config.to_string())
        )?
        .map_err(plugin_error)?;
        let allowlist = Allowlist::parse(&hosts).map_err(|e| {
            JobError::new(
                JobErrorKind::Config,
                format!("the plugin's allowed hosts are invalid: {e}"),
            )
        })?;
        tracing::debug!(plugin = %self.label, hosts = ?allowlist.hosts(), "allowlist installed");
        self.egress.install(allowlist.clone());
        Ok(allowlist)
    }

    /// Turns the outcome of an export call into a value or a typed job error.
    pub fn settle<R>(
        &self,
        export: &str,
        outcome: Result<wasmtime::Result<R>, tokio::time::error::Elapsed>,
    ) -> Result<R, JobError> {
        let label = &self.label;
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(trap)) => {
                let data = self.store.data();
                // By type, not by text: the message also carries the plugin's stderr.
                let kind = if data.memory.breach.is_some() || data.cpu.breach.is_some() {
                    JobErrorKind::Limit
                } else if trap
                    .downcast_ref::<crate::sink::quota::QuotaExceeded>()
                    .is_some()
                {
                    JobErrorKind::Quota
                } else {
                    JobErrorKind::Trap
                };
                let message = describe_trap(&self.store, trap);
                Err(JobError::new(
                    kind,
                    format!("{label} `{export}`: {message}"),
                ))
            }
            Err(_) => Err(JobError::new(
                JobErrorKind::Timeout,
                format!(
                    "{label} `{export}` did not finish within {} s",
                    self.wall.as_secs()
                ),
            )),
        }
    }
}

/// A plugin's own typed error as a job error.
pub fn plugin_error(e: PluginError) -> JobError {
    let (kind, message) = match e {
        PluginError::Auth(m) => (JobErrorKind::Auth, m),
        PluginError::NotFound(m) => (JobErrorKind::NotFound, m),
        PluginError::RateLimited(m) => (JobErrorKind::RateLimited, m),
        PluginError::Config(m) => (JobErrorKind::Config, m),
        PluginError::Transient(m) => (JobErrorKind::Transient, m),
        PluginError::Protocol(m) => (JobErrorKind::Protocol, m),
        PluginError::Host(m) => (JobErrorKind::Host, m),
        PluginError::Other(m) => (JobErrorKind::Other, m),
    };
    JobError::new(kind, message)
}

/// A trap in words: the limit it breached if any, else the trap and the plugin's last stderr.
pub fn describe_trap(store: &Store<StoreState>, err: wasmtime::Error) -> String {
    let data = store.data();
    if let Some(breach) = data.memory.breach.as_ref().or(data.cpu.breach.as_ref()) {
        return breach.to_string();
    }
    let mut text = format!("{err:#}");
    if let Some(trap) = err.downcast_ref::<wasmtime::Trap>() {
        text = format!("wasm trap: {trap}");
    }
    let stderr = data.stderr_tail();
    if !stderr.is_empty() {
        text.push_str(&format!(
            " (plugin stderr: {})",
            crate::text::truncate(&stderr, 1000)
        ));
    }
    text
}
