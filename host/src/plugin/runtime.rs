//! The wasm runtime: one wasmtime [`Engine`] (component model, async, epoch interruption,
//! pooling allocator), the linker with every host capability, an on-disk cache of compiled
//! components, and the construction of sandboxed stores.
//!
//! The compile cache is machine-wide by default (see `HostConfig::cache_dir`): an entry is named
//! by the SHA-256 of the component and a fingerprint of the engine (wasmtime's compatibility
//! hash plus the settings that shape compiled code here), so every data directory and command
//! of the same build shares it, and an entry is never loaded by an engine it was not made for.
//! A compile that misses the cache is announced to the [`CompileHook`] (a progress line).
//!
//! A plugin instance gets WASI with no files, no environment, no arguments and no sockets
//! (clocks and randomness only; its stderr is captured for error reports), plus tributary's own
//! capabilities. Memory and CPU limits, and a rate limit on capability calls, are installed on
//! every store.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{
    CallHook, Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
    UpdateDeadline,
};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::ConnectorPre;
use crate::capabilities::extract::ExtractCtx;
use crate::capabilities::http::HttpCtx;
use crate::capabilities::index::IndexCtx;
use crate::capabilities::log::LogCtx;
use crate::capabilities::storage::StorageCtx;
use crate::limits::{CpuMeter, HostCalls, MemoryLimiter, SandboxLimits};

/// How often the epoch advances; also the granularity of CPU checks and cooperative yields.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Bytes of plugin stderr kept (panic messages end up there).
const STDERR_CAPTURE: usize = 64 * 1024;

/// Everything a plugin instance's store holds.
pub struct StoreState {
    wasi: WasiCtx,
    table: ResourceTable,
    stderr: MemoryOutputPipe,
    /// Memory limit and its breach, if any.
    pub memory: MemoryLimiter,
    /// CPU meter and its breach, if any (a breach of the host-call rate is recorded here too).
    pub cpu: CpuMeter,
    /// Rate of capability calls, shared with every capability of this store.
    pub calls: HostCalls,
    /// `log` capability.
    pub log: LogCtx,
    /// `http` capability.
    pub http: HttpCtx,
    /// `storage` capability.
    pub storage: StorageCtx,
    /// `index` capability.
    pub index: IndexCtx,
    /// `extract` capability.
    pub extract: ExtractCtx,
}

impl StoreState {
    /// What the plugin wrote to stderr (e.g. a panic message), lossy UTF-8, last 2 KiB.
    pub fn stderr_tail(&self) -> String {
        let bytes = self.stderr.contents();
        let start = bytes.len().saturating_sub(2048);
        String::from_utf8_lossy(&bytes[start..]).trim().to_string()
    }
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The capabilities a new store is given.
pub struct Capabilities {
    /// Logging.
    pub log: LogCtx,
    /// Outbound HTTP.
    pub http: HttpCtx,
    /// Key/value state.
    pub storage: StorageCtx,
    /// Index pipeline (empty outside sync jobs).
    pub index: IndexCtx,
    /// Extraction.
    pub extract: ExtractCtx,
}

/// Settings of the runtime.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Use the pooling allocator (fast instantiation; reserves address space up front).
    pub pooling: bool,
    /// Plugin instances alive at once when pooling.
    pub pool_instances: u32,
    /// Calls one plugin instance may make into the host's capabilities per second; past it the
    /// plugin is stopped with a limit error (a plugin calling the host in a tight loop).
    pub max_host_calls_per_second: u64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            pooling: true,
            pool_instances: 64,
            max_host_calls_per_second: 20_000,
        }
    }
}

/// What the runtime is doing, for a progress line: only compiles that miss the cache (seconds to
/// a minute for a JS or Python component) are announced.
#[derive(Clone, Debug)]
pub enum CompileEvent {
    /// Compiling `label`, a component of `bytes` bytes, because no cache entry fits.
    Started {
        /// What is compiled (a plugin name or file).
        label: String,
        /// Size of the component.
        bytes: usize,
    },
    /// That compile finished (or failed) after `elapsed`.
    Finished {
        /// What was compiled.
        label: String,
        /// How long it took.
        elapsed: Duration,
    },
}

/// Receives [`CompileEvent`]s.
pub type CompileHook = std::sync::Arc<dyn Fn(&CompileEvent) + Send + Sync>;

/// The engine, linker and compile cache shared by every plugin.
pub struct Runtime {
    engine: Engine,
    linker: Linker<StoreState>,
    cache_dir: Option<PathBuf>,
    limits: SandboxLimits,
    pooling: bool,
    max_host_calls_per_second: u64,
    on_compile: std::sync::RwLock<Option<CompileHook>>,
}

fn engine_config(limits: &SandboxLimits, pool: Option<&RuntimeConfig>) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    if let Some(pool) = pool {
        let n = pool.pool_instances.max(1);
        let mut p = PoolingAllocationConfig::default();
        p.total_component_instances(n)
            .total_core_instances(n.saturating_mul(8))
            .total_memories(n.saturating_mul(2))
            .total_tables(n.saturating_mul(4))
            .total_stacks(n)
            .max_memory_size(limits.memory_bytes());
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    }
    config
}

impl Runtime {
    /// Creates the engine (pooling when possible), links every capability and starts the epoch
    /// ticker.
    pub fn new(
        limits: SandboxLimits,
        config: &RuntimeConfig,
        cache_dir: Option<PathBuf>,
    ) -> anyhow::Result<Self> {
        let (engine, pooling) = if config.pooling {
            match Engine::new(&engine_config(&limits, Some(config))) {
                Ok(engine) => (engine, true),
                Err(err) => {
                    tracing::warn!(
                        "pooling allocator unavailable ({err}); allocating instances on demand"
                    );
                    (
                        Engine::new(&engine_config(&limits, None)).map_err(anyhow::Error::from)?,
                        false,
                    )
                }
            }
        } else {
            (
                Engine::new(&engine_config(&limits, None)).map_err(anyhow::Error::from)?,
                false,
            )
        };
        let mut linker = Linker::<StoreState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(anyhow::Error::from)?;
        crate::capabilities::log::add_to_linker(&mut linker, |s| &mut s.log)
            .map_err(anyhow::Error::from)?;
        crate::capabilities::http::add_to_linker(&mut linker, |s| &mut s.http)
            .map_err(anyhow::Error::from)?;
        crate::capabilities::storage::add_to_linker(&mut linker, |s| &mut s.storage)
            .map_err(anyhow::Error::from)?;
        crate::capabilities::index::add_to_linker(&mut linker, |s| &mut s.index)
            .map_err(anyhow::Error::from)?;
        crate::capabilities::extract::add_to_linker(&mut linker, |s| &mut s.extract)
            .map_err(anyhow::Error::from)?;
        spawn_epoch_ticker(&engine);
        Ok(Self {
            engine,
            linker,
            cache_dir,
            limits,
            pooling,
            max_host_calls_per_second: config.max_host_calls_per_second,
            on_compile: std::sync::RwLock::new(None),
        })
    }

    /// Announces every compile that misses the cache to `hook` from now on.
    pub fn on_compile(&self, hook: CompileHook) {
        if let Ok(mut slot) = self.on_compile.write() {
            *slot = Some(hook);
        }
    }

    fn announce(&self, event: &CompileEvent) {
        let hook = self.on_compile.read().ok().and_then(|h| h.clone());
        if let Some(hook) = hook {
            hook(event);
        }
    }

    /// Whether `wasm` is in the compile cache for this engine (a load will not compile).
    pub fn is_cached(&self, wasm: &[u8]) -> bool {
        self.entry(&digest_of(wasm), "cwasm")
            .is_some_and(|path| path.is_file())
    }

    /// Whether instances come from the pooling allocator.
    pub fn pooling(&self) -> bool {
        self.pooling
    }

    /// The default limits.
    pub fn limits(&self) -> &SandboxLimits {
        &self.limits
    }

    /// Compiles a component, or loads it from the compile cache when this exact binary was
    /// compiled before by a compatible engine.
    pub fn compile(&self, wasm: &[u8]) -> anyhow::Result<Component> {
        self.compile_labelled(wasm, "component")
    }

    /// [`Runtime::compile`], announcing a compile that misses the cache as `label`.
    pub fn compile_labelled(&self, wasm: &[u8], label: &str) -> anyhow::Result<Component> {
        self.compile_digested(wasm, &digest_of(wasm), label)
    }

    /// [`Runtime::compile_labelled`] for a component whose SHA-256 (hex) is known: a load the
    /// cache answers never reads `wasm`.
    pub fn compile_digested(
        &self,
        wasm: &[u8],
        digest: &str,
        label: &str,
    ) -> anyhow::Result<Component> {
        let Some(path) = self.entry(digest, "cwasm") else {
            return self.compile_announced(wasm, label);
        };
        if path.exists() {
            match self.load_cached(&path) {
                Ok(component) => return Ok(component),
                Err(err) => tracing::warn!(
                    "ignoring unusable compile cache entry {}: {err:#}",
                    path.display()
                ),
            }
        }
        let component = self.compile_announced(wasm, label)?;
        match component.serialize() {
            Ok(bytes) => {
                // The directory is created by the first write only: a host that compiles
                // nothing (a search) leaves no trace.
                if let Err(err) = crate::atomic_file::write_atomic(&path, &bytes) {
                    tracing::warn!("could not write compile cache {}: {err:#}", path.display());
                }
            }
            Err(err) => tracing::warn!("could not serialise compiled component: {err}"),
        }
        Ok(component)
    }

    fn compile_announced(&self, wasm: &[u8], label: &str) -> anyhow::Result<Component> {
        let started = std::time::Instant::now();
        self.announce(&CompileEvent::Started {
            label: label.to_string(),
            bytes: wasm.len(),
        });
        let compiled = Component::new(&self.engine, wasm).map_err(anyhow::Error::from);
        self.announce(&CompileEvent::Finished {
            label: label.to_string(),
            elapsed: started.elapsed(),
        });
        compiled
    }

    /// Where the manifest of the component with `digest` is kept beside its compile-cache
    /// entry ([`super::manifest_cache`]); `None` without a cache.
    pub(crate) fn manifest_entry(&self, digest: &str) -> Option<PathBuf> {
        self.entry(digest, "manifest.json")
    }

    /// The cache file of the component with `digest` ending in `.{suffix}`; `None` without a
    /// cache.
    fn entry(&self, digest: &str, suffix: &str) -> Option<PathBuf> {
        let dir = self.cache_dir.as_ref()?;
        Some(dir.join(format!("{}.{suffix}", self.cache_key(digest))))
    }

    /// The cache entry's name: the component's digest and the engine's fingerprint. Pooling and
    /// the memory limit are included besides wasmtime's own hash because they shape the compiled
    /// code's memory assumptions, and entries are shared by hosts with different settings.
    fn cache_key(&self, digest: &str) -> String {
        let mut compat = std::collections::hash_map::DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut compat);
        self.pooling.hash(&mut compat);
        self.limits.memory_bytes().hash(&mut compat);
        let mut key = Sha256::new();
        key.update(digest.as_bytes());
        key.update(compat.finish().to_le_bytes());
        hex::encode(&key.finalize()[..16])
    }

    #[allow(unsafe_code)]
    fn load_cached(&self, path: &Path) -> anyhow::Result<Component> {
        // SAFETY: cache entries are written only by `compile` above, into the operator's own
        // cache directory (as trusted as the binary itself), named by a digest of the source
        // and the engine's compatibility hash; wasmtime also checks the header and version.
        unsafe { Component::deserialize_file(&self.engine, path) }.map_err(anyhow::Error::from)
    }

    /// Type-checks a component against the capabilities and pre-links it.
    pub fn pre(&self, component: &Component) -> anyhow::Result<ConnectorPre<StoreState>> {
        let pre = self
            .linker
            .instantiate_pre(component)
            .map_err(anyhow::Error::from)?;
        ConnectorPre::new(pre).map_err(anyhow::Error::from)
    }

    /// A sandboxed store with these capabilities and limits.
    pub fn store(&self, mut caps: Capabilities, limits: &SandboxLimits) -> Store<StoreState> {
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE);
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let calls = HostCalls::new(self.max_host_calls_per_second);
        caps.log.calls = calls.clone();
        caps.http.calls = calls.clone();
        caps.storage.calls = calls.clone();
        caps.index.calls = calls.clone();
        caps.extract.calls = calls.clone();
        let state = StoreState {
            wasi,
            table: ResourceTable::new(),
            stderr,
            memory: MemoryLimiter::new(limits.memory_bytes()),
            cpu: CpuMeter::new(limits.cpu()),
            calls,
            log: caps.log,
            http: caps.http,
            storage: caps.storage,
            index: caps.index,
            extract: caps.extract,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.memory);
        store.call_hook(|mut ctx, hook| {
            let data = ctx.data_mut();
            data.cpu.on_hook(hook);
            // A capability that refused the call for its rate trapped; record why, so the job
            // reports a limit rather than an anonymous trap.
            if matches!(hook, CallHook::ReturningFromHost)
                && data.cpu.breach.is_none()
                && let Some(breach) = data.calls.breach()
            {
                data.cpu.breach = Some(breach);
            }
            Ok(())
        });
        store.epoch_deadline_callback(|mut ctx| match ctx.data_mut().cpu.check() {
            // Yield every tick so one busy plugin never starves the runtime's other tasks.
            Ok(()) => Ok(UpdateDeadline::Yield(1)),
            Err(breach) => Err(wasmtime::Error::msg(breach.to_string())),
        });
        store.set_epoch_deadline(1);
        store
    }
}

fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("tributary-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        });
    if let Err(err) = spawned {
        tracing::error!("could not start the epoch ticker; CPU limits are not enforced: {err}");
    }
}

/// A component's SHA-256, hex: its identity in the compile cache and in plugin listings.
pub fn digest_of(wasm: &[u8]) -> String {
    hex::encode(Sha256::digest(wasm))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::sync::{Arc, Mutex};

    fn runtime(cache: &Path, memory_mib: u64) -> (Runtime, Arc<Mutex<Vec<String>>>) {
        let limits = SandboxLimits {
            memory_mib,
            ..SandboxLimits::default()
        };
        let config = RuntimeConfig {
            pooling: false,
            ..RuntimeConfig::default()
        };
        let runtime = Runtime::new(limits, &config, Some(cache.to_path_buf())).unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = events.clone();
        runtime.on_compile(Arc::new(move |event: &CompileEvent| {
            let line = match event {
                CompileEvent::Started { label, bytes } => format!("started {label} {bytes}"),
                CompileEvent::Finished { label, .. } => format!("finished {label}"),
            };
            seen.lock().unwrap().push(line);
        }));
        (runtime, events)
    }

    #[test]
    fn a_compile_that_misses_the_cache_is_announced_and_cached_for_the_same_engine_only() {
        let wasm = crate::bundled::PLUGINS
            .iter()
            .find(|b| b.name == "feed")
            .expect("the feed plugin is bundled")
            .wasm;
        let tmp = tempfile::tempdir().unwrap();
        let cache = tmp.path().join("compiled");
        let (rt, events) = runtime(&cache, 256);
        // A runtime that compiled nothing leaves no cache directory behind.
        assert!(!cache.exists());
        assert!(!rt.is_cached(wasm));
        rt.compile_labelled(wasm, "feed").unwrap();
        assert_eq!(
            *events.lock().unwrap(),
            [
                format!("started feed {}", wasm.len()),
                "finished feed".into()
            ]
        );
        assert!(rt.is_cached(wasm));

        // Another runtime of the same settings (another data directory, another command) loads
        // it without compiling.
        let (again, events) = runtime(&cache, 256);
        assert!(again.is_cached(wasm));
        again.compile_labelled(wasm, "feed").unwrap();
        assert!(events.lock().unwrap().is_empty());

        // Other settings are another engine: their own entry, compiled once.
        let (other, events) = runtime(&cache, 128);
        assert!(!other.is_cached(wasm));
        other.compile_labelled(wasm, "feed").unwrap();
        assert_eq!(events.lock().unwrap().len(), 2);
        assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 2);
    }

    /// An embedded plugin's digest is its bytes' (taken by `build.rs`), so an embedded load and
    /// a file load of the same component share one cache entry; and a load the cache answers
    /// never reads the bytes (an empty slice stands in for them here).
    #[test]
    fn embedded_digests_are_the_bytes_and_a_cached_load_needs_no_bytes() {
        for bundled in crate::bundled::PLUGINS {
            assert_eq!(bundled.digest, digest_of(bundled.wasm), "{}", bundled.name);
        }
        let feed = crate::bundled::PLUGINS
            .iter()
            .find(|b| b.name == "feed")
            .expect("the feed plugin is bundled");
        let tmp = tempfile::tempdir().unwrap();
        let (rt, events) = runtime(&tmp.path().join("compiled"), 256);
        assert!(rt.compile_digested(&[], feed.digest, "feed").is_err());
        rt.compile_digested(feed.wasm, feed.digest, "feed").unwrap();
        assert!(rt.is_cached(feed.wasm));
        events.lock().unwrap().clear();
        rt.compile_digested(&[], feed.digest, "feed").unwrap();
        assert!(events.lock().unwrap().is_empty());
    }
}
