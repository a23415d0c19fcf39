//! The host: configuration, plugins, capabilities' shared engines, and running jobs.
//!
//! A sync job, start to end: resolve the connector's plugin and check its configuration against
//! the plugin's schema → instantiate the plugin in a fresh sandboxed store → ask it which hosts
//! it needs (`allowed-hosts`) and install that allowlist → `validate-config` → start the
//! document pipeline → call the sync export under the wall-clock limit → on success finish the
//! pipeline (commit, delete vanished documents), on failure abort it (commit what was written,
//! delete nothing) → record the job.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;
use wasmtime::Store;

use crate::bindings::Connector;
use crate::bindings::plugin::{Features, SyncRequest};
use crate::bindings::types::Error as PluginError;
use crate::capabilities::extract::{ExtractCtx, Extraction, Extractors};
use crate::capabilities::http::{Allowlist, HttpCtx, HttpEngine};
use crate::capabilities::index::{Counters, IndexCtx, Pipeline, PipelineDeps, SyncKind};
use crate::capabilities::log::LogCtx;
use crate::capabilities::storage::{Namespace, StorageCtx, StorageLimits};
use crate::config::{HostConfig, SinkKind};
use crate::connector::ConnectorSpec;
use crate::connector::rules::Rules;
use crate::db::Db;
use crate::jobs::{JobError, JobReport, JobStatus, Jobs};
use crate::limits::Limits;
use crate::registry::{LoadedPlugin, PluginInfo, Registry, check_manifest, prepare, wasm_files};
use crate::runtime::{Capabilities, Runtime, StoreState};
use crate::sink::elasticsearch::ElasticsearchSink;
use crate::sink::embedded::EmbeddedIndex;
use crate::sink::{IndexRef, SearchRequest, SearchResults, Sink};

/// A plugin instantiated in its own store.
pub struct Instance {
    /// The store (limits, capabilities).
    pub store: Store<StoreState>,
    /// Typed exports.
    pub bindings: Connector,
    /// The plugin it runs.
    pub plugin: Arc<LoadedPlugin>,
    /// Wall-clock limit per export call.
    pub wall: Duration,
}

/// Calls an export of an [`Instance`] under its wall-clock limit and settles the outcome into
/// `Result<_, JobError>` (traps and limit breaches become typed job errors).
macro_rules! call_export {
    ($inst:expr, $name:literal, $method:ident ( $($arg:expr),* )) => {{
        let inst: &mut Instance = $inst;
        let outcome = tokio::time::timeout(
            inst.wall,
            inst.bindings.tributary_connector_plugin().$method(&mut inst.store $(, $arg)*),
        )
        .await;
        inst.settle($name, outcome)
    }};
}

/// Options of one sync run.
#[derive(Clone, Default)]
pub struct SyncOptions {
    /// Set to stop the job at the plugin's next index call.
    pub cancel: Arc<AtomicBool>,
    /// Receives the live counters once the pipeline starts (progress bars).
    pub on_start: Option<Arc<dyn Fn(Arc<Counters>) + Send + Sync>>,
    /// Writes this job's documents here instead of the host's sink (the Elastic connectors
    /// compatibility mode gives each connector a sink with its own API key).
    pub sink: Option<Arc<dyn Sink>>,
    /// Records the job under this id (the service assigns ids when it queues a job; a job retried
    /// after a restart keeps its id). A fresh id otherwise.
    pub job_id: Option<String>,
    /// Sandbox limits for this job instead of the host's (a tenant's own limits).
    pub limits: Option<Limits>,
    /// Storage quotas for this job's connector instead of the host's.
    pub storage: Option<StorageLimits>,
    /// Receives the plugin version as soon as the job has resolved it.
    pub on_plugin: Option<PluginHook>,
    /// This job (`job_id`) ran before and was interrupted by a host crash or stop: a full sync
    /// starts knowing the ids its earlier run checkpointed.
    pub resume: bool,
}

/// Called with the plugin version a job resolved.
pub type PluginHook = Arc<dyn Fn(&LoadedPlugin) + Send + Sync>;

/// The tributary host.
pub struct Host {
    config: HostConfig,
    runtime: Arc<Runtime>,
    registry: Registry,
    db: Db,
    jobs: Jobs,
    sink: Arc<dyn Sink>,
    http: Arc<HttpEngine>,
    extractors: Arc<Extractors>,
}

impl Host {
    /// Opens the data directory and loads the bundled plugins, then those of `plugins_dir`.
    pub async fn open(config: HostConfig) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
        let runtime = Arc::new(Runtime::new(
            config.limits.clone(),
            &config.runtime,
            Some(config.cache_dir()),
        )?);
        let db = Db::open(&config.data_dir.join("tributary.db"))?;
        let sink: Arc<dyn Sink> = match config.sink.kind {
            SinkKind::Embedded => Arc::new(EmbeddedIndex::new(config.data_dir.join("index"))),
            SinkKind::Elasticsearch => Arc::new(
                ElasticsearchSink::new(&config.elasticsearch)
                    .context("configuring the Elasticsearch sink")?,
            ),
        };
        let http = Arc::new(HttpEngine::new(config.http.clone())?);
        let extractors = Arc::new(Extractors::new(&config.extract)?);
        let host = Self {
            jobs: Jobs::new(db.clone()),
            config,
            runtime,
            registry: Registry::default(),
            db,
            sink,
            http,
            extractors,
        };
        for (name, wasm) in crate::bundled::PLUGINS {
            host.load_plugin(wasm.to_vec(), &format!("bundled:{name}"))
                .await
                .with_context(|| format!("loading the bundled `{name}` plugin"))?;
        }
        if let Some(dir) = host.config.plugins_dir.clone()
            && dir.exists()
        {
            for path in wasm_files(&dir)? {
                let source = path.display().to_string();
                let loaded = match std::fs::read(&path) {
                    Ok(wasm) => host.load_plugin(wasm, &source).await.map(|_| ()),
                    Err(e) => Err(anyhow::anyhow!("reading {source}: {e}")),
                };
                // One broken file must not take the others (or the host) down.
                if let Err(err) = loaded {
                    tracing::error!("plugin {source} not loaded: {err:#}");
                }
            }
        }
        Ok(host)
    }

    /// The configuration.
    pub fn config(&self) -> &HostConfig {
        &self.config
    }

    /// The runtime.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The sink.
    pub fn sink(&self) -> &Arc<dyn Sink> {
        &self.sink
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Job records.
    pub fn jobs(&self) -> &Jobs {
        &self.jobs
    }

    /// Loaded plugins.
    pub fn plugins(&self) -> Vec<PluginInfo> {
        self.registry.list()
    }

    /// Compiles, checks and activates a plugin; returns it.
    pub async fn load_plugin(
        &self,
        wasm: Vec<u8>,
        source: &str,
    ) -> anyhow::Result<Arc<LoadedPlugin>> {
        self.add_plugin(wasm, source, true).await
    }

    /// Compiles and checks a plugin, then registers it; with `activate`, new jobs use it. A
    /// plugin that fails any check is not registered and the active version stays.
    pub async fn add_plugin(
        &self,
        wasm: Vec<u8>,
        source: &str,
        activate: bool,
    ) -> anyhow::Result<Arc<LoadedPlugin>> {
        let (pre, digest) = prepare(&self.runtime, wasm, source).await?;
        // Read the manifest in an inert sandbox: no job, no hosts, throwaway storage.
        let scratch = Db::in_memory()?;
        let ns = Namespace {
            tenant: "_inspect".into(),
            connector: "_inspect".into(),
        };
        let mut store = self.runtime.store(
            self.capabilities(source, ns, Allowlist::default(), false, &scratch, None),
            self.runtime.limits(),
        );
        let bindings = pre.instantiate_async(&mut store).await.map_err(|e| {
            anyhow::anyhow!(
                "{source}: instantiation failed: {}",
                describe_trap(&store, e)
            )
        })?;
        let manifest = tokio::time::timeout(
            Duration::from_secs(30),
            bindings
                .tributary_connector_plugin()
                .call_manifest(&mut store),
        )
        .await
        .map_err(|_| anyhow::anyhow!("{source}: `manifest` did not return within 30 s"))?
        .map_err(|e| {
            anyhow::anyhow!("{source}: `manifest` failed: {}", describe_trap(&store, e))
        })?;
        check_manifest(&manifest).with_context(|| format!("{source}: invalid manifest"))?;
        let plugin = Arc::new(LoadedPlugin {
            manifest,
            source: source.to_string(),
            digest,
            pre,
        });
        self.registry.register(plugin.clone(), activate)?;
        tracing::debug!(plugin = %plugin.label(), %source, "plugin loaded");
        Ok(plugin)
    }

    /// Every loaded plugin version.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The active version of a plugin.
    pub fn plugin(&self, name: &str) -> anyhow::Result<Arc<LoadedPlugin>> {
        self.registry.get(name)
    }

    fn capabilities(
        &self,
        label: &str,
        ns: Namespace,
        allowlist: Allowlist,
        use_service: bool,
        db: &Db,
        storage: Option<&StorageLimits>,
    ) -> Capabilities {
        let allowlist = Arc::new(allowlist);
        let storage = storage.unwrap_or(&self.config.storage).clone();
        Capabilities {
            log: LogCtx::new(label),
            http: HttpCtx::new(self.http.clone(), (*allowlist).clone(), label),
            storage: StorageCtx::new(db.clone(), ns, storage),
            index: IndexCtx::default(),
            extract: ExtractCtx::new(
                Extraction::new(self.extractors.clone(), use_service),
                self.http.clone(),
                allowlist,
            ),
        }
    }

    /// Instantiates `plugin` for connector `spec`, with the allowlist it derives from `config`.
    pub async fn instantiate(
        &self,
        plugin: Arc<LoadedPlugin>,
        spec: &ConnectorSpec,
        config: &str,
        use_service: bool,
        options: &SyncOptions,
    ) -> Result<Instance, JobError> {
        let label = format!("{} {}/{}", plugin.label(), spec.tenant, spec.id);
        let ns = Namespace {
            tenant: spec.tenant.clone(),
            connector: spec.id.clone(),
        };
        let caps = self.capabilities(
            &label,
            ns,
            Allowlist::default(),
            use_service,
            &self.db,
            options.storage.as_ref(),
        );
        let limits = options.limits.as_ref().unwrap_or(self.runtime.limits());
        let mut store = self.runtime.store(caps, limits);
        let bindings = plugin
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| {
                host_error(
                    "trap",
                    format!(
                        "instantiating {}: {}",
                        plugin.label(),
                        describe_trap(&store, e)
                    ),
                )
            })?;
        let mut instance = Instance {
            store,
            bindings,
            plugin,
            wall: limits.wall(),
        };
        let hosts = call_export!(
            &mut instance,
            "allowed-hosts",
            call_allowed_hosts(&config.to_string())
        )?
        .map_err(plugin_error)?;
        let allowlist = Allowlist::parse(&hosts).map_err(|e| {
            host_error(
                "config",
                format!("the plugin's allowed hosts are invalid: {e}"),
            )
        })?;
        tracing::debug!(plugin = %instance.plugin.label(), hosts = ?allowlist.hosts(), "allowlist installed");
        let data = instance.store.data_mut();
        data.extract.set_allowlist(Arc::new(allowlist.clone()));
        data.http.set_allowlist(allowlist);
        Ok(instance)
    }

    /// Checks a connector's configuration: schema, sync rules, and the plugin's own checks.
    /// With `ping`, also checks that the source is reachable with these credentials.
    pub async fn validate_connector(
        &self,
        spec: &ConnectorSpec,
        ping: bool,
    ) -> Result<(), JobError> {
        let plugin = self
            .registry
            .get(&spec.plugin)
            .map_err(|e| host_error("config", format!("{e:#}")))?;
        let config = resolve_config(&plugin, spec)?;
        let mut instance = self
            .instantiate(plugin, spec, &config, false, &SyncOptions::default())
            .await?;
        call_export!(
            &mut instance,
            "validate-config",
            call_validate_config(&config)
        )?
        .map_err(plugin_error)?;
        if ping {
            call_export!(&mut instance, "ping", call_ping(&config))?.map_err(plugin_error)?;
        }
        Ok(())
    }

    /// Runs a sync job for the connector `id` (of `tenant`, if given) and records it.
    pub async fn sync(
        &self,
        tenant: Option<&str>,
        id: &str,
        kind: SyncKind,
        options: SyncOptions,
    ) -> anyhow::Result<JobReport> {
        let spec = self.config.connector(tenant, id)?.clone();
        self.sync_spec(&spec, kind, options).await
    }

    /// Runs a sync job for `spec` and records it. A failed job is a report with status `failed`;
    /// `Err` means the job could not even be recorded.
    pub async fn sync_spec(
        &self,
        spec: &ConnectorSpec,
        kind: SyncKind,
        options: SyncOptions,
    ) -> anyhow::Result<JobReport> {
        let started = Instant::now();
        let mut report = JobReport {
            id: options.job_id.clone().unwrap_or_else(new_job_id),
            tenant: spec.tenant.clone(),
            connector: spec.id.clone(),
            kind,
            plugin: spec.plugin.clone(),
            plugin_version: String::new(),
            status: JobStatus::Running,
            counts: Default::default(),
            error: None,
            warnings: Vec::new(),
            started_at: crate::clock::unix_now(),
            finished_at: None,
            duration_ms: 0,
        };
        let outcome = self.run_job(spec, kind, &options, &mut report).await;
        report.finished_at = Some(crate::clock::unix_now());
        report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match outcome {
            Ok(()) => report.status = JobStatus::Succeeded,
            Err(err) if err.kind == "cancelled" => {
                tracing::info!(connector = %spec.id, kind = %kind, "sync cancelled");
                report.status = JobStatus::Cancelled;
                report.error = Some(err);
            }
            Err(err) => {
                tracing::warn!(connector = %spec.id, kind = %kind, "sync failed: {err}");
                report.status = JobStatus::Failed;
                report.error = Some(err);
            }
        }
        self.jobs.save(&report).await?;
        Ok(report)
    }

    async fn run_job(
        &self,
        spec: &ConnectorSpec,
        kind: SyncKind,
        options: &SyncOptions,
        report: &mut JobReport,
    ) -> Result<(), JobError> {
        let plugin = self
            .registry
            .get(&spec.plugin)
            .map_err(|e| host_error("config", format!("{e:#}")))?;
        report.plugin_version = plugin.manifest.version.clone();
        if let Some(on_plugin) = &options.on_plugin {
            on_plugin(&plugin);
        }
        let needed = match kind {
            SyncKind::Full => Features::empty(),
            SyncKind::Incremental => Features::INCREMENTAL_SYNC,
            SyncKind::AccessControl => Features::ACCESS_CONTROL_SYNC,
        };
        if !plugin.manifest.features.contains(needed) {
            return Err(host_error(
                "config",
                format!("plugin {} does not support {kind} syncs", plugin.label()),
            ));
        }
        let config = resolve_config(&plugin, spec)?;
        let rules = Rules::compile(&spec.rules)
            .map_err(|e| host_error("config", format!("sync rules: {}", e.join("; "))))?;
        let use_service = serde_json::from_str::<Value>(&config)
            .ok()
            .and_then(|v| {
                v.get("use_text_extraction_service")
                    .and_then(Value::as_bool)
            })
            .unwrap_or(false);
        if use_service && !self.extractors.has_service() {
            return Err(host_error(
                "config",
                "`use_text_extraction_service` is on, but the host has no `[extract] service_url`"
                    .into(),
            ));
        }
        let advanced_rules = match &spec.advanced_rules {
            Some(rules) => Some(
                self.check_advanced_rules(&plugin, spec, &config, rules, options)
                    .await?,
            ),
            None => None,
        };
        let mut instance = self
            .instantiate(plugin.clone(), spec, &config, use_service, options)
            .await?;
        call_export!(
            &mut instance,
            "validate-config",
            call_validate_config(&config)
        )?
        .map_err(plugin_error)?;
        let deps = PipelineDeps {
            sink: options.sink.clone().unwrap_or_else(|| self.sink.clone()),
            http: self.http.clone(),
            extract: Arc::new(Extraction::new(self.extractors.clone(), use_service)),
            config: self.config.pipeline.clone(),
        };
        let allowlist = instance.store.data().http.allowlist();
        let storage = instance.store.data().storage.clone();
        let mut pipeline = Pipeline::start(
            deps,
            kind,
            IndexRef::new(spec.tenant.clone(), spec.index_name()),
            spec.id.clone(),
            rules,
            allowlist,
            storage,
            options.cancel.clone(),
        )
        .await
        .map_err(|e| host_error("host", format!("opening the index: {e:#}")))?;
        // Service jobs keep a durable record of the ids a full sync produced, so a run of the
        // same job after a crash can continue its listing (see `Pipeline::track_progress`).
        if kind == SyncKind::Full && options.job_id.is_some() {
            let restored = pipeline
                .track_progress(self.db.clone(), report.id.clone(), options.resume)
                .await
                .map_err(|e| host_error("host", format!("reading the job's progress: {e:#}")))?;
            if restored > 0 {
                tracing::info!(job = %report.id, "resumed with {restored} document id(s) from the interrupted run");
            }
        }
        if let Some(on_start) = &options.on_start {
            on_start(pipeline.counters());
        }
        instance.store.data_mut().index.pipeline = Some(pipeline);
        let request = SyncRequest {
            job_id: report.id.clone(),
            config,
            advanced_rules,
        };
        let result = match kind {
            SyncKind::Full => call_export!(&mut instance, "full-sync", call_full_sync(&request)),
            SyncKind::Incremental => call_export!(
                &mut instance,
                "incremental-sync",
                call_incremental_sync(&request)
            ),
            SyncKind::AccessControl => call_export!(
                &mut instance,
                "access-control-sync",
                call_access_control_sync(&request)
            ),
        };
        report.warnings = instance.store.data().log.recent();
        let Some(mut pipeline) = instance.store.data_mut().index.pipeline.take() else {
            return Err(host_error("host", "the job's pipeline disappeared".into()));
        };
        let cancelled = options.cancel.load(std::sync::atomic::Ordering::Relaxed);
        match result {
            Ok(Ok(())) if !cancelled => {
                report.counts = pipeline
                    .finish()
                    .await
                    .map_err(|e| host_error("host", format!("finishing the sync: {e:#}")))?;
                Ok(())
            }
            other => {
                report.counts = pipeline
                    .abort()
                    .await
                    .map_err(|e| host_error("host", format!("stopping the sync: {e:#}")))?;
                match other {
                    _ if cancelled => Err(host_error("cancelled", "the job was cancelled".into())),
                    Ok(Err(e)) => Err(plugin_error(e)),
                    Err(e) => Err(e),
                    Ok(Ok(())) => Ok(()),
                }
            }
        }
    }

    async fn check_advanced_rules(
        &self,
        plugin: &Arc<LoadedPlugin>,
        spec: &ConnectorSpec,
        config: &str,
        rules: &Value,
        options: &SyncOptions,
    ) -> Result<String, JobError> {
        if !plugin.manifest.features.contains(Features::ADVANCED_RULES) {
            return Err(host_error(
                "config",
                format!("plugin {} has no advanced rules", plugin.label()),
            ));
        }
        let rules = rules.to_string();
        let mut instance = self
            .instantiate(plugin.clone(), spec, config, false, options)
            .await?;
        let verdict = call_export!(
            &mut instance,
            "validate-advanced-rules",
            call_validate_advanced_rules(&config.to_string(), &rules)
        )?;
        match verdict {
            Ok(()) => Ok(rules),
            Err(errors) => {
                let list: Vec<String> = errors
                    .iter()
                    .map(|e| match e.rule {
                        Some(i) => format!("rule {}: {}", i + 1, e.message),
                        None => e.message.clone(),
                    })
                    .collect();
                Err(host_error(
                    "config",
                    format!("advanced rules are invalid: {}", list.join("; ")),
                ))
            }
        }
    }

    /// Searches an index of a tenant.
    pub async fn search(
        &self,
        tenant: &str,
        index: &str,
        request: SearchRequest,
    ) -> anyhow::Result<SearchResults> {
        self.sink
            .search(IndexRef::new(tenant, index), request)
            .await
    }
}

impl Instance {
    /// Turns the outcome of an export call into a value or a typed job error.
    pub fn settle<R>(
        &self,
        export: &str,
        outcome: Result<wasmtime::Result<R>, tokio::time::error::Elapsed>,
    ) -> Result<R, JobError> {
        let label = self.plugin.label();
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(trap)) => {
                let data = self.store.data();
                // By type, not by text: the message also carries the plugin's stderr.
                let kind = if data.memory.breach.is_some() || data.cpu.breach.is_some() {
                    "limit"
                } else if trap
                    .downcast_ref::<crate::sink::quota::QuotaExceeded>()
                    .is_some()
                {
                    "quota"
                } else {
                    "trap"
                };
                let message = describe_trap(&self.store, trap);
                Err(host_error(kind, format!("{label} `{export}`: {message}")))
            }
            Err(_) => Err(host_error(
                "timeout",
                format!(
                    "{label} `{export}` did not finish within {} s",
                    self.wall.as_secs()
                ),
            )),
        }
    }
}

fn resolve_config(plugin: &LoadedPlugin, spec: &ConnectorSpec) -> Result<String, JobError> {
    crate::connector::schema::resolve(&plugin.manifest.config, &spec.config)
        .map(|m| Value::Object(m).to_string())
        .map_err(|errors| {
            host_error(
                "config",
                format!(
                    "connector `{}` ({}): {}",
                    spec.id,
                    plugin.label(),
                    errors.join("; ")
                ),
            )
        })
}

fn host_error(kind: &str, message: String) -> JobError {
    JobError {
        kind: kind.into(),
        message,
    }
}

/// A plugin's own typed error as a job error.
pub fn plugin_error(e: PluginError) -> JobError {
    let (kind, message) = match e {
        PluginError::Auth(m) => ("auth", m),
        PluginError::NotFound(m) => ("not_found", m),
        PluginError::RateLimited(m) => ("rate_limited", m),
        PluginError::Config(m) => ("config", m),
        PluginError::Transient(m) => ("transient", m),
        PluginError::Protocol(m) => ("protocol", m),
        PluginError::Host(m) => ("host", m),
        PluginError::Other(m) => ("other", m),
    };
    host_error(kind, message)
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

/// A new, unique job id.
pub fn new_job_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{nanos:x}-{:x}-{n}", std::process::id())
}
