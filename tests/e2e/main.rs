//! End-to-end tests: the real plugins (built for wasm32-wasip2 by the host's build script)
//! running in the real host against the fake APIs in `tributary-fakes`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod boxes;
mod boxes_parity;
mod console;
mod dropbox;
mod elasticsearch;
mod extraction;
mod feed;
mod foreign;
mod manifest_cache;
mod openapi;
mod plugin_cli;
mod sandbox;
mod service;
mod service_fuzz;
mod service_tenancy;
mod ssrf;
mod support;
