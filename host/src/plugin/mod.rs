//! Plugins: the wasm runtime and its sandboxed stores ([`runtime`]), the loaded versions
//! ([`registry`]), the one way to prepare an instance ([`instance`]), and what `plugin check`
//! reports about a component ([`check`]).

pub mod check;
pub mod instance;
pub mod registry;
pub mod runtime;

pub use instance::{Engines, Instance, InstanceSetup};
pub use registry::{LoadedPlugin, PluginInfo, Registry};
pub use runtime::{CompileEvent, CompileHook, Runtime};
