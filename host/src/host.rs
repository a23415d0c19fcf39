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
use std::time::Instant;

use anyhow::Context;
use serde_json::Value;

use crate::bindings::ConnectorPre;
use crate::bindings::plugin::{Features, SyncRequest};
use crate::bundled::Bundled;
use crate::call_export;
use crate::config::{HostConfig, SinkKind};
use crate::connector::ConnectorSpec;
use crate::connector::rules::Rules;
use crate::db::Db;
use crate::extraction::Extraction;
use crate::job::{
    Counters, JobError, JobErrorKind, JobReport, JobStatus, Jobs, SyncKind, new_job_id,
};
use crate::kv::{Namespace, StorageLimits};
use crate::limits::SandboxLimits;
use crate::pipeline::{JobScope, Pipeline, PipelineDeps};
use crate::plugin::instance::plugin_error;
use crate::plugin::registry::{check_manifest, prepare, prepare_digested, wasm_files};
use crate::plugin::runtime::StoreState;
use crate::plugin::{
    Engines, Instance, InstanceSetup, LoadedPlugin, PluginInfo, Registry, Runtime,
};
use crate::sink::elasticsearch::ElasticsearchSink;
use crate::sink::embedded::EmbeddedIndex;
use crate::sink::{IndexRef, SearchRequest, SearchResults, Sink, UnknownIndex};

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
    pub limits: Option<SandboxLimits>,
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
    engines: Engines,
    registry: Registry,
    db: Db,
    jobs: Jobs,
    sink: Arc<dyn Sink>,
}

/// How [`Host::open_with`] opens the host.
#[derive(Clone, Default)]
pub struct OpenOptions {
    /// Which plugins are loaded.
    pub plugins: PluginLoading,
    /// Whether the data directory may be created. Without, a missing state database is
    /// replaced by an empty one in memory, so a read (search, jobs, a configuration check)
    /// never creates state.
    pub create: bool,
    /// Told about every compile that misses the compile cache (a progress line).
    pub on_compile: Option<crate::plugin::CompileHook>,
}

/// Which plugins a host loads when it opens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PluginLoading {
    /// The bundled plugins, then those of `plugins_dir`.
    #[default]
    All,
    /// None: for commands that only read the index or job records (search, jobs). Syncs of
    /// such a host fail with "no plugin named …"; [`Host::load_plugin`] still works.
    None,
}

impl Host {
    /// Opens the data directory (creating it) and loads the bundled plugins, then those of
    /// `plugins_dir`.
    pub async fn open(config: HostConfig) -> anyhow::Result<Self> {
        Self::open_with(
            config,
            OpenOptions {
                create: true,
                ..OpenOptions::default()
            },
        )
        .await
    }

    /// Opens the host as `options` say.
    pub async fn open_with(config: HostConfig, options: OpenOptions) -> anyhow::Result<Self> {
        // First: a bad sink setting is refused before anything is created on disk.
        let sink: Arc<dyn Sink> = match config.sink.kind {
            SinkKind::Embedded => Arc::new(EmbeddedIndex::with_writer_memory(
                config.data_dir.join("index"),
                config.sink.writer_memory,
            )?),
            SinkKind::Elasticsearch => Arc::new(
                ElasticsearchSink::new(&config.elasticsearch)
                    .context("configuring the Elasticsearch sink")?,
            ),
        };
        let db_path = config.data_dir.join("tributary.db");
        let db = if options.create {
            std::fs::create_dir_all(&config.data_dir).with_context(|| {
                format!("creating data directory {}", config.data_dir.display())
            })?;
            Db::open(&db_path)?
        } else if db_path.is_file() {
            Db::open(&db_path)?
        } else {
            Db::in_memory()?
        };
        let engines = config.engines()?;
        if let Some(hook) = options.on_compile {
            engines.runtime.on_compile(hook);
        }
        let host = Self {
            jobs: Jobs::new(db.clone()),
            config,
            engines,
            registry: Registry::default(),
            db,
            sink,
        };
        if options.plugins == PluginLoading::None {
            return Ok(host);
        }
        for bundled in crate::bundled::PLUGINS {
            host.load_bundled(bundled)
                .await
                .with_context(|| format!("loading the bundled `{}` plugin", bundled.name))?;
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
        &self.engines.runtime
    }

    /// The engines plugin instances share.
    pub fn engines(&self) -> &Engines {
        &self.engines
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

    /// Loads a plugin embedded in the binary, by its digest: from the compile cache, its bytes
    /// are never read.
    async fn load_bundled(&self, bundled: &Bundled) -> anyhow::Result<Arc<LoadedPlugin>> {
        let source = format!("bundled:{}", bundled.name);
        let digest = bundled.digest.to_string();
        let prepared =
            prepare_digested(&self.engines.runtime, bundled.wasm, digest, &source).await?;
        self.register(prepared, &source, true).await
    }

    /// Compiles and checks a plugin, then registers it; with `activate`, new jobs use it. A
    /// plugin that fails any check is not registered and the active version stays.
    pub async fn add_plugin(
        &self,
        wasm: Vec<u8>,
        source: &str,
        activate: bool,
    ) -> anyhow::Result<Arc<LoadedPlugin>> {
        let prepared = prepare(&self.engines.runtime, wasm, source).await?;
        self.register(prepared, source, activate).await
    }

    /// Reads a prepared plugin's manifest (from its compile-cache entry's manifest, or else in
    /// an inert instance) and registers it.
    async fn register(
        &self,
        (pre, digest): (ConnectorPre<StoreState>, String),
        source: &str,
        activate: bool,
    ) -> anyhow::Result<Arc<LoadedPlugin>> {
        let entry = self.engines.runtime.manifest_entry(&digest);
        // Checked again as it is read: one the host's checks now refuse is asked for afresh,
        // so the refusal names the plugin.
        let cached = entry
            .as_deref()
            .and_then(crate::plugin::manifest_cache::read)
            .filter(|m| check_manifest(m).is_ok());
        let manifest = match cached {
            Some(manifest) => manifest,
            None => {
                let manifest = self.engines.inert(&pre, source).await?.manifest().await?;
                if let Some(entry) = &entry {
                    crate::plugin::manifest_cache::write(entry, &manifest);
                }
                manifest
            }
        };
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

    /// Instantiates `plugin` for connector `spec`, with the allowlist it derives from `config`.
    pub async fn instantiate(
        &self,
        plugin: Arc<LoadedPlugin>,
        spec: &ConnectorSpec,
        config: &str,
        use_service: bool,
        options: &SyncOptions,
    ) -> Result<Instance, JobError> {
        let setup = InstanceSetup {
            label: format!("{} {}/{}", plugin.label(), spec.tenant, spec.id),
            namespace: Namespace {
                tenant: spec.tenant.clone(),
                connector: spec.id.clone(),
            },
            db: &self.db,
            use_service,
            storage: options.storage.as_ref(),
            limits: options.limits.as_ref(),
        };
        let mut instance = self
            .engines
            .instantiate(&plugin.pre, setup)
            .await
            .map_err(|e| JobError::new(JobErrorKind::Trap, format!("{e:#}")))?;
        instance.allow_hosts(config).await?;
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
            .map_err(|e| host_error(JobErrorKind::Config, format!("{e:#}")))?;
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

    /// Checks a connector's advanced rules with its plugin (`validate-advanced-rules`), as a
    /// job would before syncing: a plugin without the `advanced-rules` feature refuses any
    /// rules but none (`null`, `[]` or `{}`).
    pub async fn validate_advanced_rules(&self, spec: &ConnectorSpec) -> Result<(), JobError> {
        let Some(rules) = spec.advanced_rules.as_ref().filter(|r| !is_empty_json(r)) else {
            return Ok(());
        };
        let plugin = self
            .registry
            .get(&spec.plugin)
            .map_err(|e| host_error(JobErrorKind::Config, format!("{e:#}")))?;
        let config = resolve_config(&plugin, spec)?;
        self.check_advanced_rules(&plugin, spec, &config, rules, &SyncOptions::default())
            .await
            .map(|_| ())
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
            Err(err) if err.kind == JobErrorKind::Cancelled => {
                tracing::info!(connector = %spec.id, kind = %kind, "sync cancelled");
                report.status = JobStatus::Cancelled;
                report.error = Some(err);
            }
            Err(err) => {
                // Debug only: the caller reports the job (the CLI prints its summary, the service
                // records it), so a warning here would show every error twice.
                tracing::debug!(connector = %spec.id, kind = %kind, "sync failed: {err}");
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
            .map_err(|e| host_error(JobErrorKind::Config, format!("{e:#}")))?;
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
                JobErrorKind::Config,
                format!("plugin {} does not support {kind} syncs", plugin.label()),
            ));
        }
        let config = resolve_config(&plugin, spec)?;
        let rules = Rules::compile(&spec.rules).map_err(|e| {
            host_error(
                JobErrorKind::Config,
                format!("sync rules: {}", e.join("; ")),
            )
        })?;
        let use_service = serde_json::from_str::<Value>(&config)
            .ok()
            .and_then(|v| {
                v.get("use_text_extraction_service")
                    .and_then(Value::as_bool)
            })
            .unwrap_or(false);
        if use_service && !self.engines.extractors.has_service() {
            return Err(host_error(
                JobErrorKind::Config,
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
            extract: Arc::new(Extraction::new(
                self.engines.extractors.clone(),
                use_service,
            )),
            config: self.config.pipeline.clone(),
            download_budget: self.engines.download_budget.clone(),
        };
        let scope = JobScope {
            kind,
            index: IndexRef::new(spec.tenant.clone(), spec.index_name()),
            connector: spec.id.clone(),
            rules,
            cancelled: options.cancel.clone(),
        };
        let state = instance.store.data().storage.state().clone();
        let mut pipeline = Pipeline::start(deps, scope, instance.egress.clone(), state)
            .await
            .map_err(|e| host_error(JobErrorKind::Host, format!("opening the index: {e:#}")))?;
        // Service jobs keep a durable record of their counts and of the ids a full sync
        // produced, so a run of the same job after a crash continues its listing and its
        // totals (see `Pipeline::track_progress`).
        if options.job_id.is_some() {
            let restored = pipeline
                .track_progress(self.db.clone(), report.id.clone(), options.resume)
                .await
                .map_err(|e| {
                    host_error(
                        JobErrorKind::Host,
                        format!("reading the job's progress: {e:#}"),
                    )
                })?;
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
            return Err(host_error(
                JobErrorKind::Host,
                "the job's pipeline disappeared".into(),
            ));
        };
        let cancelled = options.cancel.load(std::sync::atomic::Ordering::Relaxed);
        match result {
            Ok(Ok(())) if !cancelled => {
                report.counts = pipeline.finish().await.map_err(|e| {
                    host_error(JobErrorKind::Host, format!("finishing the sync: {e:#}"))
                })?;
                Ok(())
            }
            other => {
                report.counts = pipeline.abort().await.map_err(|e| {
                    host_error(JobErrorKind::Host, format!("stopping the sync: {e:#}"))
                })?;
                match other {
                    _ if cancelled => Err(host_error(
                        JobErrorKind::Cancelled,
                        "the job was cancelled".into(),
                    )),
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
                JobErrorKind::Config,
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
                    JobErrorKind::Config,
                    format!("advanced rules are invalid: {}", list.join("; ")),
                ))
            }
        }
    }

    /// Searches an index of a tenant; an index that does not exist is an [`UnknownIndex`] error
    /// (and is not created).
    pub async fn search(
        &self,
        tenant: &str,
        index: &str,
        request: SearchRequest,
    ) -> anyhow::Result<SearchResults> {
        let existing = self.sink.indexes(tenant.to_string()).await?;
        let index = IndexRef::new(tenant, index);
        if !existing.contains(&index.name) {
            return Err(UnknownIndex { index, existing }.into());
        }
        self.sink.search(index, request).await
    }
}

fn resolve_config(plugin: &LoadedPlugin, spec: &ConnectorSpec) -> Result<String, JobError> {
    crate::connector::schema::resolve(&plugin.manifest.config, &spec.config)
        .map(|m| Value::Object(m).to_string())
        .map_err(|errors| {
            host_error(
                JobErrorKind::Config,
                format!(
                    "connector `{}` ({}): {}",
                    spec.id,
                    plugin.label(),
                    errors.join("; ")
                ),
            )
        })
}

fn host_error(kind: JobErrorKind, message: String) -> JobError {
    JobError::new(kind, message)
}

/// `null`, `[]` or `{}`: no advanced rules.
fn is_empty_json(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}
