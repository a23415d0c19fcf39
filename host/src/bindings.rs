//! The one place the WIT contract (`wit/`) becomes Rust: host traits for the capabilities a
//! plugin imports, and typed calls for what it exports.
//!
//! Every import is `async` (it may wait on the network, the index or the disk without blocking a
//! runtime thread) and `trappable`: a host function returns `Ok(Err(wit_error))` for problems the
//! guest caused and `Err(trap)` only for host faults and exceeded limits.

#![allow(missing_docs)]
// The generated export wrappers use `unsafe` internally (checked by wasmtime at instantiation).
#![allow(unsafe_code)]

wasmtime::component::bindgen!({
    world: "connector",
    path: "../wit",
    imports: { default: async | trappable },
    exports: { default: async },
});

pub use self::exports::tributary::connector::plugin;
pub use self::tributary::connector::{extract, http, index, log, storage, types};
