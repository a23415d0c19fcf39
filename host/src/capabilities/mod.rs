//! Host capabilities: what a plugin can ask the host to do, one WIT interface per module.
//!
//! Each module is a thin guest adapter (wasmtime's shape): a `FooCtx` that lives in the plugin's
//! store, the generated `Host` trait implemented on it in a few lines each, and an
//! `add_to_linker`. The work happens in the engine the context wraps — [`crate::net`] for
//! `http`, [`crate::kv`] for `storage`, [`crate::pipeline`] for `index`,
//! [`crate::extraction`] for `extract` — so every engine is testable without wasm.
//! A guest's mistake is a WIT error value; only host faults and limits trap.

pub mod extract;
pub mod http;
pub mod index;
pub mod log;
pub mod storage;
