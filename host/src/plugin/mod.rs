//! Plugins: the wasm runtime and its sandboxed stores ([`runtime`]), the loaded versions
//! ([`registry`]), the one way to prepare an instance ([`instance`]), what `plugin check`
//! reports about a component ([`check`]), and the manifests kept beside compiled components
//! (`manifest_cache`).

pub mod check;
pub mod instance;
pub(crate) mod manifest_cache;
pub mod registry;
pub mod runtime;

pub use instance::{Engines, Instance, InstanceSetup};
pub use registry::{LoadedPlugin, PluginInfo, Registry};
pub use runtime::{CompileEvent, CompileHook, Runtime};
